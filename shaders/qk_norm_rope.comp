#version 450
// qk_norm_rope: in place on the fused projection output qkv [rows, (nq+2nkv)·d]:
// every q head (q_norm weight) and k head (k_norm weight) is RMS-normalised over
// its d values, then rotated by rotate-half RoPE at pos[row]. Fuses rmsnorm.comp
// (rows of d) followed by rope.comp, and is tested against that pair on the CPU.
// One workgroup of d/2 invocations per (head, row): invocation i owns the
// rotation pair (i, i + d/2).
#include "include/common.glsl"

layout(std430, binding = 0) buffer X_ { float x[]; };
layout(std430, binding = 1) readonly buffer QN_ { float qn[]; };
layout(std430, binding = 2) readonly buffer KN_ { float kn[]; };
layout(std430, binding = 3) readonly buffer Pos_ { int pos[]; };

layout(push_constant) uniform P {
	uint nq, d, stride;
	float eps, theta;
} p;

void main() {
	const uint head = gl_WorkGroupID.x, row = gl_WorkGroupID.y, i = gl_LocalInvocationID.x;
	const uint half_d = p.d / 2;
	const uint a = row * p.stride + head * p.d + i, b = a + half_d;
	const float x1 = x[a], x2 = x[b];
	const float inv = inversesqrt(wg_sum(x1 * x1 + x2 * x2) / float(p.d) + p.eps);
	const bool isq = head < p.nq;
	const float y1 = x1 * inv * (isq ? qn[i] : kn[i]);
	const float y2 = x2 * inv * (isq ? qn[i + half_d] : kn[i + half_d]);
	const float ang = float(pos[row]) / pow(p.theta, float(2 * i) / float(p.d));
	const float c = cos(ang), s = sin(ang);
	x[a] = y1 * c - y2 * s;
	x[b] = y2 * c + y1 * s;
}
