#version 450
// rmsnorm_q8_1: rmsnorm.comp followed by quantize_act.comp in one pass, for the
// mat-vec steps of decoding: row r of x [rows, D] is normalised, scaled by w and
// written only as q8_1 blocks (int8 codes, (d, d·sum) per 32). (The residual add
// before it is the mat-vec's: matvec_q.comp with ADD_Y.)
//
// The row is spread over nw workgroups of WG quads (a decode step has only a
// row or two, and one workgroup a row left the device idle). q8_1 codes do not
// depend on a common factor of the block, so each workgroup quantizes x·w as it
// is and stores its share of the row's sum of squares in shares[row, part]; the
// mat-vec that reads the blocks (matvec_q.comp with INV_RMS) sums a column's
// shares and multiplies its results by rsqrt(mean + eps). No workgroup waits
// for another: the row's last workgroup rescaling the block scales cost a
// decode step 0.28 ms (64 layers, two norms each) on the H100.
#include "include/common.glsl"

layout(std430, binding = 0) readonly buffer X_ { vec4 x[]; };
layout(std430, binding = 1) readonly buffer W_ { vec4 w[]; };
layout(std430, binding = 2) writeonly buffer XQ_ { uint xq[]; };  // a word per quad
layout(std430, binding = 3) writeonly buffer XD_ { vec2 xd[]; };
layout(std430, binding = 4) writeonly buffer S_ { float shares[]; }; // [rows, nw]

layout(push_constant) uniform P {
	uint D;
	float eps;
	uint nw;
} p;

shared float amax_sh[WG];
shared int sum_sh[WG];

void main() {
	const uint row = gl_WorkGroupID.y, part = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
	const uint nq = p.D / 4, qi = part * WG + tid; // this invocation's quad of the row
	const bool ok = qi < nq;
	const vec4 v = ok ? x[row * nq + qi] : vec4(0.0);
	const float ss = wg_sum(dot(v, v));
	const vec4 e = ok ? v * w[qi] : vec4(0.0);
	const vec4 a = abs(e);
	amax_sh[tid] = max(max(a.x, a.y), max(a.z, a.w));
	barrier();
	const uint b0 = tid & ~7u; // the 8 quads of this block (WG is a multiple of 8; blocks start at quads 8k)
	float bmax = 0.0;
	[[unroll]] for (uint i = 0; i < 8; i++) bmax = max(bmax, amax_sh[b0 + i]);
	const float d = bmax / 127.0;
	const float id = d > 0.0 ? 1.0 / d : 0.0;
	const ivec4 c = ivec4(round_away(e.x * id), round_away(e.y * id), round_away(e.z * id), round_away(e.w * id));
	if (ok) xq[row * nq + qi] = pack_i8x4(c);
	sum_sh[tid] = c.x + c.y + c.z + c.w;
	barrier();
	if (ok && tid == b0) {
		int s = 0;
		[[unroll]] for (uint i = 0; i < 8; i++) s += sum_sh[b0 + i];
		xd[row * (nq / 8) + qi / 8] = vec2(d, d * float(s));
	}
	if (tid == 0) shares[row * p.nw + part] = ss;
}
