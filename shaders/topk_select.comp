#version 450
// topk_select: the second pass of sampling a visual token on the GPU, one
// workgroup. It finds the k-th largest of scores [n] exactly, by radix select
// on cfg_hist's histogram of the keys' top 12 bits and two more histograms
// (the next 12 bits, then the last 8) of the bucket that holds it, and writes
// it (the survivors' threshold th) into sel[0]; sel[1] is set when a score
// was NaN (the host then samples from the logits). topk_compact writes the
// survivors. The histogram is zeroed for the next step. Its passes over the
// scores load four vec4s an invocation at a time: one workgroup's loads in
// flight are what bounds it.
#include "include/common.glsl"
#include "include/radix.glsl"
#include "include/scan.glsl"

layout(std430, binding = 0) readonly buffer SC_ { vec4 scores[]; }; // [ceil(n / 4)]
layout(std430, binding = 1) readonly buffer S_ { uint sp[]; };       // word 4: k
layout(std430, binding = 2) buffer H_ { uint hist[]; };
layout(std430, binding = 3) writeonly buffer SEL_ { uint sel[]; };  // th, NaN

layout(push_constant) uniform P { uint n; } p;

shared uint h_sh[4096];
shared uint pick_sh[2];

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
	uint above = wg_scan(local, total);
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

// refine adds, for the keys of scores [n] whose top bits (key >> shift) are
// pre, the count of their next bits ((key >> low) & mask) into h_sh.
void refine(uint n, uint shift, uint pre, uint low, uint mask) {
	const uint n4 = (n + 3) / 4;
	for (uint b = gl_LocalInvocationID.x; b < n4; b += 4 * WG) {
		vec4 v[4];
		[[unroll]] for (uint j = 0; j < 4; j++) v[j] = b + j * WG < n4 ? scores[b + j * WG] : vec4(0.0);
		[[unroll]] for (uint j = 0; j < 4; j++) {
			[[unroll]] for (uint c = 0; c < 4; c++) {
				const uint i = 4 * (b + j * WG) + c;
				const uint key = radix_key(v[j][c]);
				if (i < n && key >> shift == pre) atomicAdd(h_sh[(key >> low) & mask], 1u);
			}
		}
	}
}

void main() {
	const uint tid = gl_LocalInvocationID.x, n = p.n, k = sp[4];
	const bool nan = hist[4096] != 0;
	for (uint i = tid; i < 4096; i += WG) h_sh[i] = hist[i];
	barrier();
	for (uint i = tid; i <= 4096; i += WG) hist[i] = 0;
	if (nan) {
		if (tid == 0) sel[1] = 1;
		return;
	}
	select_bin(4096, k);
	const uint b1 = pick_sh[0];
	uint kk = k - pick_sh[1];
	barrier();
	// The next 12 bits of the keys in bucket b1.
	for (uint i = tid; i < 4096; i += WG) h_sh[i] = 0;
	barrier();
	refine(n, 20, b1, 8, 4095u);
	barrier();
	select_bin(4096, kk);
	const uint b2 = (b1 << 12) | pick_sh[0];
	kk -= pick_sh[1];
	barrier();
	// The last 8 bits.
	for (uint i = tid; i < 256; i += WG) h_sh[i] = 0;
	barrier();
	refine(n, 8, b2, 0, 255u);
	barrier();
	select_bin(256, kk);
	if (tid == 0) {
		sel[0] = floatBitsToUint(radix_value((b2 << 8) | pick_sh[0]));
		sel[1] = 0;
	}
}
