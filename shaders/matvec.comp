#version 450
// matvec: y[c, n] = sum_k W[n, k] * x[c, k] for NCOLS activation columns (1, or 2
// for the CFG pair), float weights (f32/f16/bf16), activations f32 or f16.
// A workgroup computes ROWS rows. When K % 8 == 0 each invocation takes 8
// consecutive k at a time: it loads the activations once into registers and
// reuses them for all ROWS rows, whose 16-byte (f16/bf16) or 32-byte (f32) weight
// loads are independent, so many are in flight. Otherwise a scalar loop.
// ADD_Y adds the results to y; INV_RMS divides them by the RMS of a norm's
// input (include/inv_rms.glsl).
#include "include/common.glsl"
#include "include/weights.glsl"

layout(constant_id = 1) const uint NCOLS = 1;
layout(constant_id = 2) const uint ROWS = 1;

#if defined(A_F16)
layout(std430, binding = WB + 0) readonly buffer XS_ { float16_t x_s[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { uvec4 x_v[]; }; // 8 halves
void xload8(uint i8, out vec4 a, out vec4 b) {
	const uvec4 u = x_v[i8];
	a = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
	b = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
}
#else
layout(std430, binding = WB + 0) readonly buffer XS_ { float x_s[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { vec4 x_v[]; };
void xload8(uint i8, out vec4 a, out vec4 b) {
	a = x_v[2 * i8];
	b = x_v[2 * i8 + 1];
}
#endif
#if defined(ADD_Y) // the results added to y (a residual stream)
layout(std430, binding = WB + 1) buffer Y_ { float y[]; };
#else
layout(std430, binding = WB + 1) writeonly buffer Y_ { float y[]; };
#endif

#include "include/wload8.glsl"

layout(push_constant) uniform P {
	uint N, K;
	uint xstride; // elements between activation columns
	uint ystride; // elements between output columns
	uint vec;     // 1 when K and xstride are multiples of 8
#if defined(INV_RMS)
	uint nw;
	float eps;
#endif
} p;

#if defined(INV_RMS) // rmsnorm.comp's PARTS, the RMS still to divide by
#define S_BINDING (WB + 2)
#include "include/inv_rms.glsl"
#endif
#include "include/reduce_rows.glsl"

void main() {
	const uint tid = gl_LocalInvocationID.x;
	// Workgroups run along x, and on to y past the device's limit on x
	// (lavapipe's 65,535 is less than a vocabulary's rows).
	const uint row0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * ROWS;
	if (row0 >= p.N) return; // (uniform) the last row of workgroups along y
	float acc[ROWS][NCOLS];
	[[unroll]] for (uint r = 0; r < ROWS; r++) [[unroll]] for (uint c = 0; c < NCOLS; c++) acc[r][c] = 0.0;
#if defined(INV_RMS)
	inv_rms_load();
#endif
	if (p.vec != 0) {
		const uint K8 = p.K >> 3;
		for (uint i = tid; i < K8; i += WG) {
			vec4 xa[NCOLS], xb[NCOLS];
			[[unroll]] for (uint c = 0; c < NCOLS; c++) xload8(c * (p.xstride >> 3) + i, xa[c], xb[c]);
			[[unroll]] for (uint r = 0; r < ROWS; r++) {
				const uint row = min(row0 + r, p.N - 1);
				vec4 wa, wb;
				wload8(row * K8 + i, wa, wb);
				[[unroll]] for (uint c = 0; c < NCOLS; c++) acc[r][c] += dot(wa, xa[c]) + dot(wb, xb[c]);
			}
		}
	} else {
		for (uint k = tid; k < p.K; k += WG) {
			[[unroll]] for (uint r = 0; r < ROWS; r++) {
				const uint row = min(row0 + r, p.N - 1);
				const float wv = wget(row, k, p.K);
				[[unroll]] for (uint c = 0; c < NCOLS; c++) acc[r][c] += wv * float(x_s[c * p.xstride + k]);
			}
		}
	}
#if defined(INV_RMS)
	inv_rms_sum();
#endif
	reduce_rows(acc, row0, p.N, p.ystride);
}
