#version 450
// topk_draw: the third pass of sampling a visual token on the GPU, one
// workgroup. It draws one of topk_select's survivors for the uniform r the host
// wrote into the params, by the rule of model/cpu/draw.go, in the same IEEE-754
// double operations, none contracted (precise), so the host would choose the
// same token: w_j = expW(v_j − max v), sums of blocks of 64 weights (each left
// to right, then the block sums left to right), u = r·total walked down the
// block sums and then the chosen block's weights until it drops below zero.
// out = count (0xFFFFFFFF with a NaN score: the host samples from the logits),
// then the drawn survivor's index.
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer SV_ { uint surv[]; };  // count, indices [n], values [n] (topk_select)
layout(std430, binding = 1) readonly buffer S_ { uint sp[]; };     // words 6 and 7: r (a double's low and high words)
layout(std430, binding = 2) buffer W_ { double w[]; };             // [n + n/64 + 1]: the weights, then the block sums
layout(std430, binding = 3) writeonly buffer O_ { uint outw[]; };

layout(push_constant) uniform P { uint n; } p;

const uint B = 64; // cpu.DrawBlock

shared float max_sh[WG]; // one per subgroup (subgroups of 4 or more)
const uint MAXB = 2048;   // block sums kept in shared memory (131,072 survivors)
shared double bs_sh[MAXB];

// D is the double with the given high and low words.
#define D(hi, lo) packDouble2x32(uvec2(lo, hi))

// expW is cpu.ExpW: e^x for x ≤ 0 (0 below −708).
double expW(double x) {
	if (!(x >= -708.0lf)) return 0.0lf;
	precise double k = roundEven(x * D(0x3ff71547u, 0x652b82feu));    // log2(e)
	precise double r = x - k * D(0x3fe62e42u, 0xfee00000u);                // ln 2, high part
	r = r - k * D(0x3dea39efu, 0x35793c76u);                                 // ln 2, the rest
	precise double q = D(0x3de61246u, 0x13a86d09u);                         // 1/13!
	q = q * r + D(0x3e21eed8u, 0xeff8d898u);
	q = q * r + D(0x3e5ae645u, 0x67f544e4u);
	q = q * r + D(0x3e927e4fu, 0xb7789f5cu);
	q = q * r + D(0x3ec71de3u, 0xa556c734u);
	q = q * r + D(0x3efa01a0u, 0x1a01a01au);
	q = q * r + D(0x3f2a01a0u, 0x1a01a01au);
	q = q * r + D(0x3f56c16cu, 0x16c16c17u);
	q = q * r + D(0x3f811111u, 0x11111111u);
	q = q * r + D(0x3fa55555u, 0x55555555u);
	q = q * r + D(0x3fc55555u, 0x55555555u);
	q = q * r + D(0x3fe00000u, 0x00000000u);
	q = q * r + D(0x3ff00000u, 0x00000000u);
	q = q * r + D(0x3ff00000u, 0x00000000u);                                 // 1/0!
	precise double e = q * packDouble2x32(uvec2(0u, uint(1023 + int(k)) << 20)); // · 2^k
	return e;
}

void main() {
	const uint tid = gl_LocalInvocationID.x, n = p.n;
	const uint cnt = surv[0];
	if (cnt == 0xFFFFFFFFu || cnt == 0u) {
		if (tid == 0) {
			outw[0] = cnt;
			outw[1] = 0xFFFFFFFFu;
		}
		return;
	}
	// (Eight loads an invocation in flight at a time: one workgroup's
	// latency is what this pass takes.)
	float mx = -1.0 / 0.0;
	for (uint j = tid; j < cnt; j += 8 * WG) {
		float v[8];
		[[unroll]] for (uint c = 0; c < 8; c++) v[c] = j + c * WG < cnt ? uintBitsToFloat(surv[1 + n + j + c * WG]) : -1.0 / 0.0;
		[[unroll]] for (uint c = 0; c < 8; c++) mx = max(mx, v[c]);
	}
	mx = subgroupMax(mx);
	if (subgroupElect()) max_sh[gl_SubgroupID] = mx;
	barrier();
	for (uint s = 0; s < gl_NumSubgroups; s++) mx = max(mx, max_sh[s]);
	const double m = double(mx);
	for (uint j = tid; j < cnt; j += 8 * WG) {
		float v[8];
		[[unroll]] for (uint c = 0; c < 8; c++) v[c] = j + c * WG < cnt ? uintBitsToFloat(surv[1 + n + j + c * WG]) : 0.0;
		for (uint c = 0; c < 8 && j + c * WG < cnt; c++) {
			precise double x = double(v[c]) - m;
			w[j + c * WG] = expW(x);
		}
	}
	memoryBarrierBuffer();
	barrier();
	// Block sums, each of its 64 weights left to right (loaded 16 at a time,
	// so that the loads are in flight together), into shared memory when
	// they fit (the walk below reads them one after another).
	const uint nb = (cnt + B - 1) / B;
	const bool shared_sums = nb <= MAXB;
	for (uint b = tid; b < nb; b += WG) {
		const uint j1 = min(cnt, b * B + B);
		precise double s = 0.0lf;
		for (uint j = b * B; j < j1; j += 16) {
			double t[16];
			[[unroll]] for (uint c = 0; c < 16; c++) t[c] = j + c < j1 ? w[j + c] : 0.0lf;
			[[unroll]] for (uint c = 0; c < 16; c++)
				if (j + c < j1) s = s + t[c];
		}
		if (shared_sums) bs_sh[b] = s;
		else w[n + b] = s;
	}
	memoryBarrierBuffer();
	barrier();
	if (tid != 0) return;
#define BSUM(b) (shared_sums ? bs_sh[b] : w[n + (b)])
	precise double total = 0.0lf;
	for (uint b = 0; b < nb; b++) total = total + BSUM(b);
	precise double u = packDouble2x32(uvec2(sp[6], sp[7])) * total;
	uint pick = cnt - 1; // (when u never drops below a block sum)
	for (uint b = 0; b < nb; b++) {
		const double s = BSUM(b);
		if (u >= s) {
			u = u - s;
			continue;
		}
		// The chosen block's weights, loaded together, then walked.
		const uint j0 = b * B, hi = min(cnt, j0 + B);
		double t[B];
		[[unroll]] for (uint c = 0; c < B; c++) t[c] = j0 + c < hi ? w[j0 + c] : 0.0lf;
		pick = hi - 1;
		for (uint c = 0; c < hi - j0; c++) {
			u = u - t[c];
			if (u < 0.0lf) {
				pick = j0 + c;
				break;
			}
		}
		break;
	}
	outw[0] = cnt;
	outw[1] = surv[1 + pick];
}
