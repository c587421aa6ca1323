#version 450
// matvec_q: y[c, n] = sum_k W[n, k] * x[c, k] for block-quantized weights (q8_0,
// q4) and activations already quantized to q8_1 blocks (int8 + scale + scaled
// sum), so the inner loop is packed int8 dot products on the raw weight bytes.
// A workgroup computes ROWS rows; each invocation takes one 32-element block at a
// time (BPT consecutive ones per step), loads its activation codes once and reuses them for all ROWS rows, whose
// weight loads (16 bytes q4, 32 bytes q8_0) are independent and coalesced
// (include/q8_1_rows.glsl's block_dot, which qkv_heads.comp shares).
#include "include/common.glsl"
#include "include/weights.glsl"
#include "include/dot.glsl"

layout(constant_id = 1) const uint NCOLS = 1;
layout(constant_id = 2) const uint ROWS = 1;
layout(constant_id = 3) const uint BPT = 1; // consecutive blocks per invocation and step

layout(std430, binding = WB + 0) readonly buffer XQ_ { uvec4 xq[]; };   // [cols, K/32] × 2 uvec4
layout(std430, binding = WB + 1) readonly buffer XD_ { vec2 xd[]; };    // [cols, K/32] (d, d*sum)
#if defined(ADD_Y)
// With ADD_Y the results are added to y (a residual stream) instead of written.
layout(std430, binding = WB + 2) buffer Y_ { float y[]; };
#else
layout(std430, binding = WB + 2) writeonly buffer Y_ { float y[]; };
#endif

layout(push_constant) uniform P {
	uint N, K;
	uint xstride; // blocks between activation columns
	uint ystride;
#if defined(INV_RMS)
	uint nw;
	float eps;
#endif
} p;

#if defined(INV_RMS) // rmsnorm_q8_1's blocks, the RMS still to divide by
#define S_BINDING (WB + 3)
#include "include/inv_rms.glsl"
#endif
#include "include/reduce_rows.glsl"
#define RR ROWS
#include "include/q8_1_rows.glsl"

void main() {
	const uint tid = gl_LocalInvocationID.x;
	// Workgroups run along x, and on to y past the device's limit on x
	// (lavapipe's 65,535 is less than a vocabulary's rows).
	const uint row0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * ROWS;
	if (row0 >= p.N) return; // (uniform) the last row of workgroups along y
	const uint nb = p.K >> 5;
#if defined(INV_RMS)
	inv_rms_load();
#endif
	[[unroll]] for (uint r = 0; r < ROWS; r++) rows[r] = min(row0 + r, p.N - 1);
	rows_start();
	for (uint b0 = tid * BPT; b0 < nb; b0 += WG * BPT)
	[[unroll]] for (uint j = 0; j < BPT; j++) {
		const uint b = b0 + j;
		if (BPT > 1 && b >= nb) break;
		block_dot(b, nb);
	}
#if defined(INV_RMS)
	inv_rms_sum();
#endif
	reduce_rows(acc, row0, p.N, p.ystride);
}
