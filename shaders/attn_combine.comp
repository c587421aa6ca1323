#version 450
// attn_combine: merges the splits of attention.comp: with m = max over splits,
// out = Σ O_s·exp(M_s − m) / Σ L_s·exp(M_s − m), written to attn rows
// rowOff..rowOff+T-1 ([rows, nq·d]).
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer O_ { float opart[]; };
layout(std430, binding = 1) readonly buffer ML_ { vec2 ml[]; };
layout(std430, binding = 2) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P { uint T, nq, d, splits, rowOff; } p;

void main() {
	const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
	const uint n = p.T * p.nq * p.d;
	if (g >= n) return;
	const uint row = g / p.d; // t * nq + h
	float m = -1.0 / 0.0;
	for (uint s = 0; s < p.splits; s++) m = max(m, ml[s * p.T * p.nq + row].x);
	float l = 0.0, o = 0.0;
	for (uint s = 0; s < p.splits; s++) {
		const vec2 v = ml[s * p.T * p.nq + row];
		const float w = v.x > -1.0 / 0.0 ? exp(v.x - m) : 0.0;
		l += v.y * w;
		o += opart[s * n + g] * w;
	}
	y[p.rowOff * p.nq * p.d + g] = l > 0.0 ? o / l : 0.0;
}
