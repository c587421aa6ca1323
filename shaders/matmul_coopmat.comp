#version 450
// matmul_coopmat: matmul.comp on tensor cores (VK_NV_cooperative_matrix, f16
// inputs, f32 accumulation): Y[m, n] = sum_k X[m, k] * W[n, k]. A workgroup of 8
// (or 16) subgroups of 32 computes a 128×128 (or 256×128) tile; subgroup (wm, wn)
// owns 64×32 of it as 4×2 16×16 accumulators. Each K step of BK (32 or 64) stages X (f32/f16 → f16)
// and W (any format, dequantized → f16) in shared memory ([row][k], padded
// stride, include/coopmat_tile.glsl); the next step's global loads are issued
// into registers before this step's multiplies, so memory latency hides behind
// the tensor cores. Chosen at run time when the device offers 16×16×16
// f16·f16+f32; tested against the plain kernel's CPU reference with f16-rounded
// inputs.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#include "include/common.glsl"
#include "include/weights.glsl"

#if defined(A_F16)
layout(std430, binding = WB + 0) readonly buffer X_ { float16_t x[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { uvec4 xv[]; }; // 8 halves
#else
layout(std430, binding = WB + 0) readonly buffer X_ { float x[]; };
layout(std430, binding = WB + 0) readonly buffer XV_ { vec4 xv[]; };
#endif
layout(std430, binding = WB + 1) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P {
	uint M, N, K;
	uint xstride, ystride;
	uint vec; // K and xstride are multiples of 8
} p;

layout(constant_id = 1) const uint BK = 32; // K step: 32 or 64
#include "include/coopmat_tile.glsl"

// The next step's values wait in registers in their stored form (f16, bf16 or
// f32 chunks of 16 bytes; q4/q8 words), not as floats, so they cost few
// registers; store_tiles converts them. X and float weights are read in 16-byte
// chunks, consecutive invocations taking consecutive chunks of a row (whole
// 128-byte lines a subgroup); block weights as KH elements of row tid/TPR.
uint tm0, tn0; // this workgroup's first X and W rows
uvec4 f16x8(vec4 a, vec4 b) { return uvec4(f16x4(a), f16x4(b)); }
const uint NI = WG;       // invocations
const uint TPR = NI / BN; // invocations a W row (block weights)

const uint XC = 8; // elements a chunk (f32: two vec4)
#if defined(A_F16)
uvec4 rx[BM * BK / XC / NI];
#else
vec4 rx[2 * BM * BK / XC / NI];
#endif

#if defined(W_BLOCKED)
const uint KH = BK / TPR; // k elements an invocation stages a row (8, 16 or 32)
#if defined(W_Q4)
uint rw[KH / 8]; // KH / 8 words of one block: 8 elements each
uint rsm;        // the block's scale and min
vec2 rrd;        // the row's
// wdec4 is elements 4e..4e+3 of the invocation's KH.
vec4 wdec4(uint e) {
	const float s = rrd.x * float(rsm & 255u), m = rrd.y * float(rsm >> 8);
	const uint wd = rw[e / 2] >> (4 * (e % 2)); // a byte each
	return vec4(wd & 15u, (wd >> 8) & 15u, (wd >> 16) & 15u, (wd >> 24) & 15u) * s - m;
}
#else
layout(std430, binding = 0) readonly buffer WQ2_ { uvec2 w_q2[]; };
uint rw[KH / 4]; // KH / 4 words of one block: 4 elements each
float rd;
vec4 wdec4(uint e) {
	const uint wd = rw[e];
	return rd * vec4(int(wd << 24) >> 24, int(wd << 16) >> 24, int(wd << 8) >> 24, int(wd) >> 24);
}
#endif
#else
const uint WC = 8; // elements a chunk: f32 as two vec4, f16 or bf16 as raw bits
#if defined(W_F32)
vec4 rw[2 * BN * BK / WC / NI];
#else
layout(std430, binding = 0) readonly buffer WV8_ { uvec4 w_v8[]; };
uvec4 rw[BN * BK / WC / NI];
#if defined(W_F16)
#define W_BITS(h) float16BitsToUint16(h)
#else
#define W_BITS(h) (h)
#endif
#endif
#endif

void load_tiles(uint k0) {
	const uint tid = gl_LocalInvocationID.x;
	const bool whole = p.vec != 0 && k0 + BK <= p.K;
	[[unroll]] for (uint i = 0; i < BM * BK / XC / NI; i++) {
		const uint q = i * NI + tid, r = q / (BK / XC), k = k0 + (q % (BK / XC)) * XC, m = tm0 + r;
		if (whole) {
#if defined(A_F16)
			rx[i] = m < p.M ? xv[(m * p.xstride + k) / 8] : uvec4(0);
#else
			rx[2 * i] = m < p.M ? xv[(m * p.xstride + k) / 4] : vec4(0.0);
			rx[2 * i + 1] = m < p.M ? xv[(m * p.xstride + k) / 4 + 1] : vec4(0.0);
#endif
			continue;
		}
		float v[XC];
		[[unroll]] for (uint e = 0; e < XC; e++) v[e] = m < p.M && k + e < p.K ? float(x[m * p.xstride + k + e]) : 0.0;
#if defined(A_F16)
		rx[i] = f16x8(vec4(v[0], v[1], v[2], v[3]), vec4(v[4], v[5], v[6], v[7]));
#else
		rx[2 * i] = vec4(v[0], v[1], v[2], v[3]);
		rx[2 * i + 1] = vec4(v[4], v[5], v[6], v[7]);
#endif
	}
#if defined(W_BLOCKED)
	// K is a multiple of the 32-element blocks, so an invocation's KH ≤ 32
	// elements lie in one block; rows past N stage zeros (a zero scale).
	const uint n = tn0 + tid / TPR, kb = k0 + (tid % TPR) * KH;
	const uint b = n * (p.K >> 5) + (kb >> 5);
	const bool in_ = n < p.N;
#if defined(W_Q4)
	rsm = in_ ? uint(w_sm[b]) : 0u;
	if (KH == 32) {
		const uvec4 u = in_ ? w_q4[b] : uvec4(0);
		[[unroll]] for (uint e = 0; e < 4; e++) rw[e] = u[e];
	} else {
		[[unroll]] for (uint e = 0; e < KH / 8; e++) rw[e] = in_ ? w_q[b * 4 + (kb % 32) / 8 + e] : 0u;
	}
#else
	rd = in_ ? float(w_d[b]) : 0.0;
	if (KH >= 16) {
		[[unroll]] for (uint e = 0; e < KH / 16; e++) {
			const uvec4 u = in_ ? w_q4[b * 2 + (kb % 32) / 16 + e] : uvec4(0);
			[[unroll]] for (uint j = 0; j < 4; j++) rw[4 * e + j] = u[j];
		}
	} else { // KH = 8: one 8-byte load
		const uvec2 u = in_ ? w_q2[b * 4 + (kb % 32) / 8] : uvec2(0);
		rw[0] = u.x;
		rw[1] = u.y;
	}
#endif
#else
	[[unroll]] for (uint i = 0; i < BN * BK / WC / NI; i++) {
		const uint q = i * NI + tid, r = q / (BK / WC), k = k0 + (q % (BK / WC)) * WC, n = tn0 + r;
		if (whole && n < p.N) {
#if defined(W_F32)
			rw[2 * i] = w_v[(n * p.K + k) / 4];
			rw[2 * i + 1] = w_v[(n * p.K + k) / 4 + 1];
#else
			rw[i] = w_v8[(n * p.K + k) / 8];
#endif
			continue;
		}
#if defined(W_F32)
		[[unroll]] for (uint e = 0; e < 8; e++) rw[2 * i + e / 4][e % 4] = n < p.N && k + e < p.K ? w_s[n * p.K + k + e] : 0.0;
#else
		uint h[8];
		[[unroll]] for (uint e = 0; e < 8; e++) h[e] = n < p.N && k + e < p.K ? uint(W_BITS(w_s[n * p.K + k + e])) : 0u;
		rw[i] = uvec4(h[0] | h[1] << 16, h[2] | h[3] << 16, h[4] | h[5] << 16, h[6] | h[7] << 16);
#endif
	}
#endif
}

vec2 bf2(uint u) { return vec2(uintBitsToFloat(u << 16), uintBitsToFloat(u & 0xFFFF0000u)); }

void store_tiles() {
	const uint tid = gl_LocalInvocationID.x;
	[[unroll]] for (uint i = 0; i < BM * BK / XC / NI; i++) {
		const uint q = i * NI + tid, r = q / (BK / XC), k = (q % (BK / XC)) * XC;
#if defined(A_F16)
		tile_put8(false, r, k, rx[i]);
#else
		tile_put8(false, r, k, f16x8(rx[2 * i], rx[2 * i + 1]));
#endif
	}
#if defined(W_BLOCKED)
	const uint r = tid / TPR, kh = (tid % TPR) * KH;
	[[unroll]] for (uint e = 0; e < KH / 4; e += 2) tile_put8(true, r, kh + 4 * e, f16x8(wdec4(e), wdec4(e + 1)));
#else
	[[unroll]] for (uint i = 0; i < BN * BK / WC / NI; i++) {
		const uint q = i * NI + tid, r = q / (BK / WC), k = (q % (BK / WC)) * WC;
#if defined(W_F32)
		tile_put8(true, r, k, f16x8(rw[2 * i], rw[2 * i + 1]));
#elif defined(W_F16)
		tile_put8(true, r, k, rw[i]);
#else
		const uvec4 u = rw[i];
		tile_put8(true, r, k, uvec4(packHalf2x16(bf2(u.x)), packHalf2x16(bf2(u.y)), packHalf2x16(bf2(u.z)), packHalf2x16(bf2(u.w))));
#endif
	}
#endif
}

void main() {
	const uint sg = gl_SubgroupID, wm = sg / 4, wn = sg % 4;
	const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
	tm0 = m0;
	tn0 = n0;
#if defined(W_Q4)
	const uint rn = n0 + gl_LocalInvocationID.x / TPR;
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
