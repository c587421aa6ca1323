#version 450
// quantize: weights W [rows, K] (f32 or bf16) to q8_0 or q4 (see weights.glsl),
// one workgroup per row, the same arithmetic as model/quant's CPU quantizers.
#include "include/common.glsl"

#if defined(IN_BF16)
layout(std430, binding = 0) readonly buffer X_ { uint16_t xs[]; };
float xin(uint i) { return bf16_to_f32(xs[i]); }
#else
layout(std430, binding = 0) readonly buffer X_ { float xs[]; };
float xin(uint i) { return xs[i]; }
#endif
layout(std430, binding = 1) writeonly buffer Q_ { uint q[]; };
#if defined(Q8_0)
layout(std430, binding = 2) writeonly buffer D_ { float16_t qd[]; };
#else
layout(std430, binding = 2) writeonly buffer SM_ { uint16_t qsm[]; };
layout(std430, binding = 3) writeonly buffer RD_ { vec2 qrd[]; };
#endif

#if defined(Q4)
// fit_block: the block's step s and min m (x ≈ s·u − m), exactly as
// model/quant.fitBlock: 21 candidate code sets, each refitted by least squares.
void block_range(uint o, out float lo, out float hi) {
	lo = 0.0;
	hi = -3.4e38;
	for (uint i = 0; i < 32; i++) {
		float v = xin(o + i);
		lo = min(lo, v);
		hi = max(hi, v);
	}
}
float codes_err(uint o, float s, float m, float is, float lo) {
	float e = 0.0;
	for (uint i = 0; i < 32; i++) {
		float v = xin(o + i);
		float l = clamp(round_away(is * (v - lo)), 0.0, 15.0);
		float d = s * l - m - v;
		e += d * d;
	}
	return e;
}
vec2 fit_block(uint o) {
	float lo, hi;
	block_range(o, lo, hi);
	if (hi <= lo) return vec2(0.0, -lo);
	float s = (hi - lo) / 15.0, m = -lo;
	float best = codes_err(o, s, m, 1.0 / s, lo);
	float sumx = 0.0;
	for (uint i = 0; i < 32; i++) sumx += xin(o + i);
	for (uint step = 0; step <= 20; step++) {
		const float is = (14.0 + 0.1 * float(step)) / (hi - lo);
		float sl = 0.0, sl2 = 0.0, sxl = 0.0;
		for (uint i = 0; i < 32; i++) {
			float v = xin(o + i);
			float l = clamp(round_away(is * (v - lo)), 0.0, 15.0);
			sl += l;
			sl2 += l * l;
			sxl += v * l;
		}
		const float det = 32.0 * sl2 - sl * sl;
		if (det <= 0.0) continue;
		float ts = (32.0 * sxl - sumx * sl) / det;
		float tm = (sl2 * sumx - sl * sxl) / det;
		if (tm > 0.0) {
			tm = 0.0;
			ts = sxl / sl2;
		}
		if (ts <= 0.0) continue;
		const float e = codes_err(o, ts, -tm, is, lo);
		if (e < best) {
			best = e;
			s = ts;
			m = -tm;
		}
	}
	return vec2(s, m);
}
#endif

layout(push_constant) uniform P { uint K; } p;

void main() {
	const uint row = gl_WorkGroupID.x, nb = p.K >> 5;
	const uint base = row * p.K;
#if defined(Q8_0)
	for (uint b = gl_LocalInvocationID.x; b < nb; b += WG) {
		float amax = 0.0;
		for (uint i = 0; i < 32; i++) amax = max(amax, abs(xin(base + b * 32 + i)));
		const float16_t d16 = float16_t(amax / 127.0);
		const float d = float(d16);
		const float id = d > 0.0 ? 1.0 / d : 0.0;
		for (uint w = 0; w < 8; w++) {
			uint word = 0;
			for (uint e = 0; e < 4; e++) {
				int v = clamp(int(round_away(xin(base + b * 32 + 4 * w + e) * id)), -127, 127);
				word |= uint(v & 255) << (8 * e);
			}
			q[(row * nb + b) * 8 + w] = word;
		}
		qd[row * nb + b] = d16;
	}
#else
	// Pass 1: the row's largest block scale and block min.
	float smax = 0.0, mmax = 0.0;
	for (uint b = gl_LocalInvocationID.x; b < nb; b += WG) {
		const vec2 sm = fit_block(base + b * 32);
		smax = max(smax, sm.x);
		mmax = max(mmax, sm.y);
	}
	const float d = wg_max(smax) / 255.0, dmin = wg_max(mmax) / 255.0;
	if (gl_LocalInvocationID.x == 0) qrd[row] = vec2(d, dmin);
	// Pass 2: 8-bit block scale/min relative to the row's, then 4-bit codes.
	for (uint b = gl_LocalInvocationID.x; b < nb; b += WG) {
		const vec2 bsm = fit_block(base + b * 32);
		const uint sc = d > 0.0 ? uint(clamp(round_away(bsm.x / d), 0.0, 255.0)) : 0u;
		const uint mn = dmin > 0.0 ? uint(clamp(round_away(bsm.y / dmin), 0.0, 255.0)) : 0u;
		const float s = d * float(sc), m = dmin * float(mn);
		const float is = s > 0.0 ? 1.0 / s : 0.0;
		for (uint w = 0; w < 4; w++) {
			uint word = 0;
			for (uint e = 0; e < 8; e++) {
				// element 8w+e: e<4 -> low nibble of byte e, else high nibble of byte e-4
				uint u = uint(clamp(round_away((xin(base + b * 32 + 8 * w + e) + m) * is), 0.0, 15.0));
				word |= u << (8 * (e & 3) + 4 * (e >> 2));
			}
			q[(row * nb + b) * 4 + w] = word;
		}
		qsm[row * nb + b] = uint16_t(sc | (mn << 8));
	}
#endif
}
