#version 450
// groupnorm: GroupNorm(G groups, eps, affine) over x [C, HW] (channel-major),
// optionally followed by swish, in three dispatches so large images still fill
// the GPU. STATS: workgroup (g, chunk) writes the chunk's mean and centred sum of
// squares, from one read of the chunk; FINAL: invocation g merges its group's
// chunks (Chan's formula) into (mean, 1/std) after the chunks; APPLY: each invocation normalises one element,
// or four (a vec4) when HW is a multiple of 4 (so are the chunks then: ops sizes
// them), as STATS then reads.
#include "include/common.glsl"

#if defined(FINAL)
layout(std430, binding = 0) buffer S_ { vec2 st[]; };        // [G, chunks + 1]
#else
layout(std430, binding = 0) readonly buffer X_ { float x[]; };
layout(std430, binding = 0) readonly buffer XV_ { vec4 xv[]; };
layout(std430, binding = 1) buffer S_ { vec2 st[]; };        // [G, chunks]: (mean, M2); then G × (mean, 1/std)
#endif
layout(std430, binding = 2) readonly buffer GA_ { float gamma[]; };
layout(std430, binding = 3) readonly buffer BE_ { float beta[]; };
layout(std430, binding = 4) writeonly buffer Y_ { float y[]; };
layout(std430, binding = 4) writeonly buffer YV_ { vec4 yv[]; };

layout(push_constant) uniform P {
	uint C, HW, G, chunk, chunks, swish;
	float eps;
} p;

#if defined(STATS)
// chunk_sums is this invocation's share of the sums of d = x - pivot and of d²
// over group elements c0..c1 (from base), read once. With the pivot one of the
// chunk's own elements, mean = pivot + Σd / n and M2 = Σd² - (Σd)² / n lose
// little to cancellation (relatively about ε·(pivot - mean)² / variance).
vec2 chunk_sums(uint base, uint c0, uint c1, float pivot) {
	vec2 s = vec2(0.0);
	if (p.HW % 4 == 0) { // vec4s: base, c0 and c1 are multiples of 4
		for (uint i = c0 / 4 + gl_LocalInvocationID.x; i < c1 / 4; i += WG) {
			const vec4 d = xv[base / 4 + i] - pivot;
			s += vec2(dot(d, vec4(1.0)), dot(d, d));
		}
	} else {
		for (uint i = c0 + gl_LocalInvocationID.x; i < c1; i += WG) {
			const float d = x[base + i] - pivot;
			s += vec2(d, d * d);
		}
	}
	return s;
}
#endif

void main() {
	const uint per = (p.C / p.G) * p.HW; // elements of a group (contiguous)
#if defined(STATS)
	const uint g = gl_WorkGroupID.y, c0 = gl_WorkGroupID.x * p.chunk, c1 = min(c0 + p.chunk, per);
	const uint base = g * per;
	const float pivot = x[base + c0], n = float(c1 - c0);
	const vec2 s = chunk_sums(base, c0, c1, pivot);
	const float s1 = wg_sum(s.x), s2 = wg_sum(s.y);
	if (gl_LocalInvocationID.x == 0) st[g * p.chunks + gl_WorkGroupID.x] = vec2(pivot + s1 / n, max(s2 - s1 * s1 / n, 0.0));
#elif defined(FINAL)
	const uint g = gl_GlobalInvocationID.x;
	if (g >= p.G) return;
	float mean = 0.0, m2 = 0.0, cnt = 0.0;
	for (uint k = 0; k < p.chunks; k++) {
		const float nk = float(min(p.chunk, per - k * p.chunk));
		const vec2 v = st[g * p.chunks + k];
		const float tot = cnt + nk, d = v.x - mean;
		mean += d * nk / tot;
		m2 += v.y + d * d * cnt * nk / tot;
		cnt = tot;
	}
	st[p.G * p.chunks + g] = vec2(mean, inversesqrt(m2 / cnt + p.eps));
#else
	const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
	const uint e = p.HW % 4 == 0 ? 4 * i : i; // first element
	if (e >= p.C * p.HW) return;
	const uint g = e / per, c = e / p.HW;
	const vec2 ms = st[p.G * p.chunks + g];
	const float a = ms.y * gamma[c], b = beta[c] - ms.x * a;
	if (p.HW % 4 == 0) {
		vec4 v = xv[i] * a + b;
		if (p.swish != 0) v = v / (1.0 + exp(-v));
		yv[i] = v;
	} else {
		float v = x[i] * a + b;
		if (p.swish != 0) v = v / (1.0 + exp(-v));
		y[i] = v;
	}
#endif
}
