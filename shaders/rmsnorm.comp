#version 450
// rmsnorm: y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w, one workgroup per
// row. Also the per-head q_norm/k_norm (rows = tokens × heads, D = head_dim).
// With OUT_F16, y is f16 (the tensor-core GEMMs' input, which they round to f16 anyway).
// With RESIDUAL the residual add before it is fused: x += res (written back),
// then the norm of the sum.
#include "include/common.glsl"

#if defined(RESIDUAL)
layout(std430, binding = 0) buffer X_ { float x[]; };
layout(std430, binding = 3) readonly buffer R_ { float res[]; };
#else
layout(std430, binding = 0) readonly buffer X_ { float x[]; };
#endif
layout(std430, binding = 1) readonly buffer W_ { float w[]; };
#if defined(OUT_F16)
layout(std430, binding = 2) writeonly buffer Y_ { float16_t y[]; };
#define OUT(v) float16_t(v)
#else
layout(std430, binding = 2) writeonly buffer Y_ { float y[]; };
#define OUT(v) (v)
#endif

layout(push_constant) uniform P {
	uint D;
	float eps;
} p;

#if defined(PARTS)
// PARTS (decode steps): row r is spread over gl_NumWorkGroups.x workgroups of
// WG elements, none waiting for another: y = x·w, not yet divided by the RMS,
// and each workgroup's share of the sum of squares in shares[r, part], from
// which the mat-vec reading y (matvec.comp with INV_RMS) divides.
layout(std430, binding = 3) writeonly buffer S_ { float shares[]; };

void main() {
	const uint row = gl_WorkGroupID.y, part = gl_WorkGroupID.x, i = part * WG + gl_LocalInvocationID.x;
	const float v = i < p.D ? x[row * p.D + i] : 0.0;
	if (i < p.D) y[row * p.D + i] = OUT(v * w[i]);
	const float ss = wg_sum(v * v);
	if (gl_LocalInvocationID.x == 0) shares[row * gl_NumWorkGroups.x + part] = ss;
}
#else
void main() {
	const uint base = gl_WorkGroupID.x * p.D;
	float ss = 0.0;
	for (uint i = gl_LocalInvocationID.x; i < p.D; i += WG) {
#if defined(RESIDUAL)
		const float v = x[base + i] + res[base + i];
		x[base + i] = v; // read back below by this same invocation
#else
		const float v = x[base + i];
#endif
		ss += v * v;
	}
	const float inv = inversesqrt(wg_sum(ss) / float(p.D) + p.eps);
	for (uint i = gl_LocalInvocationID.x; i < p.D; i += WG) y[base + i] = OUT(x[base + i] * inv * w[i]);
}
#endif
