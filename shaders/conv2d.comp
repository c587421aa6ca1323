#version 450
// conv2d: y = conv(x, W) + bias (+ residual), as an implicit GEMM over
// M = output pixels, N = output channels, K = Cin·KS·KS, with weights W
// [Cout, Cin·KS·KS] (PyTorch's [Cout, Cin, KS, KS] flattened) of any float format.
// Options (specialization constants): KS 1 or 3; STRIDE 1 or 2 (pad 0 with the
// right/bottom zero padding of the IBQ Downsample, or pad (KS-1)/2 when 1);
// UPSAMPLE reads a nearest ×2 upsampled input without building it; IN_PM/OUT_PM
// lay x/y out pixel-major [H·W, C] instead of channel-major [C, H·W].
// Tiles of 64×64 outputs, K steps of 32, 256 invocations of 4×4 outputs.
#include "include/common.glsl"
#include "include/weights.glsl"

layout(constant_id = 1) const uint KS = 3;
layout(constant_id = 2) const uint STRIDE = 1;
layout(constant_id = 3) const uint UPSAMPLE = 0;
layout(constant_id = 4) const uint IN_PM = 0;
layout(constant_id = 5) const uint OUT_PM = 0;
layout(constant_id = 6) const uint CIN_INNER = 0; // K runs (ky, kx, ci), ci fastest

layout(std430, binding = WB + 0) readonly buffer X_ { float x[]; };
layout(std430, binding = WB + 1) readonly buffer B_ { float bias[]; };
layout(std430, binding = WB + 2) readonly buffer R_ { float res[]; };
layout(std430, binding = WB + 3) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P {
	uint Cin, H, W;    // input (before upsampling)
	uint Cout, Ho, Wo; // output
	uint residual;     // 1: add res (laid out like y)
} p;

const uint BM = 64, BN = 64, BK = 32;
shared float xs[BK * BM];
shared float ws[BK * BN];

#include "include/im2col.glsl"

void main() {
	const uint tid = gl_LocalInvocationID.x;
	const uint M = p.Ho * p.Wo, N = p.Cout, K = p.Cin * KS * KS;
	const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
	const uint tx = tid % 16, ty = tid / 16, lr = tid / 4, lp = tid % 4;
	float acc[4][4];
	[[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 4; j++) acc[i][j] = 0.0;
	im2col_pixel(m0 + lr);
	for (uint k0 = 0; k0 < K; k0 += BK) {
		uint ci, ky, kx;
		im2col_split(k0 + lp * 8, ci, ky, kx);
		[[unroll]] for (uint e = 0; e < 8; e++) {
			const uint k = k0 + lp * 8 + e;
			xs[(lp * 8 + e) * BM + lr] = xat(ci, ky, kx);
			im2col_next(ci, ky, kx);
			ws[(lp * 8 + e) * BN + lr] = (n0 + lr < N && k < K) ? wget(n0 + lr, k, K) : 0.0;
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
		if (m >= M) continue;
		[[unroll]] for (uint j = 0; j < 4; j++) {
			const uint n = n0 + tx * 4 + j;
			if (n >= N) continue;
			conv_put(m, n, M, N, acc[i][j]);
		}
	}
}
