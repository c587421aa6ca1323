#version 450
// qk_norm_rope: in place on the fused projection output qkv [rows, (nq+2nkv)·d]:
// every q head (q_norm weight) and k head (k_norm weight) is RMS-normalised over
// its d values, then rotated by rotate-half RoPE at pos[row]. Fuses rmsnorm.comp
// (rows of d) followed by rope.comp, and is tested against that pair on the CPU.
// One workgroup of d/2 invocations per (head, row): invocation i owns the
// rotation pair (i, i + d/2).
// With KV_STORE (decode steps) it also does kv_store.comp's work: the grid takes
// the v heads too, and the k and v heads of row r are written to the cache of
// sequence (seqs >> 8r) & 255 at position pos[r], as f16 or (KV_Q8) int8 codes
// with a scale per vector, the same values kv_store writes.
#include "include/common.glsl"

layout(std430, binding = 0) buffer X_ { float x[]; };
layout(std430, binding = 1) readonly buffer QN_ { float qn[]; };
layout(std430, binding = 2) readonly buffer KN_ { float kn[]; };
layout(std430, binding = 3) readonly buffer Pos_ { int pos[]; };
#if defined(KV_STORE)
#if defined(KV_Q8)
layout(std430, binding = 4) writeonly buffer K_ { int8_t kc[]; };
layout(std430, binding = 5) writeonly buffer V_ { int8_t vc[]; };
layout(std430, binding = 6) writeonly buffer KS_ { float kscale[]; };
layout(std430, binding = 7) writeonly buffer VS_ { float vscale[]; };
#else
layout(std430, binding = 4) writeonly buffer K_ { float16_t kc[]; };
layout(std430, binding = 5) writeonly buffer V_ { float16_t vc[]; };
#endif
#endif

layout(push_constant) uniform P {
	uint nq, d, stride;
	float eps, theta;
	uint nkv, maxT, seqs; // KV_STORE only
} p;

void main() {
	const uint head = gl_WorkGroupID.x, row = gl_WorkGroupID.y, i = gl_LocalInvocationID.x;
	const uint half_d = p.d / 2;
	const uint a = row * p.stride + head * p.d + i, b = a + half_d;
	float y1 = x[a], y2 = x[b];
#if defined(KV_STORE)
	const bool isv = head >= p.nq + p.nkv; // uniform in the workgroup
#else
	const bool isv = false;
#endif
	if (!isv) {
		const float x1 = y1, x2 = y2;
		const float inv = inversesqrt(wg_sum(x1 * x1 + x2 * x2) / float(p.d) + p.eps);
		const bool isq = head < p.nq;
		const float n1 = x1 * inv * (isq ? qn[i] : kn[i]);
		const float n2 = x2 * inv * (isq ? qn[i + half_d] : kn[i + half_d]);
		const float ang = float(pos[row]) / pow(p.theta, float(2 * i) / float(p.d));
		const float c = cos(ang), s = sin(ang);
		y1 = n1 * c - n2 * s;
		y2 = n2 * c + n1 * s;
		x[a] = y1;
		x[b] = y2;
	}
#if defined(KV_STORE)
	if (head < p.nq) return;
	const uint h = isv ? head - p.nq - p.nkv : head - p.nq;
	const uint seq = (p.seqs >> (8 * row)) & 255u;
	const uint vec = (seq * p.nkv + h) * p.maxT + uint(pos[row]);
	const uint at = vec * p.d + i;
#if defined(KV_Q8)
	const float amax = wg_max(max(abs(y1), abs(y2)));
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
	if (isv) {
		vc[at] = float16_t(y1);
		vc[at + half_d] = float16_t(y2);
	} else {
		kc[at] = float16_t(y1);
		kc[at + half_d] = float16_t(y2);
	}
#endif
#endif
}
