#version 450
// qkv_heads: a decode step's qkv projection (block weights and q8_1 activations
// from rmsnorm_q8_1, or float weights and f32 activations from rmsnorm.comp's
// PARTS, divided by the RMS from the norm's shares as the mat-vecs' INV_RMS
// does) with qk_norm_rope.comp's KV_STORE work as its epilogue, so that
// stage and its barrier leave the step. A workgroup computes one head's HD rows
// for every column (a step's rows): subgroup s takes rows s·R..s·R+R-1, its
// lanes the blocks of K. With a whole head in shared memory the workgroup then
// RMS-normalises a q or k head (qn, kn) and rotates it at the column's
// position; q heads go to y (the attention's input, as qk_norm_rope leaves
// them), k and v heads into the cache of the column's sequence ((seqs >> 8c) &
// 255) at pos[c], as f16 or (KV_Q8) int8 codes with a scale per vector.
#include "include/common.glsl"
#include "include/weights.glsl"

layout(constant_id = 1) const uint NCOLS = 2;
layout(constant_id = 2) const uint R = 4;    // rows a subgroup takes: HD / subgroups
layout(constant_id = 3) const uint HD = 128; // head dim
layout(constant_id = 4) const uint STEPS = 1; // float weights: 2 has a lane's next weights in flight during a step's arithmetic

#if defined(W_BLOCKED)
#include "include/dot.glsl"
layout(std430, binding = WB + 0) readonly buffer XQ_ { uvec4 xq[]; }; // [cols, K/32] × 2 uvec4
layout(std430, binding = WB + 1) readonly buffer XD_ { vec2 xd[]; };  // [cols, K/32] (d, d*sum)
#define AB (WB + 2) // the bindings after the activations
#else
layout(std430, binding = WB + 0) readonly buffer XV_ { vec4 xv[]; }; // [cols, xstride] f32
#define AB (WB + 1)
#include "include/wload8.glsl"
#endif
layout(std430, binding = AB + 0) writeonly buffer Y_ { float y[]; }; // [cols, ystride]: q heads
layout(std430, binding = AB + 2) readonly buffer QN_ { float qn[]; };
layout(std430, binding = AB + 3) readonly buffer KN_ { float kn[]; };
layout(std430, binding = AB + 4) readonly buffer Pos_ { int pos[]; };
#if defined(KV_Q8)
layout(std430, binding = AB + 5) writeonly buffer K_ { int8_t kc[]; };
layout(std430, binding = AB + 6) writeonly buffer V_ { int8_t vc[]; };
layout(std430, binding = AB + 7) writeonly buffer KS_ { float kscale[]; };
layout(std430, binding = AB + 8) writeonly buffer VS_ { float vscale[]; };
#else
layout(std430, binding = AB + 5) writeonly buffer K_ { float16_t kc[]; };
layout(std430, binding = AB + 6) writeonly buffer V_ { float16_t vc[]; };
#endif

layout(push_constant) uniform P {
	uint K;
	uint xstride; // between activation columns: blocks (q8_1), or floats (a multiple of 8)
	uint ystride;
	uint nw;      // the norm's shares a column
	float eps;    // the hidden norm's
	float qeps, theta;
	uint nq, nkv, maxT, seqs;
} p;

#define S_BINDING (AB + 1)
#include "include/inv_rms.glsl"
#if defined(W_BLOCKED)
#define RR R
#include "include/q8_1_rows.glsl"
#else
uint rows[R];
float acc[R][NCOLS];
vec4 xa[NCOLS], xb[NCOLS]; // a lane's step of the activations

// load_x reads every column's 8 activations of step i into xa, xb.
void load_x(uint i) {
	[[unroll]] for (uint c = 0; c < NCOLS; c++) {
		xa[c] = xv[2 * (c * (p.xstride >> 3) + i)];
		xb[c] = xv[2 * (c * (p.xstride >> 3) + i) + 1];
	}
}

// rows_dot: the subgroup's lanes take K 8 floats at a time (K a multiple of 8),
// one step at a time or (STEPS 2) with their next weights in flight during a
// step's arithmetic.
void rows_dot() {
	const uint K8 = p.K >> 3;
	[[unroll]] for (uint r = 0; r < R; r++) [[unroll]] for (uint c = 0; c < NCOLS; c++) acc[r][c] = 0.0;
	if (STEPS < 2) {
		for (uint i = gl_SubgroupInvocationID; i < K8; i += gl_SubgroupSize) {
			load_x(i);
			[[unroll]] for (uint r = 0; r < R; r++) {
				vec4 wa, wb;
				wload8(rows[r] * K8 + i, wa, wb);
				[[unroll]] for (uint c = 0; c < NCOLS; c++) acc[r][c] += dot(wa, xa[c]) + dot(wb, xb[c]);
			}
		}
		return;
	}
	// STEPS 2: row r's next weights are loaded before the arithmetic of its
	// current ones (after the step's activations).
	WRAW w[R]; // the rows' weights at this lane's step, as stored
	uint i = gl_SubgroupInvocationID;
	[[unroll]] for (uint r = 0; r < R; r++) w[r] = wraw8(rows[r] * K8 + min(i, K8 - 1));
	for (; i < K8; i += gl_SubgroupSize) {
		const uint n = min(i + gl_SubgroupSize, K8 - 1); // (past the end: the row's last step again, not used)
		load_x(i);
		[[unroll]] for (uint r = 0; r < R; r++) {
			const WRAW next = wraw8(rows[r] * K8 + n);
			vec4 wa, wb;
			wdec8(w[r], wa, wb);
			[[unroll]] for (uint c = 0; c < NCOLS; c++) acc[r][c] += dot(wa, xa[c]) + dot(wb, xb[c]);
			w[r] = next;
		}
	}
}
#endif

shared float ysh[NCOLS * HD];          // the head's results [col][row]
shared float part_sh[WG]; // per-subgroup partials of the epilogue's reductions

// col_reduce sums (or with domax, maxes) v over the HD/2 invocations of column
// c (invocations c·HD/2..); every invocation calls it (it barriers). The
// subgroups' totals are combined in order, so every invocation of a column
// gets the same value.
float col_reduce(float v, uint c, bool domax) {
	const float s = domax ? subgroupMax(v) : subgroupAdd(v);
	if (subgroupElect()) part_sh[gl_SubgroupID] = s;
	barrier();
	const uint per = HD / 2 / gl_SubgroupSize, first = c * per; // subgroups a column
	float r = part_sh[first];
	for (uint j = 1; j < per; j++) r = domax ? max(r, part_sh[first + j]) : r + part_sh[first + j];
	barrier();
	return r;
}

void main() {
	const uint head = gl_WorkGroupID.x;
	const uint row0 = head * HD + gl_SubgroupID * R;
	inv_rms_load();
	[[unroll]] for (uint r = 0; r < R; r++) rows[r] = row0 + r;
	rows_dot();
	inv_rms_sum();
	[[unroll]] for (uint r = 0; r < R; r++) [[unroll]] for (uint c = 0; c < NCOLS; c++) {
		const float t = subgroupAdd(acc[r][c]);
		if (subgroupElect()) ysh[c * HD + gl_SubgroupID * R + r] = t * inv_rms[c];
	}
	barrier();

	// The epilogue: invocation t < NCOLS·HD/2 takes column c's rotation pair
	// (i, i + HD/2), as qk_norm_rope.comp's invocation i does.
	const uint t = gl_LocalInvocationID.x, half_d = HD / 2;
	const bool act = t < NCOLS * half_d;
	const uint c = min(t / half_d, NCOLS - 1), i = t % half_d;
	float y1 = act ? ysh[c * HD + i] : 0.0, y2 = act ? ysh[c * HD + i + half_d] : 0.0;
	const bool isq = head < p.nq, isv = head >= p.nq + p.nkv; // uniform in the workgroup
	if (!isv) {
		const float x1 = y1, x2 = y2;
		const float inv = inversesqrt(col_reduce(x1 * x1 + x2 * x2, c, false) / float(HD) + p.qeps);
		const float n1 = x1 * inv * (isq ? qn[i] : kn[i]);
		const float n2 = x2 * inv * (isq ? qn[i + half_d] : kn[i + half_d]);
		const float ang = float(pos[c]) / pow(p.theta, float(2 * i) / float(HD));
		const float cs = cos(ang), sn = sin(ang);
		y1 = n1 * cs - n2 * sn;
		y2 = n2 * cs + n1 * sn;
	}
	if (isq) {
		if (act) {
			y[c * p.ystride + head * HD + i] = y1;
			y[c * p.ystride + head * HD + i + half_d] = y2;
		}
		return;
	}
	const uint h = isv ? head - p.nq - p.nkv : head - p.nq;
	const uint seq = (p.seqs >> (8 * c)) & 255u;
	const uint vec = (seq * p.nkv + h) * p.maxT + uint(pos[c]);
	const uint at = vec * HD + i;
#if defined(KV_Q8)
	const float amax = col_reduce(max(abs(y1), abs(y2)), c, true);
	if (!act) return;
	const float inv = amax > 0.0 ? 127.0 / amax : 0.0;
	const int8_t c1 = int8_t(int(clamp(round_away(y1 * inv), -127.0, 127.0)));
	const int8_t c2 = int8_t(int(clamp(round_away(y2 * inv), -127.0, 127.0)));
	if (isv) {
		vc[at] = c1;
		vc[at + half_d] = c2;
		if (i == 0) vscale[vec] = amax / 127.0;
	} else {
		kc[at] = c1;
		kc[at + half_d] = c2;
		if (i == 0) kscale[vec] = amax / 127.0;
	}
#else
	if (!act) return;
	if (isv) {
		vc[at] = float16_t(y1);
		vc[at + half_d] = float16_t(y2);
	} else {
		kc[at] = float16_t(y1);
		kc[at + half_d] = float16_t(y2);
	}
#endif
}
