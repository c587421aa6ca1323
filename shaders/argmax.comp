#version 450
// argmax: for each row r of s [rows, n] (scores of codes base..base+n-1), keeps
// the best (value, index) seen so far in best [rows]: strictly greater wins, so
// the first index is kept on ties (a sequential argmax, as the reference's CPU path).
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer S_ { float s[]; };
layout(std430, binding = 1) buffer B_ { vec2 best[]; }; // (value, index as float bits)

layout(push_constant) uniform P { uint n, base, first; } p;

shared float bv[WG];
shared uint bi[WG];

void main() {
	const uint r = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
	float v = -1.0 / 0.0;
	uint idx = 0xFFFFFFFFu;
	for (uint j = tid; j < p.n; j += WG) {
		const float x = s[r * p.n + j];
		if (x > v) {
			v = x;
			idx = j;
		}
	}
	bv[tid] = v;
	bi[tid] = idx;
	barrier();
	if (tid == 0) {
		for (uint t = 1; t < WG; t++) {
			if (bv[t] > v || (bv[t] == v && bi[t] < idx)) {
				v = bv[t];
				idx = bi[t];
			}
		}
		const vec2 old = best[r];
		if (p.first != 0 || v > old.x) best[r] = vec2(v, uintBitsToFloat(p.base + idx));
	}
}
