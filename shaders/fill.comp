#version 450
// fill: n 32-bit words of pseudo-random bits, word = (hash(i, seed) & mask) | bits,
// so the caller picks the values' range (e.g. f16 pairs in ±[0.5, 1) with
// mask 0x83FF83FF, bits 0x38003800). Builds synthetic weights on the GPU.
#include "include/common.glsl"

layout(std430, binding = 0) writeonly buffer Y_ { uint y[]; };
layout(push_constant) uniform P { uint n, seed, mask, bits; } p;

uint hash(uint x) {
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

void main() {
	const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
	if (i < p.n) y[i] = (hash(i ^ hash(p.seed)) & p.mask) | p.bits;
}
