#version 450
// embed: y[t, :] = W[ids[t] - row0, :] for the ids in [row0, row0 + V), for a
// weight (or a chunk of rows of one) of any format; f32 out. Rows whose id falls
// outside the chunk are left untouched, so a table larger than one binding is
// gathered chunk by chunk. Ids are validated on the host.
#include "include/common.glsl"
#include "include/weights.glsl"

layout(std430, binding = WB + 0) readonly buffer I_ { int ids[]; };
layout(std430, binding = WB + 1) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P { uint T, D, V, row0; } p;

void main() {
	const uint g = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
	if (g >= p.T * p.D) return;
	const uint t = g / p.D, k = g % p.D;
	const int id = ids[t] - int(p.row0);
	if (id >= 0 && uint(id) < p.V) y[g] = wget(uint(id), k, p.D);
}
