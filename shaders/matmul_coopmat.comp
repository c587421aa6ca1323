#version 450
// matmul_coopmat: matmul.comp on tensor cores (VK_NV_cooperative_matrix, f16
// inputs, f32 accumulation): Y[m, n] = sum_k X[m, k] * W[n, k]. A workgroup of 8
// subgroups of 32 computes a 128×128 tile; subgroup (wm, wn) owns 64×32 of it as
// 4×2 16×16 accumulators. Each K step of BK (32 or 64) stages X (f32/f16 → f16) and W (any
// format, dequantized → f16) in shared memory ([row][k], padded stride); the
// next step's global loads are issued into registers before this step's
// multiplies, so memory latency hides behind the tensor cores. Chosen at run time
// when the device offers 16×16×16 f16·f16+f32; tested against the plain kernel's
// CPU reference with f16-rounded inputs.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#include "include/common.glsl"
#include "include/weights.glsl"

#if defined(A_F16)
layout(std430, binding = WB + 0) readonly buffer X_ { float16_t x[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { uvec2 xv[]; }; // 4 halves
vec4 xload4(uint i4) { const uvec2 u = xv[i4]; return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); }
#else
layout(std430, binding = WB + 0) readonly buffer X_ { float x[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { vec4 xv[]; };
vec4 xload4(uint i4) { return xv[i4]; }
#endif
layout(std430, binding = WB + 1) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P {
	uint M, N, K;
	uint xstride, ystride;
	uint vec; // K and xstride are multiples of 4 (and of 8 for float weights)
} p;

layout(constant_id = 1) const uint BK = 32; // K step: 32 or 64
#include "include/coopmat_tile.glsl"

void load_tiles(uint m0, uint n0, uint k0) {
	const uint r = gl_LocalInvocationID.x / 2, kh = (gl_LocalInvocationID.x % 2) * KH;
	const uint m = m0 + r, n = n0 + r;
	if (p.vec != 0 && k0 + BK <= p.K) {
		[[unroll]] for (uint e = 0; e < KH / 4; e++) rx[e] = m < p.M ? xload4((m * p.xstride + k0 + kh) / 4 + e) : vec4(0.0);
	} else {
		[[unroll]] for (uint e = 0; e < KH; e++) {
			const uint k = k0 + kh + e;
			rx[e / 4][e % 4] = (m < p.M && k < p.K) ? float(x[m * p.xstride + k]) : 0.0;
		}
	}
#if defined(W_BLOCKED)
	[[unroll]] for (uint h = 0; h < KH / 8; h++) {
		const uint k = k0 + kh + 8 * h; // K is a multiple of the 32-element blocks
		float v[8];
		if (n < p.N && k < p.K) {
			wget8(n * (p.K >> 5) + (k >> 5), (k % 32) / 8, n, v);
		} else {
			[[unroll]] for (uint e = 0; e < 8; e++) v[e] = 0.0;
		}
		rw[2 * h] = vec4(v[0], v[1], v[2], v[3]);
		rw[2 * h + 1] = vec4(v[4], v[5], v[6], v[7]);
	}
#else
	if (p.vec != 0 && k0 + BK <= p.K && n < p.N) {
		[[unroll]] for (uint e = 0; e < KH / 4; e++) rw[e] = wget4((n * p.K + k0 + kh) / 4 + e);
	} else {
		[[unroll]] for (uint e = 0; e < KH; e++) {
			const uint k = k0 + kh + e;
			rw[e / 4][e % 4] = (n < p.N && k < p.K) ? wget(n, k, p.K) : 0.0;
		}
	}
#endif
}

void main() {
	const uint sg = gl_SubgroupID, wm = sg / 4, wn = sg % 4;
	const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
	fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[4][2];
	[[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 2; j++) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
	load_tiles(m0, n0, 0);
	for (uint k0 = 0; k0 < p.K; k0 += BK) {
		store_tiles();
		barrier();
		if (k0 + BK < p.K) load_tiles(m0, n0, k0 + BK); // in flight during the multiplies
		[[unroll]] for (uint kk = 0; kk < BK; kk += 16) {
			fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[4], b[2];
			[[unroll]] for (uint i = 0; i < 4; i++) coopMatLoadNV(a[i], xs, ((wm * 64 + i * 16) * LD + kk) / 4, LD / 4, false);
			[[unroll]] for (uint j = 0; j < 2; j++) coopMatLoadNV(b[j], ws, ((wn * 32 + j * 16) * LD + kk) / 4, LD / 4, true);
			[[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 2; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
		}
		barrier();
	}
	const uint lane = gl_SubgroupInvocationID;
	[[unroll]] for (uint i = 0; i < 4; i++) {
		[[unroll]] for (uint j = 0; j < 2; j++) {
			const uint tm = m0 + wm * 64 + i * 16, tn = n0 + wn * 32 + j * 16;
			if (tm + 16 <= p.M && tn + 16 <= p.N && p.ystride % 4 == 0) { // 16-byte aligned rows
				coopMatStoreNV(acc[i][j], y, tm * p.ystride + tn, p.ystride, false);
			} else if (tm < p.M && tn < p.N) {
				coopMatStoreNV(acc[i][j], cs, sg * 256, 16, false);
				subgroupMemoryBarrierShared();
				for (uint e = lane; e < 256; e += 32) {
					const uint m = tm + e / 16, n = tn + e % 16;
					if (m < p.M && n < p.N) y[m * p.ystride + n] = cs[sg * 256 + e];
				}
				subgroupMemoryBarrierShared();
			}
		}
	}
}
