#version 450
// topk_compact: the survivors of topk_select's threshold th = sel[0] (the
// scores v ≥ th, v > −inf) in index order, over many workgroups. Workgroup g
// takes the tile of 8·WG scores from 8·WG·g, eight consecutive scores an
// invocation. COUNT: the tile's survivors into sel[2 + g]. Otherwise (after
// the counts): each workgroup writes its survivors from the sum of the counts
// before it, as out = count, indices [count], values [count] (from word 1 + n);
// workgroup 0 writes the count, or 0xFFFFFFFF when sel[1] says a score was
// NaN (then nothing is written: the host samples from the logits).
#include "include/common.glsl"
#include "include/scan.glsl"

layout(std430, binding = 0) readonly buffer SC_ { vec4 scores[]; }; // [ceil(n / 4)]
layout(std430, binding = 1) buffer SEL_ { uint sel[]; };           // th, NaN, counts [tiles]
layout(std430, binding = 2) writeonly buffer O_ { uint outw[]; };

layout(push_constant) uniform P { uint n; } p;

void main() {
	const uint tid = gl_LocalInvocationID.x, g = gl_WorkGroupID.x, n = p.n;
	if (sel[1] != 0) {
#ifndef COUNT
		if (g == 0 && tid == 0) outw[0] = 0xFFFFFFFFu;
#endif
		return;
	}
	const float th = uintBitsToFloat(sel[0]);
	const uint b = 2 * (g * WG + tid); // this invocation's first vec4
	vec4 v[2];
	[[unroll]] for (uint j = 0; j < 2; j++) v[j] = 4 * (b + j) < n ? scores[b + j] : vec4(0.0);
	uint mask = 0;
	[[unroll]] for (uint j = 0; j < 8; j++) {
		const float x = v[j / 4][j % 4];
		if (4 * b + j < n && !(x < th) && x > -1.0 / 0.0) mask |= 1u << j;
	}
	uint total;
	uint at = wg_scan(bitCount(mask), total);
#ifdef COUNT
	if (tid == 0) sel[2 + g] = total;
#else
	// The counts of the tiles before this one, and of all tiles (for workgroup 0).
	const uint tiles = gl_NumWorkGroups.x;
	uint before = 0, all = 0;
	for (uint h = tid; h < tiles; h += WG) {
		const uint c = sel[2 + h];
		before += h < g ? c : 0;
		all += c;
	}
	uint sum;
	wg_scan(before, sum);
	at += sum;
	wg_scan(all, sum);
	for (uint j = 0; j < 8; j++) {
		if ((mask & (1u << j)) != 0) {
			outw[1 + at] = 4 * b + j;
			outw[1 + n + at] = floatBitsToUint(v[j / 4][j % 4]);
			at++;
		}
	}
	if (g == 0 && tid == 0) outw[0] = sum;
#endif
}
