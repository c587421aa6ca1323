#version 450
// attention_coopmat: attention.comp on tensor cores (VK_NV_cooperative_matrix,
// f16 inputs, f32 accumulation), for prefill: the same rows, splits and outputs
// (unnormalised partials and (max, sum) per row for attn_combine).
//
// A workgroup of 4 subgroups takes 64 query rows of one KV head (row r: token
// r / G, query head r % G of the G sharing the head) and one key range. Each
// subgroup owns 16 rows: their queries (pre-scaled, f16) stay in registers as
// HD/16 matrices and their output as HD/16 f32 accumulators. Per tile of 32 keys:
//   - K and V are staged in shared memory as f16 (dequantizing int8), from
//     registers loaded, as stored, during the previous tile;
//   - S = Q·Kᵀ on tensor cores, stored to shared memory;
//   - two lanes a row apply the causal mask and the online softmax, write the
//     numerators P as f16, and keep the row's running max and sum;
//   - the output is rescaled (through shared memory, only when a row's max
//     moved), then O += P·V on tensor cores.
// Chosen when the device offers 16×16×16 f16·f16+f32 on subgroups of 32 and the
// head size is a multiple of 16 up to 128 (36 KiB of shared memory; ops checks).
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_vote : require
#include "include/common.glsl"
#include "include/kv.glsl"

layout(constant_id = 1) const uint HD = 128; // head size

layout(std430, binding = 0) readonly buffer Q_ { vec4 qv[]; };          // qkv rows
layout(std430, binding = 3) writeonly buffer O_ { float opart[]; };     // [splits, T, nq, HD]
layout(std430, binding = 4) writeonly buffer ML_ { vec2 ml[]; };        // [splits, T, nq]
layout(std430, binding = 5) readonly buffer Pos_ { int pos[]; };

layout(push_constant) uniform P {
	uint T, nq, nkv, stride, rowOff, maxT, seq, kps;
	float scale;
} p;

const uint BR = 64, BC = 32;   // query rows and keys a tile
const uint LDK = HD + 8;       // padded row of a staged K/V/Q row (halves)
const uint LDS = BC + 4;       // padded row of S (floats)
const uint LDP = BC + 8;       // padded row of P (halves)
const uint NF = HD / 16;       // 16-wide column blocks of the head

// K then V tiles, each [BC][LDK] halves packed four to a uvec2; the query rows
// [BR][LDK] pass through the same space before the first tile.
shared uvec2 kvs[2 * BC * LDK / 4];
shared float ssh[BR * LDS];          // scores, [row][key]
shared uvec2 psh[BR * LDP / 4];      // numerators, f16
shared float ost[4 * 256];           // per-subgroup 16×16 staging of the output


// The next tile's K and V, loaded into registers while this one is multiplied,
// as stored (int8 codes and their scales, or f16), so that nothing waits for
// the loads before the multiplies; store_kv converts them.
const uint NKL = (BC * HD / 8 + WG - 1) / WG; // 8-value K pieces an invocation stages
#ifdef KV_Q8
const uint VP = 4; // values a V piece: one word of codes
#else
const uint VP = 8; // a uvec4 of f16
#endif
const uint NVL = (BC * HD / VP + WG - 1) / WG; // V pieces an invocation stages
#ifdef KV_Q8
uvec2 kr[NKL];
uint vr[NVL];
float ks[NKL], vs[NVL];
#else
uvec4 kr[NKL], vr[NVL];
#endif

void load_kv(uint base, uint kt, uint k1) {
	[[unroll]] for (uint a = 0; a < NKL; a++) {
		const uint i = gl_LocalInvocationID.x + a * WG, key = kt + i / (HD / 8);
		const bool in_ = i < BC * HD / 8 && key < k1;
#ifdef KV_Q8
		kr[a] = in_ ? kraw(base + key, i % (HD / 8), HD) : uvec2(0);
		ks[a] = in_ ? kscl(base + key) : 0.0;
#else
		kr[a] = in_ ? kload(base + key, i % (HD / 8), HD) : uvec4(0);
#endif
	}
	[[unroll]] for (uint a = 0; a < NVL; a++) {
		const uint i = gl_LocalInvocationID.x + a * WG, key = kt + i / (HD / VP);
		const bool in_ = i < BC * HD / VP && key < k1;
#ifdef KV_Q8
		vr[a] = in_ ? vraw(base + key, i % (HD / VP), HD) : 0u;
		vs[a] = in_ ? vscl(base + key) : 0.0;
#else
		vr[a] = in_ ? vraw8(base + key, i % (HD / VP), HD) : uvec4(0);
#endif
	}
}

void store_kv() {
	[[unroll]] for (uint a = 0; a < NKL; a++) {
		const uint i = gl_LocalInvocationID.x + a * WG, j = i / (HD / 8), e = i % (HD / 8);
		if (i < BC * HD / 8) {
#ifdef KV_Q8
			const uvec4 k = uvec4(f16x4(codes4(kr[a].x) * ks[a]), f16x4(codes4(kr[a].y) * ks[a]));
#else
			const uvec4 k = kr[a];
#endif
			kvs[(j * LDK) / 4 + 2 * e] = k.xy;
			kvs[(j * LDK) / 4 + 2 * e + 1] = k.zw;
		}
	}
	[[unroll]] for (uint a = 0; a < NVL; a++) {
		const uint i = gl_LocalInvocationID.x + a * WG, j = i / (HD / VP), o = ((BC + j) * LDK + (i % (HD / VP)) * VP) / 4;
		if (i >= BC * HD / VP) continue;
#ifdef KV_Q8
		kvs[o] = f16x4(vcodes(vr[a]) * vs[a]);
#else
		kvs[o] = vr[a].xy;
		kvs[o + 1] = vr[a].zw;
#endif
	}
}

void main() {
	const uint tid = gl_LocalInvocationID.x, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
	const uint G = p.nq / p.nkv, g = gl_WorkGroupID.y, z = gl_WorkGroupID.z;
	const uint r0 = gl_WorkGroupID.x * BR; // first group-row of the workgroup
	const uint past = uint(pos[p.rowOff]);

	// Queries, scaled, to f16 (rows past T are zeros).
	for (uint i = tid; i < BR * HD / 4; i += WG) {
		const uint r = i / (HD / 4), e = i % (HD / 4), gr = r0 + r, t = gr / G;
		vec4 v = vec4(0.0);
		if (t < p.T) v = qv[((p.rowOff + t) * p.stride + (g * G + gr % G) * HD) / 4 + e] * p.scale;
		kvs[(r * LDK) / 4 + e] = f16x4(v);
	}
	barrier();
	fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> qm[NF];
	[[unroll]] for (uint f = 0; f < NF; f++) coopMatLoadNV(qm[f], kvs, (sg * 16 * LDK + f * 16) / 4, LDK / 4, false);
	fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> om[NF];
	[[unroll]] for (uint f = 0; f < NF; f++) om[f] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);

	// Softmax lanes: lane = 2·row + hf; half hf covers keys hf·16..+15.
	const uint row = lane / 2, hf = lane % 2, wr = sg * 16 + row;
	const uint t = (r0 + wr) / G; // this lane's row's token
	float mrow = -1.0 / 0.0, lrow = 0.0;

	const uint tlast = min(p.T - 1, (r0 + BR - 1) / G);
	const uint k0 = z * p.kps, k1 = min(k0 + p.kps, past + tlast + 1); // causal end for the workgroup
	const uint base = (p.seq * p.nkv + g) * p.maxT;
	load_kv(base, k0, k1);
	for (uint kt = k0; kt < k1; kt += BC) {
		barrier(); // the previous tile (or the queries) is no longer read
		store_kv();
		barrier();
		if (kt + BC < k1) load_kv(base, kt + BC, k1); // in flight during this tile's work
		// S = Q·Kᵀ for this subgroup's 16 rows: two 16-key blocks.
		[[unroll]] for (uint kb = 0; kb < BC / 16; kb++) {
			fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> sm = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
			[[unroll]] for (uint f = 0; f < NF; f++) {
				fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> km;
				coopMatLoadNV(km, kvs, (kb * 16 * LDK + f * 16) / 4, LDK / 4, true); // Kᵀ: column n is key n
				sm = coopMatMulAddNV(qm[f], km, sm);
			}
			coopMatStoreNV(sm, ssh, sg * 16 * LDS + kb * 16, LDS, false);
		}
		subgroupBarrier();
		// Online softmax over the tile, two lanes a row.
		float s[16];
		float mx = -1.0 / 0.0;
		[[unroll]] for (uint j = 0; j < 16; j++) {
			const uint key = kt + hf * 16 + j;
			s[j] = (t < p.T && key < k1 && key <= past + t) ? ssh[wr * LDS + hf * 16 + j] : -1.0 / 0.0;
			mx = max(mx, s[j]);
		}
		mx = max(mx, subgroupShuffleXor(mx, 1));
		const float mnew = max(mrow, mx);
		const bool none = mnew == -1.0 / 0.0;
		const float alpha = none ? 1.0 : exp(mrow - mnew);
		float sum = 0.0;
		[[unroll]] for (uint j = 0; j < 16; j += 4) {
			vec4 e4;
			[[unroll]] for (uint c = 0; c < 4; c++) e4[c] = none ? 0.0 : exp(s[j + c] - mnew);
			sum += e4.x + e4.y + e4.z + e4.w;
			psh[(wr * LDP + hf * 16 + j) / 4] = f16x4(e4);
		}
		sum += subgroupShuffleXor(sum, 1);
		lrow = lrow * alpha + sum;
		mrow = mnew;
		// Rescale the output where a row's max moved: each lane scales the 8
		// staged elements of its own row.
		if (!subgroupAll(alpha == 1.0)) {
			[[unroll]] for (uint f = 0; f < NF; f++) {
				coopMatStoreNV(om[f], ost, sg * 256, 16, false);
				subgroupBarrier();
				[[unroll]] for (uint c = 0; c < 8; c++) ost[sg * 256 + lane * 8 + c] *= alpha;
				subgroupBarrier();
				coopMatLoadNV(om[f], ost, sg * 256, 16, false);
				subgroupBarrier();
			}
		}
		subgroupBarrier(); // P is written
		// O += P·V.
		[[unroll]] for (uint kb = 0; kb < BC / 16; kb++) {
			fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> pm;
			coopMatLoadNV(pm, psh, (sg * 16 * LDP + kb * 16) / 4, LDP / 4, false);
			[[unroll]] for (uint f = 0; f < NF; f++) {
				fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> vm;
				coopMatLoadNV(vm, kvs, ((BC + kb * 16) * LDK + f * 16) / 4, LDK / 4, false);
				om[f] = coopMatMulAddNV(pm, vm, om[f]);
			}
		}
	}
	// The partial output: through the staging tile, each lane writes 8 values of
	// its own row.
	const uint gr = r0 + wr;
	const uint orow = (z * p.T + t) * p.nq + g * G + gr % G;
	[[unroll]] for (uint f = 0; f < NF; f++) {
		coopMatStoreNV(om[f], ost, sg * 256, 16, false);
		subgroupBarrier();
		if (t < p.T) [[unroll]] for (uint c = 0; c < 8; c++) opart[orow * HD + f * 16 + hf * 8 + c] = ost[sg * 256 + lane * 8 + c];
		subgroupBarrier();
	}
	if (t < p.T && hf == 0) ml[orow] = vec2(mrow, lrow);
}
