#version 450
// attention: causal grouped-query attention of T queries of one sequence (at
// positions past..past+T-1, past = pos[rowOff] read from the device so a recorded
// decode step replays at any position) over its KV cache (f16, or int8 with
// KV_Q8: include/kv.glsl; tiles are staged in shared memory as f16 either way), flash-attention style: keys in
// tiles of TK held in shared memory, an online softmax per query row, no T×T
// matrix. A workgroup takes R query rows of one KV head (rows = token × the G
// query heads sharing it, so K and V are read once for all of them) and one of
// `splits` key ranges (flash-decoding: short query counts still fill the GPU).
// It writes unnormalised partial outputs and (max, sum) per row; attn_combine
// merges the splits. Invocation c owns output column c (WG = head_dim).
#include "include/common.glsl"
#include "include/kv.glsl"

layout(constant_id = 1) const uint R = 16;
const uint TK = 32;

layout(std430, binding = 0) readonly buffer Q_ { float q[]; };          // qkv rows
layout(std430, binding = 3) writeonly buffer O_ { float opart[]; };     // [splits, T, nq, d]
layout(std430, binding = 4) writeonly buffer ML_ { vec2 ml[]; };        // [splits, T, nq]
layout(std430, binding = 5) readonly buffer Pos_ { int pos[]; };

layout(push_constant) uniform P {
	uint T, nq, nkv, stride, rowOff, maxT, seq, kps;
	float scale;
} p;

shared float qs[R * WG];
// K rows are padded by one uvec4 so the score loop's reads of different keys
// fall in different banks.
const uint KS = WG / 8 + 1;
shared uvec4 ks[TK * KS];
shared float16_t vs[TK * WG];
shared float sc[R * TK];
shared float mrow[R], lrow[R], arow[R];

void main() {
	const uint D = WG, tid = gl_LocalInvocationID.x;
	const uint G = p.nq / p.nkv, g = gl_WorkGroupID.y, z = gl_WorkGroupID.z;
	const uint r0 = gl_WorkGroupID.x * R; // first group-row: token r/G, head g*G + r%G
	for (uint i = tid; i < R * D; i += WG) {
		const uint r = i / D, gr = r0 + r, t = gr / G;
		qs[i] = t < p.T ? q[(p.rowOff + t) * p.stride + (g * G + gr % G) * D + i % D] : 0.0;
	}
	if (tid < R) {
		mrow[tid] = -1.0 / 0.0;
		lrow[tid] = 0.0;
	}
	float o[R];
	[[unroll]] for (uint r = 0; r < R; r++) o[r] = 0.0;
	const uint past = uint(pos[p.rowOff]);
	const uint tlast = min(p.T - 1, (r0 + R - 1) / G);
	const uint k0 = z * p.kps, k1 = min(k0 + p.kps, past + tlast + 1); // causal end for this block
	const uint base = (p.seq * p.nkv + g) * p.maxT;
	for (uint kt = k0; kt < k1; kt += TK) {
		barrier();
		for (uint i = tid; i < TK * D / 8; i += WG) {
			const uint j = i / (D / 8), key = kt + j;
			ks[j * KS + i % (D / 8)] = key < k1 ? kload(base + key, i % (D / 8), D) : uvec4(0);
		}
		for (uint i = tid; i < TK * D; i += WG) {
			const uint key = kt + i / D;
			vs[i] = key < k1 ? float16_t(vload(base + key, i % D, D)) : float16_t(0.0);
		}
		barrier();
		for (uint i = tid; i < R * TK; i += WG) {
			const uint r = i / TK, j = i % TK, t = (r0 + r) / G, key = kt + j;
			float s = -1.0 / 0.0;
			if (key < k1 && t < p.T && key <= past + t) {
				s = 0.0;
				for (uint e = 0; e < D / 8; e++) {
					const uvec4 u = ks[j * KS + e];
					const uint qb = r * D + e * 8;
					s += dot(vec4(qs[qb], qs[qb + 1], qs[qb + 2], qs[qb + 3]), vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)))
					   + dot(vec4(qs[qb + 4], qs[qb + 5], qs[qb + 6], qs[qb + 7]), vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w)));
				}
				s *= p.scale;
			}
			sc[i] = s;
		}
		barrier();
		if (tid < R) {
			float mt = -1.0 / 0.0;
			for (uint j = 0; j < TK; j++) mt = max(mt, sc[tid * TK + j]);
			const float mold = mrow[tid], mnew = max(mold, mt);
			float alpha = 1.0, sum = 0.0;
			if (mnew > -1.0 / 0.0) {
				alpha = exp(mold - mnew);
				for (uint j = 0; j < TK; j++) {
					const float e = exp(sc[tid * TK + j] - mnew);
					sc[tid * TK + j] = e;
					sum += e;
				}
			} else {
				for (uint j = 0; j < TK; j++) sc[tid * TK + j] = 0.0;
			}
			mrow[tid] = mnew;
			lrow[tid] = lrow[tid] * alpha + sum;
			arow[tid] = alpha;
		}
		barrier();
		[[unroll]] for (uint r = 0; r < R; r++) {
			float acc = o[r] * arow[r];
			for (uint j = 0; j < TK; j++) acc += sc[r * TK + j] * float(vs[j * D + tid]);
			o[r] = acc;
		}
	}
	barrier();
	[[unroll]] for (uint r = 0; r < R; r++) {
		const uint gr = r0 + r, t = gr / G;
		if (t < p.T) {
			const uint row = (z * p.T + t) * p.nq + g * G + gr % G;
			opart[row * D + tid] = o[r];
			if (tid == 0) ml[row] = vec2(mrow[r], lrow[r]);
		}
	}
}
