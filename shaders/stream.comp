#version 450
// stream: reads n 16-byte vectors once (each invocation strides by the grid) and
// writes one word per workgroup so the reads cannot be optimised away. Its time
// is the device's streaming-read bandwidth, the yardstick for memory-bound kernels.
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer X_ { uvec4 x[]; };
layout(std430, binding = 1) writeonly buffer Y_ { uint y[]; };
layout(push_constant) uniform P { uint n; } p;

void main() {
	const uint stride = gl_NumWorkGroups.x * WG;
	uvec4 acc = uvec4(0);
	for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) acc ^= x[i];
	uint v = subgroupXor(acc.x ^ acc.y ^ acc.z ^ acc.w);
	if (subgroupElect()) y[gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID] = v;
}
