#version 450
// rmsnorm_q8_1: rmsnorm.comp followed by quantize_act.comp in one pass, for the
// mat-vec steps of decoding: row r of x [rows, D] is normalised, scaled by w and
// written only as q8_1 blocks (int8 codes, (d, d·sum) per 32). With RESIDUAL the
// residual add before it is fused too: x += res (written back), then the norm.
//
// The row is spread over nw workgroups of WG quads (a decode step has only a
// row or two, and one workgroup a row left the device idle). q8_1 codes do not
// depend on a common factor of the block, so each workgroup quantizes x·w as it
// is and stores its share of the row's sum of squares. The last workgroup of
// the row to finish (an atomic counter in sync) sums the shares and multiplies
// the row's block scales by rsqrt(mean + eps), then resets the counter. A row's
// counter and shares lie where they do whatever the dispatch's row count, so
// passes of different row counts share one sync buffer.
#include "include/common.glsl"

layout(std430, binding = 0) buffer X_ { vec4 x[]; };
layout(std430, binding = 1) readonly buffer W_ { vec4 w[]; };
layout(std430, binding = 2) writeonly buffer XQ_ { uint xq[]; };  // a word per quad
layout(std430, binding = 3) coherent buffer XD_ { vec2 xd[]; };
layout(std430, binding = 4) coherent buffer S_ { uint sync[]; }; // [rows, 1 + nw]: a counter, then nw shares (float bits)
#if defined(RESIDUAL)
layout(std430, binding = 5) readonly buffer R_ { vec4 res[]; };
#endif

layout(push_constant) uniform P {
	uint D;
	float eps;
	uint nw;
} p;

shared float amax_sh[WG];
shared int sum_sh[WG];
shared bool last_sh;

uint pack4(ivec4 q) { return uint(q.x & 255) | uint(q.y & 255) << 8 | uint(q.z & 255) << 16 | uint(q.w & 255) << 24; }

void main() {
	const uint row = gl_WorkGroupID.y, part = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
	const uint nq = p.D / 4, qi = part * WG + tid; // this invocation's quad of the row
	const bool ok = qi < nq;
	vec4 v = vec4(0.0);
	if (ok) {
#if defined(RESIDUAL)
		v = x[row * nq + qi] + res[row * nq + qi];
		x[row * nq + qi] = v;
#else
		v = x[row * nq + qi];
#endif
	}
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
	if (ok) xq[row * nq + qi] = pack4(c);
	sum_sh[tid] = c.x + c.y + c.z + c.w;
	barrier();
	if (ok && tid == b0) {
		int s = 0;
		[[unroll]] for (uint i = 0; i < 8; i++) s += sum_sh[b0 + i];
		xd[row * (nq / 8) + qi / 8] = vec2(d, d * float(s));
	}
	const uint sb = row * (1 + p.nw); // this row's counter, then its shares
	if (tid == 0) sync[sb + 1 + part] = floatBitsToUint(ss);
	memoryBarrierBuffer();
	barrier();
	if (tid == 0) last_sh = atomicAdd(sync[sb], 1u) == p.nw - 1;
	barrier();
	if (!last_sh) return; // uniform: the other workgroups are done
	memoryBarrierBuffer();
	float t = 0.0;
	for (uint i = tid; i < p.nw; i += WG) t += uintBitsToFloat(sync[sb + 1 + i]);
	const float inv = inversesqrt(wg_sum(t) / float(p.D) + p.eps);
	for (uint b = tid; b < nq / 8; b += WG) xd[row * (nq / 8) + b] *= inv;
	if (tid == 0) sync[sb] = 0u;
}
