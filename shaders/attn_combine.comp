#version 450
// attn_combine: merges the splits of attention.comp: with m = max over splits,
// out = Σ O_s·exp(M_s − m) / Σ L_s·exp(M_s − m), written to attn rows
// rowOff..rowOff+T-1 ([rows, nq·d]). With Q8 the merged rows are written only as
// q8_1 blocks for the o projection (the fused form of this then quantize_act):
// an invocation per value, 32 a block (the merge of the splits is the slow part,
// so it is spread as widely as the plain form's). Only the splits that hold keys
// are read: those below (pos[rowOff] + T) / kps, rounded up (a decode step is
// recorded for the whole cache and replays at any length).
// L adjacent invocations share an element, each merging every L-th split, and
// then merge their results by subgroup shuffles: a decode step's hundreds of
// splits then make L short chains of loads instead of one long one.
#include "include/common.glsl"
#extension GL_KHR_shader_subgroup_shuffle : require

layout(constant_id = 1) const uint L = 1; // invocations an element: a power of two ≤ the subgroup size

layout(std430, binding = 0) readonly buffer O_ { float opart[]; };
layout(std430, binding = 1) readonly buffer ML_ { vec2 ml[]; };
#if defined(Q8)
layout(std430, binding = 2) writeonly buffer XQ_ { uint xq[]; };
layout(std430, binding = 3) writeonly buffer XD_ { vec2 xd[]; };
layout(std430, binding = 4) readonly buffer Pos_ { int pos[]; };
shared float q_sh[WG];
#elif defined(OUT_F16)
layout(std430, binding = 2) writeonly buffer Y_ { float16_t y[]; }; // the tensor-core GEMMs' input
layout(std430, binding = 3) readonly buffer Pos_ { int pos[]; };
#else
layout(std430, binding = 2) writeonly buffer Y_ { float y[]; };
layout(std430, binding = 3) readonly buffer Pos_ { int pos[]; };
#endif

layout(push_constant) uniform P { uint T, nq, d, splits, rowOff, kps; } p;

// merged is the combined output element g of this call's T rows, by lane l of
// its L invocations (every one calls it; on: g is in range): a pass over the
// lane's splits in batches of eight independent loads, with a running max,
// then the lanes' merge.
float merged(uint g, uint l, bool on) {
	const uint n = p.T * p.nq * p.d;
	const uint row = g / p.d; // t * nq + h
	const uint used = on ? min(p.splits, (uint(pos[p.rowOff]) + p.T + p.kps - 1) / p.kps) : 0;
	float m = -1.0 / 0.0, l_ = 0.0, o = 0.0;
	for (uint s0 = l; s0 < used; s0 += 8 * L) {
		vec2 v[8];
		float x[8];
		[[unroll]] for (uint i = 0; i < 8; i++) {
			const uint s = s0 + i * L;
			v[i] = s < used ? ml[s * p.T * p.nq + row] : vec2(-1.0 / 0.0, 0.0);
			x[i] = s < used ? opart[s * n + g] : 0.0;
		}
		float mb = m;
		[[unroll]] for (uint i = 0; i < 8; i++) mb = max(mb, v[i].x);
		if (mb == -1.0 / 0.0) continue; // nothing yet
		const float a = exp(m - mb); // 0 while m is −∞
		l_ *= a;
		o *= a;
		[[unroll]] for (uint i = 0; i < 8; i++) {
			const float w = v[i].x > -1.0 / 0.0 ? exp(v[i].x - mb) : 0.0;
			l_ += v[i].y * w;
			o += x[i] * w;
		}
		m = mb;
	}
	for (uint x = 1; x < L; x <<= 1) {
		const float m2 = subgroupShuffleXor(m, x), l2 = subgroupShuffleXor(l_, x), o2 = subgroupShuffleXor(o, x);
		const float mm = max(m, m2);
		if (mm == -1.0 / 0.0) continue;
		const float a = exp(m - mm), b = exp(m2 - mm);
		l_ = l_ * a + l2 * b;
		o = o * a + o2 * b;
		m = mm;
	}
	return l_ > 0.0 ? o / l_ : 0.0;
}

void main() {
	const uint n = p.T * p.nq * p.d;
#if defined(Q8)
	// WG/L values a workgroup, in whole 32-blocks; vi is this invocation's.
	const uint tid = gl_LocalInvocationID.x, l = tid % L, vi = tid / L, w = vi & 31u, lb = vi >> 5;
	const uint b = gl_WorkGroupID.x * (WG / L / 32) + lb; // block of this call's rows
	const bool ok = b * 32 < n;
	const float v = merged(b * 32 + w, l, ok);
	if (l == 0) q_sh[vi] = abs(v);
	barrier();
	float amax = 0.0;
	for (uint i = 0; i < 32; i++) amax = max(amax, q_sh[lb * 32 + i]);
	const float d = amax / 127.0;
	const float id = d > 0.0 ? 1.0 / d : 0.0;
	const int q = int(round_away(v * id));
	barrier();
	if (l == 0) q_sh[vi] = float(q);
	barrier();
	if (!ok || l != 0) return;
	const uint gb = p.rowOff * (p.nq * p.d / 32) + b; // block index in the q8_1 rows
	if ((w & 3u) == 0) {
		const ivec4 c = ivec4(q_sh[vi], q_sh[vi + 1], q_sh[vi + 2], q_sh[vi + 3]);
		xq[gb * 8 + w / 4] = pack_i8x4(c);
	}
	if (w == 0) {
		float sum = 0.0;
		for (uint i = 0; i < 32; i++) sum += q_sh[lb * 32 + i];
		xd[gb] = vec2(d, d * sum);
	}
#else
	const uint gi = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
	const uint g = gi / L;
	const float v = merged(g, gi % L, g < n);
	if (g >= n || gi % L != 0) return;
#if defined(OUT_F16)
	y[p.rowOff * p.nq * p.d + g] = float16_t(v);
#else
	y[p.rowOff * p.nq * p.d + g] = v;
#endif
#endif
}
