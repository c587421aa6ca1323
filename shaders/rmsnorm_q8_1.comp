#version 450
// rmsnorm_q8_1: rmsnorm.comp followed by quantize_act.comp in one pass, for the
// mat-vec steps of decoding: row r of x [rows, D] is normalised, scaled by w and
// written only as q8_1 blocks (int8 codes, (d, d·sum) per 32). With RESIDUAL the
// residual add before it is fused too: x += res (written back), then the norm.
// One workgroup per row; eight invocations share a block, one 4-value word each.
#include "include/common.glsl"

layout(std430, binding = 0) buffer X_ { float x[]; };
layout(std430, binding = 1) readonly buffer W_ { float w[]; };
layout(std430, binding = 2) writeonly buffer XQ_ { uint xq[]; };
layout(std430, binding = 3) writeonly buffer XD_ { vec2 xd[]; };
#if defined(RESIDUAL)
layout(std430, binding = 4) readonly buffer R_ { float res[]; };
float xin(uint i) { return x[i] + res[i]; } // the first pass only reads; the second writes its own elements
#else
float xin(uint i) { return x[i]; }
#endif

layout(push_constant) uniform P {
	uint D;
	float eps;
} p;

shared float q_sh[WG];

void main() {
	const uint row = gl_WorkGroupID.x, base = row * p.D, tid = gl_LocalInvocationID.x;
	float ss = 0.0;
	for (uint i = tid; i < p.D; i += WG) {
		const float v = xin(base + i);
		ss += v * v;
	}
	const float inv = inversesqrt(wg_sum(ss) / float(p.D) + p.eps);
	const uint nb = p.D >> 5, lb = tid >> 3, wd = tid & 7u;
	for (uint b0 = 0; b0 < nb; b0 += WG / 8) { // uniform loop: every invocation reaches the barriers
		const uint b = b0 + lb;
		const bool ok = b < nb;
		const uint e = b * 32 + wd * 4;
		vec4 v = vec4(0.0);
		if (ok) {
			const vec4 xv = vec4(xin(base + e), xin(base + e + 1), xin(base + e + 2), xin(base + e + 3));
#if defined(RESIDUAL)
			x[base + e] = xv.x;
			x[base + e + 1] = xv.y;
			x[base + e + 2] = xv.z;
			x[base + e + 3] = xv.w;
#endif
			v = xv * inv * vec4(w[e], w[e + 1], w[e + 2], w[e + 3]);
		}
		q_sh[tid] = max(max(abs(v.x), abs(v.y)), max(abs(v.z), abs(v.w)));
		barrier();
		float amax = 0.0;
		for (uint i = 0; i < 8; i++) amax = max(amax, q_sh[lb * 8 + i]);
		const float d = amax / 127.0;
		const float id = d > 0.0 ? 1.0 / d : 0.0;
		const ivec4 q = ivec4(round_away(v.x * id), round_away(v.y * id), round_away(v.z * id), round_away(v.w * id));
		barrier();
		q_sh[tid] = float(q.x + q.y + q.z + q.w);
		barrier();
		if (ok) {
			const uint g = row * nb + b;
			xq[g * 8 + wd] = uint(q.x & 255) | uint(q.y & 255) << 8 | uint(q.z & 255) << 16 | uint(q.w & 255) << 24;
			if (wd == 0) {
				float sum = 0.0;
				for (uint i = 0; i < 8; i++) sum += q_sh[lb * 8 + i];
				xd[g] = vec2(d, d * sum);
			}
		}
		barrier();
	}
}
