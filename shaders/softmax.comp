#version 450
// softmax: in place over each row of x [R, N] after multiplying by scale;
// one workgroup per row.
#include "include/common.glsl"

layout(std430, binding = 0) buffer X_ { float x[]; };

layout(push_constant) uniform P {
	uint N;
	float scale;
} p;

void main() {
	const uint base = gl_WorkGroupID.x * p.N;
	float m = -3.4e38;
	for (uint i = gl_LocalInvocationID.x; i < p.N; i += WG) m = max(m, x[base + i] * p.scale);
	m = wg_max(m);
	float s = 0.0;
	for (uint i = gl_LocalInvocationID.x; i < p.N; i += WG) s += exp(x[base + i] * p.scale - m);
	const float inv = 1.0 / wg_sum(s);
	for (uint i = gl_LocalInvocationID.x; i < p.N; i += WG) x[base + i] = exp(x[base + i] * p.scale - m) * inv;
}
