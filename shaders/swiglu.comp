#version 450
// swiglu: y[r, i] = silu(x[r, i]) · x[r, I + i] on the fused gate|up output
// x [rows, 2I]; y [rows, I]. Equals silu_mul on the two halves. With OUT_F16, y is
// f16 (the tensor-core GEMMs' input).
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer X_ { float x[]; };
#if defined(OUT_F16)
layout(std430, binding = 1) writeonly buffer Y_ { float16_t y[]; };
#define OUT(v) float16_t(v)
#else
layout(std430, binding = 1) writeonly buffer Y_ { float y[]; };
#define OUT(v) (v)
#endif

layout(push_constant) uniform P { uint n, I; } p;

void main() {
	const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
	if (g >= p.n) return;
	const uint r = g / p.I, i = g % p.I;
	const float a = x[r * 2 * p.I + i];
	y[g] = OUT(a / (1.0 + exp(-a)) * x[r * 2 * p.I + p.I + i]);
}
