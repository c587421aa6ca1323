#version 450
// attention_decode: attention.comp for one query token (a decode step), with the
// same outputs (partials for attn_combine). A workgroup takes one KV head, HG of
// its G query heads (G/HG workgroups along x: more and shorter ones when the
// cache holds few keys) and one tile of WG keys, or with MULTI one or more:
// split z of S takes tile z while the keys make no more than S tiles, else an
// even share of them, so that a grid of one wave (ops.decodeSplits, once a
// tile a workgroup would need a second) covers any length; a split's tiles are
// merged by a running softmax (its max in shared memory; each invocation's
// share of the sums in registers, added up once, at the split's end).
// Scores: invocation j loads key j of a tile (the int8 cache: all of it in
// 16-byte pieces; f16: eight pieces at a time) and scores it against the HG
// queries (a tile's keys at once, no serial softmax within it).
// Values: invocation t takes column quad t / NS of every NS-th key (NS =
// WG/(HD/4) slices, on adjacent lanes), and the slices are summed by subgroup
// shuffles. Its first PREFETCH value loads of a tile are issued before the
// tile's softmax (the first tile's before the query and the keys; with the int8
// cache, the next tile's key and scales are issued after this one's scores), so
// their latency hides behind them; the rest follow in batches of VB. A
// workgroup without keys returns at once: attn_combine reads only the splits
// that hold keys.
// K and V are read by the G/HG workgroups of a KV head and key range (f16, or
// int8 with KV_Q8: include/kv.glsl).
// With the int8 cache the queries are quantized to int8 too (a scale per head)
// and the scores are packed int8 dot products on the cached codes.
#include "include/common.glsl"
#extension GL_KHR_shader_subgroup_shuffle : require
#include "include/kv.glsl"
#if defined(KV_Q8)
#include "include/dot.glsl"
#endif

layout(constant_id = 1) const uint G = 8;   // query heads per KV head
layout(constant_id = 2) const uint HD = 128; // head dim (int8 cache: a multiple of 16)
layout(constant_id = 5) const uint HG = 8;  // of them, the heads a workgroup takes (G / HG workgroups along x)
layout(constant_id = 6) const bool MULTI = true;     // splits of several tiles (false: one each, no running softmax)

layout(std430, binding = 0) readonly buffer Q_ { float q[]; };
layout(std430, binding = 3) writeonly buffer O_ { float opart[]; };
layout(std430, binding = 4) writeonly buffer ML_ { vec2 ml[]; };
layout(std430, binding = 5) readonly buffer Pos_ { int pos[]; };

layout(push_constant) uniform P {
	uint T, nq, nkv, stride, rowOff, maxT, seq, kps;
	float scale;
} p;

const uint NC = HD / 4;  // column quads of a value vector
const uint NS = WG / NC; // key slices of the value pass: a power of two ≤ the subgroup size
layout(constant_id = 3) const uint PREFETCH = 8; // value loads issued early (≤ keys per invocation)
layout(constant_id = 4) const uint VB = 8;       // value loads in flight after the softmax
const uint PF = WG / NS < PREFETCH ? WG / NS : PREFETCH;

shared vec4 qs[HG * HD / 4];
const uint GP = (HG + 3) / 4; // vec4s a key's numerators take
shared vec4 ps[WG * GP];      // [key, head] softmax numerators
shared float red[HG * 32];
shared float mrun[HG]; // MULTI: the running max of each head (uniform over the workgroup)
#if defined(KV_Q8)
shared uint qmax[HG];           // max |q| of each head, as float bits
shared uvec4 qc[HG * HD / 16];  // the queries' int8 codes, 16 a uvec4
#endif

// Reduces v (one value per head) over the workgroup: max when domax, else sum.
void reduce_heads(inout float v[HG], bool domax) {
	[[unroll]] for (uint h = 0; h < HG; h++) {
		const float r = domax ? subgroupMax(v[h]) : subgroupAdd(v[h]);
		if (subgroupElect()) red[h * 32 + gl_SubgroupID] = r;
	}
	barrier();
	[[unroll]] for (uint h = 0; h < HG; h++) {
		float r = red[h * 32];
		for (uint s = 1; s < gl_NumSubgroups; s++) r = domax ? max(r, red[h * 32 + s]) : r + red[h * 32 + s];
		v[h] = r;
	}
	barrier();
}

// accumulate adds key j's value quad v, weighted by its numerators, to o.
void accumulate(inout vec4 o[HG], uint j, vec4 v) {
	[[unroll]] for (uint h4 = 0; h4 < GP; h4++) {
		const vec4 w = ps[j * GP + h4];
		[[unroll]] for (uint c = 0; c < 4; c++) if (4 * h4 + c < HG) o[4 * h4 + c] += w[c] * v;
	}
}

// The loads of a tile (keys k0 ..) that need no softmax: value_loads, the
// first PF value loads of this invocation's column quad, and with the int8
// cache key_loads, its key's codes and scales. (int8: positions past the end
// are loaded, within the cache, and ignored.)
#if defined(KV_Q8)
uvec4 kw[HD / 16];
float ks, vsc;
#endif
VRAW vr[PF];
void value_loads(uint base, uint k0, uint nk, uint sl, uint cq) {
	[[unroll]] for (uint i = 0; i < PF; i++) {
		const uint j = sl + i * NS;
#if defined(KV_Q8)
		vr[i] = vraw(base + min(k0 + j, p.maxT - 1), cq, HD);
#else
		vr[i] = j < nk ? vraw(base + k0 + j, cq, HD) : VRAW0;
#endif
	}
}
#if defined(KV_Q8)
void key_loads(uint base, uint k0, uint tid) {
	const uint kv = base + min(k0 + tid, p.maxT - 1);
	[[unroll]] for (uint i = 0; i < HD / 16; i++) kw[i] = kraw16(kv, i, HD);
	ks = kscl(kv);
	vsc = vscl(kv);
}
#endif

// tile adds tile t (keys t·kps ..) of this split's t0 .. t1−1 to o: its
// scores, softmax (with MULTI, into the running one: mrun, lp) and values,
// issuing the next tile's early loads on the way.
vec4 o[HG];   // the weighted values of the split's tiles so far, relative to mrun
float lp[HG]; // MULTI: this invocation's share of their numerators' sums, relative to mrun
void tile(uint t, uint t1, uint tid, uint base, uint kend, uint sl, uint cq, uint z, uint h0) {
	const uint k0 = t * p.kps, k1 = min(k0 + p.kps, kend), nk = k1 - k0;
	const uint key = k0 + tid;
	const bool valid = tid < p.kps && key < k1;
	float s[HG];
	[[unroll]] for (uint h = 0; h < HG; h++) s[h] = 0.0;
#if defined(KV_Q8)
	if (valid) {
		int acc[HG];
		[[unroll]] for (uint h = 0; h < HG; h++) acc[h] = 0;
		[[unroll]] for (uint i = 0; i < HD / 16; i++) {
			[[unroll]] for (uint h = 0; h < HG; h++) {
				const uvec4 c = qc[h * (HD / 16) + i];
				acc[h] += DOT4(kw[i].x, c.x) + DOT4(kw[i].y, c.y) + DOT4(kw[i].z, c.z) + DOT4(kw[i].w, c.w);
			}
		}
		[[unroll]] for (uint h = 0; h < HG; h++) s[h] = float(acc[h]) * (uintBitsToFloat(qmax[h]) / 127.0) * ks;
	}
	const float vs = valid ? vsc : 0.0;
	if (t + 1 < t1) key_loads(base, k0 + p.kps, tid); // the next tile's, in flight through this one's softmax and values
#else
	if (valid) {
		// Eight 16-byte loads in flight before the arithmetic (a constant-sized
		// batch, so it stays in registers).
		for (uint e0 = 0; e0 < HD / 8; e0 += 8) {
			uvec4 u[8];
			[[unroll]] for (uint i = 0; i < 8; i++) u[i] = e0 + i < HD / 8 ? kload(base + key, e0 + i, HD) : uvec4(0);
			[[unroll]] for (uint i = 0; i < 8; i++) {
				const uint e = e0 + i;
				if (e >= HD / 8) break;
				const vec4 ka = vec4(unpackHalf2x16(u[i].x), unpackHalf2x16(u[i].y)), kb = vec4(unpackHalf2x16(u[i].z), unpackHalf2x16(u[i].w));
				[[unroll]] for (uint h = 0; h < HG; h++) s[h] += dot(qs[h * (HD / 4) + 2 * e], ka) + dot(qs[h * (HD / 4) + 2 * e + 1], kb);
			}
		}
	}
	const float vs = valid ? vscl(base + key) : 0.0;
#endif
	float m[HG], l[HG];
	[[unroll]] for (uint h = 0; h < HG; h++) {
		s[h] = valid ? s[h] * p.scale : -1.0 / 0.0;
		m[h] = s[h];
	}
	reduce_heads(m, true);
	// ps holds the numerators times the value's scale (int8 cache), so the
	// value pass multiplies raw codes. With MULTI the sums so far move to the
	// new max (every tile holds a key, so m is finite): m[h] becomes the new
	// max and s[h] the factor.
	[[unroll]] for (uint h = 0; h < HG; h++) {
		const float mo = MULTI ? mrun[h] : -1.0 / 0.0, mn = max(mo, m[h]);
		const float e = valid ? exp(s[h] - mn) : 0.0;
		ps[tid * GP + h / 4][h % 4] = e * vs;
		l[h] = e;
		m[h] = mn;
		if (MULTI) {
			s[h] = exp(mo - mn);
			o[h] *= s[h];
			lp[h] = lp[h] * s[h] + e;
		}
	}
	if (MULTI) {
		// The sums wait for the split's end: a plain barrier publishes ps and
		// ends every read of mrun (a reduction of the sums a tile cost a q4
		// step at 16k keys 0.23 ms on an H200).
		barrier();
		[[unroll]] for (uint h = 0; h < HG; h++) if (tid == h) mrun[h] = m[h];
	} else {
		reduce_heads(l, false); // its barrier also publishes ps
		if (tid < HG) ml[z * p.nq + h0 + tid] = vec2(m[tid], l[tid]);
	}
	[[unroll]] for (uint i = 0; i < PF; i++) {
		const uint j = sl + i * NS;
		if (j < nk) accumulate(o, j, vcodes(vr[i]));
	}
	for (uint j0 = sl + PF * NS; j0 < nk; j0 += VB * NS) { // the rest: VB loads in flight, then the arithmetic
		VRAW r[VB];
		[[unroll]] for (uint i = 0; i < VB; i++) r[i] = j0 + i * NS < nk ? vraw(base + k0 + j0 + i * NS, cq, HD) : VRAW0;
		[[unroll]] for (uint i = 0; i < VB; i++) if (j0 + i * NS < nk) accumulate(o, j0 + i * NS, vcodes(r[i]));
	}
	if (t + 1 < t1) value_loads(base, k0 + p.kps, min(k1 + p.kps, kend) - k1, sl, cq);
}

void main() {
	const uint tid = gl_LocalInvocationID.x, g = gl_WorkGroupID.y, z = gl_WorkGroupID.z;
	const uint h0 = g * G + gl_WorkGroupID.x * HG; // this workgroup's first query head
	const uint base = (p.seq * p.nkv + g) * p.maxT;
	const uint sl = tid % NS, cq = tid / NS;
	const uint kend = uint(pos[p.rowOff]) + 1; // the keys: positions 0 .. kend-1
	// The keys in tiles of WG (p.kps): split z takes tile z while there are no
	// more tiles than splits, else tiles z·n/S .. (z+1)·n/S − 1 of the n (so a
	// wave of workgroups covers any length; attn_combine reads min(S, n) splits).
	const uint ntiles = (kend + p.kps - 1) / p.kps, S = gl_NumWorkGroups.z;
	const uint t0 = ntiles <= S ? z : z * ntiles / S;
	const uint t1 = !MULTI || ntiles <= S ? t0 + 1 : (z + 1) * ntiles / S;
	if (t0 >= ntiles) return; // no keys here (uniform over the workgroup)
	// Every load of the first tile's keys and values that does not wait for the
	// softmax is issued here, so their latencies overlap the queries' loading
	// (and, with the int8 cache, their quantization).
	{
		const uint k0 = t0 * p.kps, nk = min(k0 + p.kps, kend) - k0;
#if defined(KV_Q8)
		key_loads(base, k0, tid);
#endif
		value_loads(base, k0, nk, sl, cq);
	}
	if (tid < HG) {
		mrun[tid] = -1.0 / 0.0;
#if defined(KV_Q8)
		qmax[tid] = 0;
#endif
	}
#if defined(KV_Q8)
	barrier();
#endif
	for (uint i = tid; i < HG * HD / 4; i += WG) {
		const uint h = i / (HD / 4), e = i % (HD / 4);
		const uint qb = p.rowOff * p.stride + (h0 + h) * HD + 4 * e;
		qs[i] = vec4(q[qb], q[qb + 1], q[qb + 2], q[qb + 3]);
#if defined(KV_Q8)
		const vec4 a = abs(qs[i]);
		atomicMax(qmax[h], floatBitsToUint(max(max(a.x, a.y), max(a.z, a.w)))); // non-negative floats order as their bits
#endif
	}
	barrier();
#if defined(KV_Q8)
	for (uint i = tid; i < HG * HD / 16; i += WG) {
		const uint h = i / (HD / 16);
		const float d = uintBitsToFloat(qmax[h]) / 127.0, id = d > 0.0 ? 1.0 / d : 0.0;
		uint w[4];
		[[unroll]] for (uint j = 0; j < 4; j++) {
			const vec4 v = qs[4 * i + j] * id;
			w[j] = q8_word(v);
		}
		qc[i] = uvec4(w[0], w[1], w[2], w[3]);
	}
	barrier();
#endif
	[[unroll]] for (uint h = 0; h < HG; h++) {
		o[h] = vec4(0.0);
		lp[h] = 0.0;
	}
	if (MULTI) {
		for (uint t = t0; t < t1; t++) tile(t, t1, tid, base, kend, sl, cq, z, h0);
		reduce_heads(lp, false);
		if (tid < HG) ml[z * p.nq + h0 + tid] = vec2(mrun[tid], lp[tid]); // (tid wrote mrun[tid])
	} else {
		tile(t0, t0 + 1, tid, base, kend, sl, cq, z, h0); // (no loop: the one-tile form's registers)
	}
	for (uint x = 1; x < NS; x <<= 1) [[unroll]] for (uint h = 0; h < HG; h++) o[h] += subgroupShuffleXor(o[h], x);
	[[unroll]] for (uint h = 0; h < HG; h++) {
		if (h % NS != sl) continue; // the slices' lanes share the writes
		const uint ob = (z * p.nq + h0 + h) * HD + 4 * cq;
		opart[ob] = o[h].x;
		opart[ob + 1] = o[h].y;
		opart[ob + 2] = o[h].z;
		opart[ob + 3] = o[h].w;
	}
}
