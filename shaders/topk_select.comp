#version 450
// topk_select: the second pass of sampling a visual token on the GPU, one
// workgroup. It finds the k-th largest of scores [n] exactly, by radix select
// on cfg_hist's histogram of the keys' top 12 bits and two more histograms
// (the next 12 bits, then the last 8) of the bucket that holds it; then it
// writes the survivors of top-k (v ≥ the k-th largest, v > −inf) in index
// order: out = count, indices [count], values [count] (from word 1 + n). With
// a NaN score the count is 0xFFFFFFFF and the host samples from the logits.
// The histogram is zeroed for the next step.
#include "include/common.glsl"
#include "include/radix.glsl"

layout(std430, binding = 0) readonly buffer SC_ { float scores[]; };
layout(std430, binding = 1) readonly buffer S_ { uint sp[]; }; // word 4: k
layout(std430, binding = 2) buffer H_ { uint hist[]; };
layout(std430, binding = 3) writeonly buffer O_ { uint outw[]; };

layout(push_constant) uniform P { uint n; } p;

shared uint h_sh[4096];
shared uint scan_sh[WG];
shared uint pick_sh[2];

// scan returns the sum of v over the invocations before this one (and the
// total in total).
uint scan(uint v, out uint total) {
	const uint tid = gl_LocalInvocationID.x;
	scan_sh[tid] = v;
	barrier();
	// Hillis-Steele over the workgroup: log2(WG) rounds.
	for (uint d = 1; d < WG; d <<= 1) {
		const uint a = tid >= d ? scan_sh[tid - d] : 0;
		barrier();
		scan_sh[tid] += a;
		barrier();
	}
	total = scan_sh[WG - 1];
	const uint incl = scan_sh[tid];
	barrier();
	return incl - v;
}

// select_bin finds, in h_sh[0..nbins) read from the highest bin down, the bin
// where the running count reaches k, and the count above it: into pick_sh.
void select_bin(uint nbins, uint k) {
	const uint tid = gl_LocalInvocationID.x;
	const uint per = (nbins + WG - 1) / WG;
	uint local = 0;
	for (uint j = 0; j < per; j++) {
		const uint r = tid * per + j; // rank from the top
		if (r < nbins) local += h_sh[nbins - 1 - r];
	}
	uint total;
	uint above = scan(local, total);
	if (above < k && above + local >= k) {
		for (uint j = 0; j < per; j++) {
			const uint b = nbins - 1 - (tid * per + j);
			if (above + h_sh[b] >= k) {
				pick_sh[0] = b;
				pick_sh[1] = above;
				break;
			}
			above += h_sh[b];
		}
	}
	barrier();
}

void main() {
	const uint tid = gl_LocalInvocationID.x, n = p.n, k = sp[4];
	const bool nan = hist[4096] != 0;
	for (uint i = tid; i < 4096; i += WG) h_sh[i] = hist[i];
	barrier();
	for (uint i = tid; i <= 4096; i += WG) hist[i] = 0;
	if (nan) {
		if (tid == 0) outw[0] = 0xFFFFFFFFu;
		return;
	}
	select_bin(4096, k);
	const uint b1 = pick_sh[0];
	uint kk = k - pick_sh[1];
	barrier();
	// The next 12 bits of the keys in bucket b1.
	for (uint i = tid; i < 4096; i += WG) h_sh[i] = 0;
	barrier();
	for (uint i = tid; i < n; i += WG) {
		const uint key = radix_key(scores[i]);
		if (key >> 20 == b1) atomicAdd(h_sh[(key >> 8) & 4095u], 1u);
	}
	barrier();
	select_bin(4096, kk);
	const uint b2 = (b1 << 12) | pick_sh[0];
	kk -= pick_sh[1];
	barrier();
	// The last 8 bits.
	for (uint i = tid; i < 256; i += WG) h_sh[i] = 0;
	barrier();
	for (uint i = tid; i < n; i += WG) {
		const uint key = radix_key(scores[i]);
		if (key >> 8 == b2) atomicAdd(h_sh[key & 255u], 1u);
	}
	barrier();
	select_bin(256, kk);
	const float th = radix_value((b2 << 8) | pick_sh[0]);
	// Survivors in index order: each invocation a contiguous run of scores.
	const uint per = (n + WG - 1) / WG, i0 = min(n, tid * per), i1 = min(n, i0 + per);
	uint cnt = 0;
	for (uint i = i0; i < i1; i++) {
		const float v = scores[i];
		if (!(v < th) && v > -1.0 / 0.0) cnt++;
	}
	uint total;
	uint at = scan(cnt, total);
	for (uint i = i0; i < i1; i++) {
		const float v = scores[i];
		if (!(v < th) && v > -1.0 / 0.0) {
			outw[1 + at] = i;
			outw[1 + n + at] = floatBitsToUint(v);
			at++;
		}
	}
	if (tid == 0) outw[0] = total;
}
