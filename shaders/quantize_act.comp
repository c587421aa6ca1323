#version 450
// quantize_act: activations x [cols, K] (f32 or f16) to q8_1 blocks of 32:
// int8 codes, d = amax/127, and d*sum(codes) for the weights' min term.
// One invocation per block.
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

void main() {
	const uint nb = p.K >> 5;
	const uint g = gl_GlobalInvocationID.x;
	if (g >= nb * p.cols) return;
	const uint c = g / nb, b = g % nb;
	const uint base = c * p.xstride + b * 32;
	float v[32];
	float amax = 0.0;
	[[unroll]] for (uint i = 0; i < 32; i++) {
		v[i] = float(x[base + i]);
		amax = max(amax, abs(v[i]));
	}
	const float d = amax / 127.0;
	const float id = d > 0.0 ? 1.0 / d : 0.0;
	int sum = 0;
	[[unroll]] for (uint w = 0; w < 8; w++) {
		uint word = 0;
		[[unroll]] for (uint e = 0; e < 4; e++) {
			int q = int(round_away(v[4 * w + e] * id));
			sum += q;
			word |= uint(q & 255) << (8 * e);
		}
		xq[g * 8 + w] = word;
	}
	xd[g] = vec2(d, d * float(sum));
}
