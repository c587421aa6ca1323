#version 450
// rope: rotate-half (GPT-NeoX) rotary embedding in place on x [T, H, D]:
// for i < D/2, angle = pos[t] * theta^(-2i/D);
// (x_i, x_{i+D/2}) <- (x_i cos - x_{i+D/2} sin, x_{i+D/2} cos + x_i sin).
#include "include/common.glsl"

layout(std430, binding = 0) buffer X_ { float x[]; };
layout(std430, binding = 1) readonly buffer Pos_ { int pos[]; };

layout(push_constant) uniform P {
	uint T, H, D;
	float theta;
} p;

void main() {
	const uint half_d = p.D / 2;
	const uint g = gl_GlobalInvocationID.x;
	if (g >= p.T * p.H * half_d) return;
	const uint i = g % half_d, th = g / half_d, t = th / p.H;
	const float inv_freq = 1.0 / pow(p.theta, float(2 * i) / float(p.D));
	const float ang = float(pos[t]) * inv_freq;
	const float c = cos(ang), s = sin(ang);
	const uint a = th * p.D + i, b = a + half_d;
	const float x1 = x[a], x2 = x[b];
	x[a] = x1 * c - x2 * s;
	x[b] = x2 * c + x1 * s;
}
