#version 450
// kv_store: copies the k and v heads of T consecutive tokens of one sequence from
// qkv [rows, (nq+2nkv)·d] (rows rowOff..rowOff+T-1) into the f16 caches
// K, V [seqs, nkv, maxT, d] at positions pos[rowOff]..+T-1 (read from the device,
// so a recorded decode step can be replayed at any position).
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer X_ { float x[]; };
layout(std430, binding = 1) writeonly buffer K_ { float16_t kc[]; };
layout(std430, binding = 2) writeonly buffer V_ { float16_t vc[]; };
layout(std430, binding = 3) readonly buffer Pos_ { int pos[]; };

layout(push_constant) uniform P {
	uint T, rowOff, nq, nkv, d, stride, maxT, seq;
} p;

void main() {
	const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
	if (g >= p.T * p.nkv * p.d) return;
	const uint i = g % p.d, h = (g / p.d) % p.nkv, t = g / (p.d * p.nkv);
	const uint src = (p.rowOff + t) * p.stride + (p.nq + h) * p.d + i;
	const uint dst = ((p.seq * p.nkv + h) * p.maxT + uint(pos[p.rowOff]) + t) * p.d + i;
	kc[dst] = float16_t(x[src]);
	vc[dst] = float16_t(x[src + p.nkv * p.d]);
}
