#version 450
// rmsnorm_q8_1: rmsnorm.comp followed by quantize_act.comp in one pass, for the
// mat-vec steps of decoding: row r of x [rows, D] is normalised, scaled by w and
// written only as q8_1 blocks (int8 codes, (d, d·sum) per 32). With RESIDUAL the
// residual add before it is fused too: x += res (written back), then the norm.
// One workgroup per row and three barriers: each invocation holds QPT quads of
// the row in registers for the sum of squares, the scaled row goes through
// shared memory, and then each invocation quantizes whole blocks.
#include "include/common.glsl"

layout(constant_id = 1) const uint QPT = 5; // quads per invocation: ≥ D / (4·WG)

layout(std430, binding = 0) buffer X_ { vec4 x[]; };
layout(std430, binding = 1) readonly buffer W_ { vec4 w[]; };
layout(std430, binding = 2) writeonly buffer XQ_ { uvec4 xq[]; }; // 2 a block
layout(std430, binding = 3) writeonly buffer XD_ { vec2 xd[]; };
#if defined(RESIDUAL)
layout(std430, binding = 4) readonly buffer R_ { vec4 res[]; };
#endif

layout(push_constant) uniform P {
	uint D;
	float eps;
} p;

shared vec4 row_sh[QPT * WG];

uint pack4(ivec4 q) { return uint(q.x & 255) | uint(q.y & 255) << 8 | uint(q.z & 255) << 16 | uint(q.w & 255) << 24; }

void main() {
	const uint row = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
	const uint nq = p.D / 4, base = row * nq;
	vec4 v[QPT];
	float ss = 0.0;
	[[unroll]] for (uint i = 0; i < QPT; i++) {
		const uint q = tid + i * WG;
		v[i] = vec4(0.0);
		if (q < nq) {
#if defined(RESIDUAL)
			v[i] = x[base + q] + res[base + q];
			x[base + q] = v[i];
#else
			v[i] = x[base + q];
#endif
		}
		ss += dot(v[i], v[i]);
	}
	const float inv = inversesqrt(wg_sum(ss) / float(p.D) + p.eps);
	[[unroll]] for (uint i = 0; i < QPT; i++) {
		const uint q = tid + i * WG;
		if (q < nq) row_sh[q] = v[i] * inv * w[q];
	}
	barrier();
	for (uint b = tid; b < nq / 8; b += WG) {
		vec4 e[8];
		float amax = 0.0;
		[[unroll]] for (uint j = 0; j < 8; j++) {
			e[j] = row_sh[8 * b + j];
			const vec4 a = abs(e[j]);
			amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
		}
		const float d = amax / 127.0;
		const float id = d > 0.0 ? 1.0 / d : 0.0;
		uint words[8];
		int sum = 0;
		[[unroll]] for (uint j = 0; j < 8; j++) {
			const ivec4 c = ivec4(round_away(e[j].x * id), round_away(e[j].y * id), round_away(e[j].z * id), round_away(e[j].w * id));
			words[j] = pack4(c);
			sum += c.x + c.y + c.z + c.w;
		}
		const uint g = row * (nq / 8) + b;
		xq[2 * g] = uvec4(words[0], words[1], words[2], words[3]);
		xq[2 * g + 1] = uvec4(words[4], words[5], words[6], words[7]);
		xd[g] = vec2(d, d * float(sum));
	}
}
