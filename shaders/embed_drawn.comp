#version 450
// embed_drawn: the rows of a decode step that take the token the previous
// step drew on the GPU, so that the step can be submitted before the host has
// read that token. drawn is the previous step's TopK.Out (the survivors'
// count, then the drawn index j among the table's rows); for each row r set in
// the mask p.rows, x[r, :] = table[j, :]. The table holds the embedding rows
// of the ids a draw can pick, in host-visible memory: f32, or with p.bf16 two
// bf16 values a word. A failed draw (NaN scores: count 0xFFFFFFFF; nothing
// survived: 0) or an index past the table takes row 0: the host reads the same
// failure from the same Out and discards the step (lm.ErrDrawFailed).
// Workgroup y takes row y.
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer T_ { uint table[]; };
layout(std430, binding = 1) readonly buffer D_ { uint drawn[]; };
layout(std430, binding = 2) writeonly buffer X_ { float x[]; };

layout(push_constant) uniform P {
	uint H;    // row length
	uint rows; // bit r: row r takes the drawn token
	uint bf16; // the table is bf16
	uint n;    // the table's rows
} p;

void main() {
	const uint k = gl_GlobalInvocationID.x, r = gl_WorkGroupID.y;
	if (k >= p.H || (p.rows & (1u << r)) == 0) return;
	const uint cnt = drawn[0];
	uint j = drawn[1];
	if (cnt == 0 || cnt == 0xFFFFFFFFu || j >= p.n) j = 0;
	const uint e = j * p.H + k;
	float v;
	if (p.bf16 != 0) {
		const uint w = table[e >> 1];
		v = uintBitsToFloat((e & 1) != 0 ? w & 0xFFFF0000u : w << 16);
	} else {
		v = uintBitsToFloat(table[e]);
	}
	x[r * p.H + k] = v;
}
