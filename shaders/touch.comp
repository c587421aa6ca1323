#version 450
// touch: reads one word of every page (stride words apart, and the last word)
// of up to eight buffers and nothing else, so that the device caches
// their address translations before a kernel streams them. A decode step reads
// every page of the weights once (18 GB and more), far beyond what the
// translation caches hold, and a mat-vec that meets a page unseen waits for
// its translation; touching the next layer's weights while the current layer's
// attention runs takes those waits off the critical path. Workgroup y takes
// buffer y; the loaded words are combined into one conditional store so the
// loads stay. Invocation i of the x workgroups takes touch i (every
// invocation's load is in flight at once).
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer B0_ { uint b0[]; };
layout(std430, binding = 1) readonly buffer B1_ { uint b1[]; };
layout(std430, binding = 2) readonly buffer B2_ { uint b2[]; };
layout(std430, binding = 3) readonly buffer B3_ { uint b3[]; };
layout(std430, binding = 4) readonly buffer B4_ { uint b4[]; };
layout(std430, binding = 5) readonly buffer B5_ { uint b5[]; };
layout(std430, binding = 6) readonly buffer B6_ { uint b6[]; };
layout(std430, binding = 7) readonly buffer B7_ { uint b7[]; };
layout(std430, binding = 8) writeonly buffer Y_ { uint y[]; };

layout(push_constant) uniform P {
	uint stride; // words between touches
	uint n;      // buffers bound (the rest repeat the last of them)
} p;

#define TOUCH(B) { const uint len = uint(B.length()); for (uint w = tid * p.stride; w < len; w += gl_NumWorkGroups.x * WG * p.stride) acc ^= B[w]; if (tid == 0 && len > 0) acc ^= B[len - 1]; }

void main() {
	const uint tid = gl_GlobalInvocationID.x, j = gl_WorkGroupID.y;
	uint acc = 0;
	if (j >= p.n) return;
	switch (j) {
	case 0: TOUCH(b0) break;
	case 1: TOUCH(b1) break;
	case 2: TOUCH(b2) break;
	case 3: TOUCH(b3) break;
	case 4: TOUCH(b4) break;
	case 5: TOUCH(b5) break;
	case 6: TOUCH(b6) break;
	default: TOUCH(b7) break;
	}
	if (acc == 0x9E3779B9u && p.stride == 0) y[j] = acc; // never (stride > 0)
}
