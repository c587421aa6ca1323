#version 450
// kv_store: copies the k and v heads of T consecutive tokens of one sequence from
// qkv [rows, (nq+2nkv)·d] (rows rowOff..rowOff+T-1) into the caches
// K, V [seqs, nkv, maxT, d] at positions pos[rowOff]..+T-1 (read from the device,
// so a recorded decode step can be replayed at any position).
// Default: f16 values, one invocation per value. KV_Q8: int8 codes (4 a word)
// and one f32 scale per vector (amax/127, codes rounded half away from zero),
// one workgroup per (head, token).
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer X_ { float x[]; };
layout(std430, binding = 3) readonly buffer Pos_ { int pos[]; };
#ifdef KV_Q8
layout(std430, binding = 1) writeonly buffer K_ { uint kc[]; };
layout(std430, binding = 2) writeonly buffer V_ { uint vc[]; };
layout(std430, binding = 4) writeonly buffer KS_ { float kscale[]; };
layout(std430, binding = 5) writeonly buffer VS_ { float vscale[]; };
#else
layout(std430, binding = 1) writeonly buffer K_ { float16_t kc[]; };
layout(std430, binding = 2) writeonly buffer V_ { float16_t vc[]; };
#endif

layout(push_constant) uniform P {
	uint T, rowOff, nq, nkv, d, stride, maxT, seq;
} p;

#ifdef KV_Q8
// pack4 quantizes x[at..at+3] with inverse scale inv into one word of codes.
uint pack4(uint at, float inv) {
	uint w = 0;
	for (uint i = 0; i < 4; i++) {
		const int q = int(clamp(round_away(x[at + i] * inv), -127.0, 127.0));
		w |= uint(q & 0xFF) << (8 * i);
	}
	return w;
}

void main() {
	const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
	const uint src = (p.rowOff + t) * p.stride + (p.nq + h) * p.d, vsrc = src + p.nkv * p.d;
	const uint vec = (p.seq * p.nkv + h) * p.maxT + uint(pos[p.rowOff]) + t;
	float ka = 0.0, va = 0.0;
	for (uint i = tid; i < p.d; i += WG) {
		ka = max(ka, abs(x[src + i]));
		va = max(va, abs(x[vsrc + i]));
	}
	ka = wg_max(ka);
	va = wg_max(va);
	const float kinv = ka > 0.0 ? 127.0 / ka : 0.0, vinv = va > 0.0 ? 127.0 / va : 0.0;
	for (uint j = tid; j < p.d / 4; j += WG) {
		kc[vec * (p.d / 4) + j] = pack4(src + 4 * j, kinv);
		vc[vec * (p.d / 4) + j] = pack4(vsrc + 4 * j, vinv);
	}
	if (tid == 0) {
		kscale[vec] = ka / 127.0;
		vscale[vec] = va / 127.0;
	}
}
#else
void main() {
	const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
	if (g >= p.T * p.nkv * p.d) return;
	const uint i = g % p.d, h = (g / p.d) % p.nkv, t = g / (p.d * p.nkv);
	const uint src = (p.rowOff + t) * p.stride + (p.nq + h) * p.d + i;
	const uint dst = ((p.seq * p.nkv + h) * p.maxT + uint(pos[p.rowOff]) + t) * p.d + i;
	kc[dst] = float16_t(x[src]);
	vc[dst] = float16_t(x[src + p.nkv * p.d]);
}
#endif
