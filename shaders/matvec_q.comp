#version 450
// matvec_q: y[c, n] = sum_k W[n, k] * x[c, k] for block-quantized weights (q8_0, q4)
// and activations already quantized to q8_1 blocks (int8 + scale + scaled sum), so
// the inner loop is packed int8 dot products on the raw weight bytes, no float
// dequantization. The workgroup's WG invocations form ROWS groups of WG/ROWS;
// each group takes one row, each invocation one 32-element block at a time, so
// neighbouring invocations read neighbouring 16-byte chunks.
#include "include/common.glsl"
#include "include/weights.glsl"
#include "include/dot.glsl"

layout(constant_id = 1) const uint NCOLS = 1;
layout(constant_id = 2) const uint ROWS = 1;

layout(std430, binding = WB + 0) readonly buffer XQ_ { uvec4 xq[]; };   // [cols, K/32] × 2 uvec4
layout(std430, binding = WB + 1) readonly buffer XD_ { vec2 xd[]; };    // [cols, K/32] (d, d*sum)
layout(std430, binding = WB + 2) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P {
	uint N, K;
	uint xstride; // blocks between activation columns
	uint ystride;
} p;

shared float part[WG * NCOLS];

void main() {
	const uint tid = gl_LocalInvocationID.x;
	const uint TPR = WG / ROWS;
	const uint r = tid / TPR, lane = tid % TPR;
	const uint row = gl_WorkGroupID.x * ROWS + r;
	const uint nb = p.K >> 5;
	float acc[NCOLS];
	[[unroll]] for (uint c = 0; c < NCOLS; c++) acc[c] = 0.0;
	if (row < p.N) {
#if defined(W_Q4)
		const vec2 rd = w_rd[row];
#endif
		for (uint b = lane; b < nb; b += TPR) {
			const uint gb = row * nb + b;
#if defined(W_Q4)
			const uvec4 q = w_q4[gb];
			const uint sm = uint(w_sm[gb]);
			const float s = rd.x * float(sm & 255u), m = rd.y * float(sm >> 8);
			[[unroll]] for (uint c = 0; c < NCOLS; c++) {
				const uint xb = c * p.xstride + b;
				const uvec4 x0 = xq[2 * xb], x1 = xq[2 * xb + 1];
				int dt = DOT4(q.x & 0x0F0F0F0Fu, x0.x) + DOT4((q.x >> 4) & 0x0F0F0F0Fu, x0.y)
				       + DOT4(q.y & 0x0F0F0F0Fu, x0.z) + DOT4((q.y >> 4) & 0x0F0F0F0Fu, x0.w)
				       + DOT4(q.z & 0x0F0F0F0Fu, x1.x) + DOT4((q.z >> 4) & 0x0F0F0F0Fu, x1.y)
				       + DOT4(q.w & 0x0F0F0F0Fu, x1.z) + DOT4((q.w >> 4) & 0x0F0F0F0Fu, x1.w);
				const vec2 a = xd[xb];
				acc[c] += s * a.x * float(dt) - m * a.y;
			}
#else
			const uvec4 q0 = w_q4[2 * gb], q1 = w_q4[2 * gb + 1];
			const float s = float(w_d[gb]);
			[[unroll]] for (uint c = 0; c < NCOLS; c++) {
				const uint xb = c * p.xstride + b;
				const uvec4 x0 = xq[2 * xb], x1 = xq[2 * xb + 1];
				int dt = DOT4(q0.x, x0.x) + DOT4(q0.y, x0.y) + DOT4(q0.z, x0.z) + DOT4(q0.w, x0.w)
				       + DOT4(q1.x, x1.x) + DOT4(q1.y, x1.y) + DOT4(q1.z, x1.z) + DOT4(q1.w, x1.w);
				acc[c] += s * xd[xb].x * float(dt);
			}
#endif
		}
	}
	// Reduce each row group: subgroups first, then shared memory across subgroups.
	if (TPR % gl_SubgroupSize != 0) {
		// Row groups smaller than a subgroup: sum through shared memory.
		[[unroll]] for (uint c = 0; c < NCOLS; c++) part[c * WG + tid] = acc[c];
		barrier();
		if (lane == 0 && row < p.N) {
			[[unroll]] for (uint c = 0; c < NCOLS; c++) {
				float s = 0.0;
				for (uint i = 0; i < TPR; i++) s += part[c * WG + tid + i];
				y[c * p.ystride + row] = s;
			}
		}
	} else {
		// A row group spans whole subgroups: subgroupAdd, then sum the subgroup totals.
		const uint SPR = TPR / gl_SubgroupSize;
		[[unroll]] for (uint c = 0; c < NCOLS; c++) {
			float s = subgroupAdd(acc[c]);
			if (subgroupElect()) part[c * WG + gl_SubgroupID] = s;
		}
		barrier();
		if (lane == 0 && row < p.N) {
			[[unroll]] for (uint c = 0; c < NCOLS; c++) {
				float s = 0.0;
				for (uint i = 0; i < SPR; i++) s += part[c * WG + r * SPR + i];
				y[c * p.ystride + row] = s;
			}
		}
	}
}
