#version 450
// quantize_act: activations x [cols, K] (f32 or f16) to q8_1 blocks of 32:
// int8 codes, d = amax/127, and d*sum(codes) for the weights' min term.
// With SWIGLU the input is the fused gate|up output [cols, 2K] and the value
// quantized is silu(gate)·up (the fused form of swiglu.comp then this).
// Eight invocations per block, one 4-element word each; a workgroup of WG
// invocations covers WG/8 blocks, reducing through shared memory.
#include "include/common.glsl"

#if defined(A_F16)
layout(std430, binding = 0) readonly buffer X_ { float16_t x[]; };
#else
layout(std430, binding = 0) readonly buffer X_ { float x[]; };
#endif
layout(std430, binding = 1) writeonly buffer XQ_ { uint xq[]; };
layout(std430, binding = 2) writeonly buffer XD_ { vec2 xd[]; };

layout(push_constant) uniform P {
	uint K, cols;
	uint xstride; // elements between input columns
} p;

shared float q_sh[WG];

void main() {
	const uint nb = p.K >> 5;
	const uint tid = gl_LocalInvocationID.x, w = tid & 7u, lb = tid >> 3;
	const uint g = gl_WorkGroupID.x * (WG / 8) + lb; // global block
	const bool ok = g < nb * p.cols;
	const uint c = ok ? g / nb : 0, b = ok ? g % nb : 0;
	vec4 v = vec4(0.0);
#if defined(SWIGLU)
	const uint base = c * 2 * p.K + b * 32 + w * 4;
	if (ok) {
		const vec4 g = vec4(x[base], x[base + 1], x[base + 2], x[base + 3]);
		const vec4 u = vec4(x[base + p.K], x[base + p.K + 1], x[base + p.K + 2], x[base + p.K + 3]);
		v = g / (1.0 + exp(-g)) * u;
	}
#else
	const uint base = c * p.xstride + b * 32 + w * 4;
	if (ok) v = vec4(float(x[base]), float(x[base + 1]), float(x[base + 2]), float(x[base + 3]));
#endif
	q_sh[tid] = max(max(abs(v.x), abs(v.y)), max(abs(v.z), abs(v.w)));
	barrier();
	float amax = 0.0;
	for (uint i = 0; i < 8; i++) amax = max(amax, q_sh[lb * 8 + i]);
	const float d = amax / 127.0;
	const float id = d > 0.0 ? 1.0 / d : 0.0;
	const ivec4 q = ivec4(round_away(v.x * id), round_away(v.y * id), round_away(v.z * id), round_away(v.w * id));
	barrier();
	q_sh[tid] = float(q.x + q.y + q.z + q.w);
	barrier();
	if (!ok) return;
	xq[g * 8 + w] = pack_i8x4(q);
	if (w == 0) {
		float sum = 0.0;
		for (uint i = 0; i < 8; i++) sum += q_sh[lb * 8 + i];
		xd[g] = vec2(d, d * sum);
	}
}
