#version 450
// matvec: y[c, n] = sum_k W[n, k] * x[c, k] for NCOLS activation columns (1, or 2
// for the CFG pair), float weights (f32/f16/bf16), activations f32 or f16.
// Each workgroup computes ROWS rows; all WG invocations stride over K.
#include "include/common.glsl"
#include "include/weights.glsl"

layout(constant_id = 1) const uint NCOLS = 1;
layout(constant_id = 2) const uint ROWS = 1;

#if defined(A_F16)
layout(std430, binding = WB + 0) readonly buffer XS_ { float16_t x_s[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { f16vec4 x_v[]; };
#else
layout(std430, binding = WB + 0) readonly buffer XS_ { float x_s[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { vec4 x_v[]; };
#endif
layout(std430, binding = WB + 1) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P {
	uint N, K;
	uint xstride; // elements between activation columns
	uint ystride; // elements between output columns
	uint vec;     // 1 when K and xstride are multiples of 4
} p;

void main() {
	const uint tid = gl_LocalInvocationID.x;
	const uint row0 = gl_WorkGroupID.x * ROWS;
	for (uint r = 0; r < ROWS; r++) {
		const uint row = row0 + r;
		if (row >= p.N) break; // uniform across the workgroup
		float acc[NCOLS];
		[[unroll]] for (uint c = 0; c < NCOLS; c++) acc[c] = 0.0;
		if (p.vec != 0) {
			const uint K4 = p.K >> 2, base = row * K4;
			for (uint i = tid; i < K4; i += WG) {
				vec4 wv = wget4(base + i);
				[[unroll]] for (uint c = 0; c < NCOLS; c++) acc[c] += dot(wv, vec4(x_v[c * (p.xstride >> 2) + i]));
			}
		} else {
			for (uint k = tid; k < p.K; k += WG) {
				float wv = wget(row, k, p.K);
				[[unroll]] for (uint c = 0; c < NCOLS; c++) acc[c] += wv * float(x_s[c * p.xstride + k]);
			}
		}
		[[unroll]] for (uint c = 0; c < NCOLS; c++) {
			float s = wg_sum(acc[c]);
			if (tid == 0) y[c * p.ystride + row] = s;
		}
	}
}
