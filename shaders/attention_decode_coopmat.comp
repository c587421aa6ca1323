#version 450
// attention_decode_coopmat: attention_decode.comp (its KV_Q8 form) on tensor
// cores (VK_NV_cooperative_matrix): the same grid, splits and outputs. A
// workgroup of four subgroups takes one KV head, all G of its query heads (as
// the 16 rows of the products; rows past G are zeros) and the 128-key tiles of
// its split, merged by a running softmax. A tile:
//   - S = Q·Kᵀ as int8 products (16×16×32): the queries' int8 codes from shared
//     memory, K's codes straight from the cache (subgroup s takes keys
//     32s..32s+31, loaded a tile ahead), S stored to shared memory;
//   - invocation j scales key j's scores (the query's and key's scales) and
//     takes the softmax as attention_decode does; the numerators, times the
//     key's value scale and 2^10, go to shared memory as f16;
//   - O += P·V in f16 (16×16×16, f32 sums): V's codes, loaded a tile ahead, are
//     staged as f16 (exact: they are integers) in shared memory; subgroup s
//     takes output columns 32s..32s+31. Where a head's max moved, O's rows
//     are rescaled through shared memory.
// The 2^10 keeps the f16 numerators clear of f16's subnormals (a numerator is
// at most the value scale, max|v|/127, times 2^10: finite up to |v| of 8000).
// Opt-in (ops.Ops.DecodeCoop, bench --vary attn-coop=1): correct on an H200
// and slower there at every context (q4 steps +0.09 ms at 1k keys, +5 ms at
// 16k), with 253 registers: two workgroups a multiprocessor.
// Needs HD = 128 and G ≤ 16, 16×16×32 s8 and 16×16×16 f16 cooperative
// matrices on subgroups of 32, and K's binding to extend at least 127 keys
// past the last cached vector (ops.KVPadKeys): a tile's keys past the cache
// are loaded and ignored (ops checks).
#extension GL_NV_cooperative_matrix : require
#extension GL_NV_integer_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#include "include/common.glsl"
#define KV_Q8
#include "include/kv.glsl"

layout(constant_id = 1) const uint G = 8;        // query heads per KV head (≤ 16)
layout(constant_id = 2) const bool MULTI = true; // splits of several tiles (else one each)

layout(std430, binding = 0) readonly buffer Q_ { float q[]; };
layout(std430, binding = 3) writeonly buffer O_ { float opart[]; };
layout(std430, binding = 4) writeonly buffer ML_ { vec2 ml[]; };
layout(std430, binding = 5) readonly buffer Pos_ { int pos[]; };

layout(push_constant) uniform P {
	uint T, nq, nkv, stride, rowOff, maxT, seq, kps;
	float scale;
} p;

#define HD 128                // head size
#define TK 128                // keys a tile (= WG)
#define KS (HD / 32)          // int8 k-steps of a score product
const uint LDS = TK;          // row of S (floats)
const uint LDP = TK + 8;      // row of P (halves)
const uint LDV = HD + 4;      // row of staged V (halves; 4 of padding, as 48 KiB allow)
const float PSCALE = 1024.0;  // the numerators' factor

#define QFRAG icoopmatNV<8, gl_ScopeSubgroup, 16, 32>
#define KFRAG icoopmatNV<8, gl_ScopeSubgroup, 32, 16>
#define SFRAG icoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HFRAG fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define OFRAG fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>

shared uvec4 qa[16 * HD / 16];        // the queries' int8 codes, [row][16 codes]; rows ≥ G zero
shared uint qmax[16];                 // max |q| of each head, as float bits
shared float ssh[16 * LDS];           // S, [row][key]; after the softmax, O's staging
shared float16_t psh[16 * LDP];       // numerators, [row][key]; rows ≥ G zero
shared uvec2 vsh[TK * LDV / 4];       // V's codes as f16, [key][column]
shared float red[16 * 4];             // the reductions' partials, [head][subgroup]

// The next tile's loads: each subgroup's K fragments (its 32 keys, two of 16,
// over the head's KS k-steps) and each invocation's 32 words of V codes with
// its key's scales.
KFRAG kf[2][KS];
uint vw[TK * HD / 4 / TK];
float ksc, vsc;

void loads(uint base, uint k0, uint sg, uint tid) {
	// K: column n of a fragment is key k0 + 32·sg + 16·b + n, its k the
	// head's dims 32·s.. (16-byte words: 8 a key).
	[[unroll]] for (uint b = 0; b < 2; b++)
		[[unroll]] for (uint s = 0; s < KS; s++)
			coopMatLoadNV(kf[b][s], kc16, (base + k0 + 32 * sg + 16 * b) * (HD / 16) + 2 * s, HD / 16, true);
	// V: word i of the tile (key i / 32, columns 4(i % 32)..), i = tid + 128a.
	[[unroll]] for (uint a = 0; a < HD / 4; a++) {
		const uint i = tid + TK * a;
		vw[a] = vraw(base + min(k0 + i / (HD / 4), p.maxT - 1), i % (HD / 4), HD);
	}
	const uint kv = base + min(k0 + tid, p.maxT - 1);
	ksc = kscl(kv);
	vsc = vscl(kv);
}

// stage puts the loaded V words into vsh as f16 and S = Q·Kᵀ into ssh.
void stage(uint sg, uint tid) {
	[[unroll]] for (uint a = 0; a < HD / 4; a++) {
		const uint i = tid + TK * a;
		vsh[((i / (HD / 4)) * LDV + 4 * (i % (HD / 4))) / 4] = f16x4(codes4(vw[a]));
	}
	[[unroll]] for (uint b = 0; b < 2; b++) {
		SFRAG sf = SFRAG(0);
		[[unroll]] for (uint s = 0; s < KS; s++) {
			QFRAG qf;
			coopMatLoadNV(qf, qa, 2 * s, HD / 16, false);
			sf = coopMatMulAddNV(qf, kf[b][s], sf);
		}
		coopMatStoreNV(OFRAG(sf), ssh, 32 * sg + 16 * b, LDS, false); // (exact: |S| < 2^24)
	}
}

void main() {
	const uint tid = gl_LocalInvocationID.x, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
	const uint g = gl_WorkGroupID.y, z = gl_WorkGroupID.z, h0 = g * G;
	const uint base = (p.seq * p.nkv + g) * p.maxT;
	const uint kend = uint(pos[p.rowOff]) + 1;
	const uint ntiles = (kend + TK - 1) / TK, S = gl_NumWorkGroups.z;
	const uint t0 = ntiles <= S ? z : z * ntiles / S;
	const uint t1 = !MULTI || ntiles <= S ? t0 + 1 : (z + 1) * ntiles / S;
	if (t0 >= ntiles) return; // no keys here (uniform over the workgroup)
	loads(base, t0 * TK, sg, tid);

	// The queries' int8 codes (a scale per head), rows ≥ G zero; P's rows ≥ G zero.
	if (tid < 16) qmax[tid] = 0;
	for (uint i = tid; i < 16 * LDP; i += TK) psh[i] = float16_t(0.0);
	barrier();
	vec4 qv[HD / 4 * 16 / TK];
	[[unroll]] for (uint a = 0; a < HD / 4 * 16 / TK; a++) {
		const uint i = tid + TK * a, h = i / (HD / 4), e = i % (HD / 4);
		qv[a] = vec4(0.0);
		if (h < G) {
			const uint qb = p.rowOff * p.stride + (h0 + h) * HD + 4 * e;
			qv[a] = vec4(q[qb], q[qb + 1], q[qb + 2], q[qb + 3]);
			const vec4 m = abs(qv[a]);
			atomicMax(qmax[h], floatBitsToUint(max(max(m.x, m.y), max(m.z, m.w)))); // non-negative floats order as their bits
		}
	}
	barrier();
	[[unroll]] for (uint a = 0; a < HD / 4 * 16 / TK; a++) {
		const uint i = tid + TK * a, h = i / (HD / 4), e = i % (HD / 4);
		const float d = uintBitsToFloat(qmax[h]) / 127.0, id = d > 0.0 ? 1.0 / d : 0.0;
		const vec4 v = qv[a] * id;
		qa[h * (HD / 16) + e / 4][e % 4] = q8_word(v); // (four codes a word; a uvec4 holds 16)
	}
	barrier();
	float qsc[16];
	[[unroll]] for (uint h = 0; h < 16; h++) qsc[h] = h < G ? uintBitsToFloat(qmax[h]) / 127.0 * p.scale : 0.0;

	OFRAG of[2];
	of[0] = OFRAG(0.0);
	of[1] = OFRAG(0.0);
	float lp[16], mrun[16]; // this invocation's keys' share of each head's sum, relative to the running max
	[[unroll]] for (uint h = 0; h < 16; h++) {
		lp[h] = 0.0;
		mrun[h] = -1.0 / 0.0; // (every invocation keeps the same running max)
	}
	for (uint t = t0; t < t1; t++) {
		const uint k0 = t * TK, key = k0 + tid;
		const bool valid = key < kend;
		barrier(); // the previous tile's P·V no longer reads vsh, psh or ssh
		stage(sg, tid);
		const float ks = ksc, vs = vsc;
		if (t + 1 < t1) loads(base, k0 + TK, sg, tid); // in flight through this tile
		barrier();
		// The softmax, invocation tid taking key k0 + tid.
		float s[16], m[16];
		[[unroll]] for (uint h = 0; h < 16; h++) {
			s[h] = valid && h < G ? ssh[h * LDS + tid] * qsc[h] * ks : -1.0 / 0.0;
			m[h] = subgroupMax(s[h]);
		}
		if (lane == 0) [[unroll]] for (uint h = 0; h < G; h++) red[h * 4 + sg] = m[h];
		barrier();
		bool moved = false;
		float ar = 1.0; // the rescale of O's row lane / 2 (the rows this lane stages below)
		[[unroll]] for (uint h = 0; h < 16; h++) {
			if (h >= G) continue;
			float mx = red[h * 4];
			for (uint i = 1; i < gl_NumSubgroups; i++) mx = max(mx, red[h * 4 + i]);
			const float mn = max(mrun[h], mx); // (every tile holds a key: mn is finite)
			const float e = valid ? exp(s[h] - mn) : 0.0, a = exp(mrun[h] - mn);
			lp[h] = lp[h] * a + e;
			psh[h * LDP + tid] = float16_t(e * vs * PSCALE);
			moved = moved || a != 1.0;
			if (h == lane / 2) ar = a;
			mrun[h] = mn;
		}
		barrier(); // psh is written (and red read)
		// O's rows rescaled where their max moved (not in the first tile, whose O is zero).
		if (moved && t > t0) {
			[[unroll]] for (uint f = 0; f < 2; f++) {
				const uint at = (2 * sg + f) * 256; // this subgroup's 16×16 staging in ssh
				coopMatStoreNV(of[f], ssh, at, 16, false);
				subgroupMemoryBarrierShared();
				subgroupBarrier();
				[[unroll]] for (uint c = 0; c < 8; c++) {
					const uint i = lane * 8 + c;
					ssh[at + i] *= ar; // (its row: lane / 2)
				}
				subgroupMemoryBarrierShared();
				subgroupBarrier();
				coopMatLoadNV(of[f], ssh, at, 16, false);
			}
		}
		// O += P·V: subgroup sg's columns 32·sg.., 16 keys a product.
		[[unroll]] for (uint kb = 0; kb < TK / 16; kb++) {
			HFRAG pf;
			coopMatLoadNV(pf, psh, kb * 16, LDP, false);
			[[unroll]] for (uint f = 0; f < 2; f++) {
				HFRAG vf;
				coopMatLoadNV(vf, vsh, (kb * 16 * LDV + 32 * sg + 16 * f) / 4, LDV / 4, false);
				of[f] = coopMatMulAddNV(pf, vf, of[f]);
			}
		}
	}
	// The sums: a reduction of the invocations' shares, head by head.
	barrier(); // P·V no longer reads (ssh takes O's staging below)
	[[unroll]] for (uint h = 0; h < 16; h++) {
		if (h >= G) continue;
		const float r = subgroupAdd(lp[h]);
		if (lane == 0) red[h * 4 + sg] = r;
	}
	[[unroll]] for (uint f = 0; f < 2; f++) coopMatStoreNV(of[f], ssh, (2 * sg + f) * 256, 16, false);
	barrier();
	[[unroll]] for (uint h = 0; h < 16; h++) {
		if (h >= G || tid != h) continue;
		float l = red[h * 4];
		for (uint i = 1; i < gl_NumSubgroups; i++) l += red[h * 4 + i];
		ml[z * p.nq + h0 + h] = vec2(mrun[h], l);
	}
	// Output column c = tid: subgroup c / 32's fragment (c % 32) / 16, column c % 16.
	const uint at = ((tid / 32) * 2 + (tid % 32) / 16) * 256 + tid % 16;
	[[unroll]] for (uint h = 0; h < 16; h++) {
		if (h < G) opart[(z * p.nq + h0 + h) * HD + tid] = ssh[at + h * 16] / PSCALE;
	}
}
