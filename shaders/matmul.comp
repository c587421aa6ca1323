#version 450
// matmul: Y[m, n] = sum_k X[m, k] * W[n, k] for many activation rows (prefill).
// 64×64 output tiles, K in steps of 32 (one quant block), 256 invocations each
// computing 4×4 outputs from tiles staged in shared memory as f32. Weights of any
// format are dequantized while staging. Plain kernel: the CI path everywhere.
#include "include/common.glsl"
#include "include/weights.glsl"

#if defined(A_F16)
layout(std430, binding = WB + 0) readonly buffer X_ { float16_t x[]; };
#else
layout(std430, binding = WB + 0) readonly buffer X_ { float x[]; };
#endif
layout(std430, binding = WB + 1) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P {
	uint M, N, K;
	uint xstride; // elements between rows of X
	uint ystride; // elements between rows of Y
} p;

const uint BM = 64, BN = 64, BK = 32;
shared float xs[BK * BM];
shared float ws[BK * BN];

void main() {
	const uint tid = gl_LocalInvocationID.x; // WG must be 256
	const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
	const uint tx = tid % 16, ty = tid / 16;
	// Staging: invocation tid loads 8 consecutive k of one row: row lr, part lp.
	const uint lr = tid / 4, lp = tid % 4;
	float acc[4][4];
	[[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 4; j++) acc[i][j] = 0.0;

	for (uint k0 = 0; k0 < p.K; k0 += BK) {
		{ // X tile
			const uint m = m0 + lr;
			[[unroll]] for (uint e = 0; e < 8; e++) {
				const uint k = k0 + lp * 8 + e;
				xs[(lp * 8 + e) * BM + lr] = (m < p.M && k < p.K) ? float(x[m * p.xstride + k]) : 0.0;
			}
		}
		{ // W tile
			const uint n = n0 + lr;
#if defined(W_BLOCKED)
			float v[8];
			if (n < p.N) {
				wget8(n * (p.K >> 5) + (k0 >> 5), lp, n, v);
			} else {
				[[unroll]] for (uint e = 0; e < 8; e++) v[e] = 0.0;
			}
			[[unroll]] for (uint e = 0; e < 8; e++) ws[(lp * 8 + e) * BN + lr] = v[e];
#else
			[[unroll]] for (uint e = 0; e < 8; e++) {
				const uint k = k0 + lp * 8 + e;
				ws[(lp * 8 + e) * BN + lr] = (n < p.N && k < p.K) ? wget(n, k, p.K) : 0.0;
			}
#endif
		}
		barrier();
		[[unroll]] for (uint kk = 0; kk < BK; kk++) {
			float a[4], b[4];
			[[unroll]] for (uint i = 0; i < 4; i++) a[i] = xs[kk * BM + ty * 4 + i];
			[[unroll]] for (uint j = 0; j < 4; j++) b[j] = ws[kk * BN + tx * 4 + j];
			[[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
		}
		barrier();
	}
	[[unroll]] for (uint i = 0; i < 4; i++) {
		const uint m = m0 + ty * 4 + i;
		if (m >= p.M) continue;
		[[unroll]] for (uint j = 0; j < 4; j++) {
			const uint n = n0 + tx * 4 + j;
			if (n < p.N) y[m * p.ystride + n] = acc[i][j];
		}
	}
}
