#version 450
// cfg_hist: the first pass of sampling a visual token on the GPU (model/gen's
// fused sampler, same arithmetic): scores[i] = s·cond[i] + (1−s)·uncond[i] in
// double, rounded once to float, for the n logits from column lo of rows 0
// (cond) and 1 (uncond) of logits [2, V]; and the count of scores in each of
// the 4096 buckets of their radix keys' top 12 bits, added into hist. hist[4096]
// is set when a score is NaN (the host then samples from the logits).
// Four scores an invocation; a workgroup merges its own histogram.
#include "include/common.glsl"
#include "include/radix.glsl"

layout(std430, binding = 0) readonly buffer L_ { float logits[]; };
layout(std430, binding = 1) readonly buffer S_ { uvec2 sp[]; };      // s, 1 − s (double words), k
layout(std430, binding = 2) writeonly buffer SC_ { float scores[]; };
layout(std430, binding = 3) buffer H_ { uint hist[]; };              // [4096 + 1], zero on entry

layout(push_constant) uniform P { uint V, lo, n; } p;

shared uint h_sh[4096];

void main() {
	const uint tid = gl_LocalInvocationID.x;
	for (uint i = tid; i < 4096; i += WG) h_sh[i] = 0;
	barrier();
	const double s = packDouble2x32(sp[0]), t = packDouble2x32(sp[1]);
	bool nan = false;
	[[unroll]] for (uint j = 0; j < 4; j++) {
		const uint i = (gl_WorkGroupID.x * 4 + j) * WG + tid;
		if (i < p.n) {
			precise double a = s * double(logits[p.lo + i]);
			precise double b = t * double(logits[p.V + p.lo + i]);
			precise double v = a + b;
			const float f = float(v);
			scores[i] = f;
			nan = nan || isnan(f);
			atomicAdd(h_sh[radix_key(f) >> 20], 1u);
		}
	}
	if (nan) atomicOr(hist[4096], 1u);
	barrier();
	for (uint i = tid; i < 4096; i += WG)
		if (h_sh[i] != 0) atomicAdd(hist[i], h_sh[i]);
}
