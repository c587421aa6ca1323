#version 450
// eltwise: y = a + b (ADD) or y = silu(a) * b (SILU_MUL, SwiGLU), n elements.
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer A_ { float a[]; };
layout(std430, binding = 1) readonly buffer B_ { float b[]; };
layout(std430, binding = 2) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P { uint n; } p;

void main() {
	const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
	if (i >= p.n) return;
#if defined(OP_ADD)
	y[i] = a[i] + b[i];
#elif defined(OP_SILU_MUL)
	const float g = a[i];
	y[i] = g / (1.0 + exp(-g)) * b[i];
#endif
}
