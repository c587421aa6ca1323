#version 450
// matmul_coopmat: matmul.comp on tensor cores (VK_NV_cooperative_matrix, f16
// inputs, f32 accumulation): Y[m, n] = sum_k X[m, k] * W[n, k]. A workgroup of 8
// subgroups of 32 computes a 128×128 tile; subgroup (wm, wn) owns 64×32 of it as
// 4×2 16×16 accumulators. Each K step of BK (32 or 64) stages X (f32/f16 → f16) and W (any
// format, dequantized → f16) in shared memory ([row][k], padded stride), in one
// buffer or two (include/coopmat_tile.glsl); the next step's global loads are
// issued into registers before this step's multiplies, so memory latency hides
// behind the tensor cores. Chosen at run time
// when the device offers 16×16×16 f16·f16+f32; tested against the plain kernel's
// CPU reference with f16-rounded inputs.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#include "include/common.glsl"
#include "include/weights.glsl"

#if defined(A_F16)
layout(std430, binding = WB + 0) readonly buffer X_ { float16_t x[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { uvec2 xv[]; }; // 4 halves
#else
layout(std430, binding = WB + 0) readonly buffer X_ { float x[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { vec4 xv[]; };
#endif
layout(std430, binding = WB + 1) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P {
	uint M, N, K;
	uint xstride, ystride;
	uint vec; // K and xstride are multiples of 4 (and of 8 for float weights)
} p;

layout(constant_id = 1) const uint BK = 32; // K step: 32 or 64
layout(constant_id = 2) const uint STAGES = 1; // shared buffers: 1, or 2 with BK 32
#include "include/coopmat_tile.glsl"

// The next step's values wait in registers in their stored form (f16 pairs,
// q4 nibbles...), not as floats, so they cost few registers; xpack and wpack
// convert them while staging.
uint tm0, tn0; // this workgroup's first X and W rows
#if defined(A_F16)
uvec2 rx[KH / 4];
uvec2 xpack(uint e) { return rx[e]; }
#else
vec4 rx[KH / 4];
uvec2 xpack(uint e) { return uvec2(packHalf2x16(rx[e].xy), packHalf2x16(rx[e].zw)); }
#endif

#if defined(W_Q4)
uint rw[KH / 8]; // KH / 8 words of one block: 8 elements each
uint rsm;        // the block's scale and min
vec2 rrd;        // the row's
uvec2 wpack(uint e) {
	const float s = rrd.x * float(rsm & 255u), m = rrd.y * float(rsm >> 8);
	const uint wd = rw[e / 2] >> (4 * (e % 2)); // elements 8(e/2) + 4(e%2) + 0..3, a byte each
	return uvec2(packHalf2x16(vec2(s * float(wd & 15u) - m, s * float((wd >> 8) & 15u) - m)),
	             packHalf2x16(vec2(s * float((wd >> 16) & 15u) - m, s * float((wd >> 24) & 15u) - m)));
}
#elif defined(W_Q8_0)
uint rw[KH / 4]; // KH / 4 words of one block: 4 elements each
float rd;
uvec2 wpack(uint e) {
	const uint wd = rw[e];
	return uvec2(packHalf2x16(rd * vec2(int(wd << 24) >> 24, int(wd << 16) >> 24)),
	             packHalf2x16(rd * vec2(int(wd << 8) >> 24, int(wd) >> 24)));
}
#elif defined(W_F16)
#define WZERO float16_t(0.0)
f16vec4 rw[KH / 4];
uvec2 wpack(uint e) { return uvec2(packFloat2x16(rw[e].xy), packFloat2x16(rw[e].zw)); }
#elif defined(W_BF16)
uvec2 rw[KH / 4]; // pairs of bf16
vec2 bf2(uint u) { return vec2(uintBitsToFloat(u << 16), uintBitsToFloat(u & 0xFFFF0000u)); }
uvec2 wpack(uint e) { return uvec2(packHalf2x16(bf2(rw[e].x)), packHalf2x16(bf2(rw[e].y))); }
#else
#define WZERO 0.0
vec4 rw[KH / 4];
uvec2 wpack(uint e) { return uvec2(packHalf2x16(rw[e].xy), packHalf2x16(rw[e].zw)); }
#endif

void load_tiles(uint k0) {
	const uint r = gl_LocalInvocationID.x / 2, kh = (gl_LocalInvocationID.x % 2) * KH;
	const uint m = tm0 + r, n = tn0 + r, kb = k0 + kh;
	const bool whole = p.vec != 0 && k0 + BK <= p.K;
#if defined(A_F16)
	if (whole) {
		[[unroll]] for (uint e = 0; e < KH / 4; e++) rx[e] = m < p.M ? xv[(m * p.xstride + kb) / 4 + e] : uvec2(0);
	} else {
		[[unroll]] for (uint e = 0; e < KH / 2; e++) {
			const uint k = kb + 2 * e;
			const vec2 v = vec2(m < p.M && k < p.K ? float(x[m * p.xstride + k]) : 0.0, m < p.M && k + 1 < p.K ? float(x[m * p.xstride + k + 1]) : 0.0);
			rx[e / 2][e % 2] = packHalf2x16(v);
		}
	}
#else
	if (whole) {
		[[unroll]] for (uint e = 0; e < KH / 4; e++) rx[e] = m < p.M ? xv[(m * p.xstride + kb) / 4 + e] : vec4(0.0);
	} else {
		[[unroll]] for (uint e = 0; e < KH; e++) rx[e / 4][e % 4] = m < p.M && kb + e < p.K ? x[m * p.xstride + kb + e] : 0.0;
	}
#endif
#if defined(W_BLOCKED)
	// K is a multiple of the 32-element blocks, so a step's KH ≤ 32 elements of
	// a row lie in one block; rows past N stage zeros (a zero scale).
	const uint b = n * (p.K >> 5) + (kb >> 5);
	const bool in_ = n < p.N;
#if defined(W_Q4)
	rsm = in_ ? uint(w_sm[b]) : 0u;
	[[unroll]] for (uint e = 0; e < KH / 8; e++) rw[e] = in_ ? w_q[b * 4 + (kb % 32) / 8 + e] : 0u;
#else
	rd = in_ ? float(w_d[b]) : 0.0;
	[[unroll]] for (uint e = 0; e < KH / 4; e++) rw[e] = in_ ? w_q[b * 8 + (kb % 32) / 4 + e] : 0u;
#endif
#else
	if (whole && n < p.N) {
		[[unroll]] for (uint e = 0; e < KH / 4; e++) rw[e] = w_v[(n * p.K + kb) / 4 + e];
	} else {
		[[unroll]] for (uint e = 0; e < KH; e++) {
			const uint k = kb + e;
			const bool in_ = n < p.N && k < p.K;
#if defined(W_BF16)
			const uint h = in_ ? uint(w_s[n * p.K + k]) : 0u;
			rw[e / 4][(e / 2) % 2] = e % 2 == 0 ? h : rw[e / 4][(e / 2) % 2] | (h << 16);
#else
			rw[e / 4][e % 4] = in_ ? w_s[n * p.K + k] : WZERO;
#endif
		}
	}
#endif
}

void main() {
	const uint sg = gl_SubgroupID, wm = sg / 4, wn = sg % 4;
	const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
	tm0 = m0;
	tn0 = n0;
#if defined(W_Q4)
	const uint rn = n0 + gl_LocalInvocationID.x / 2;
	rrd = rn < p.N ? w_rd[rn] : vec2(0.0);
#endif
	fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[4][2];
	[[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 2; j++) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
	tile_loop(p.K, wm, wn, acc);
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
