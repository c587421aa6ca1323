// weights.glsl: read-only access to a weight matrix W [rows, K] of any format.
// Define exactly one of W_F32, W_F16, W_BF16, W_Q8_0, W_Q4 before including.
// WB is the number of bindings the weight takes (they start at 0).
//
// q8_0: qs  int8 [rows, K]      (binding 0, read as words)
//       d   f16  [rows, K/32]   (binding 1)           w = d * q
// q4:   qs  [rows, K/32] blocks of 16 bytes (binding 0). Word i of a block holds
//           elements 8i..8i+3 in its low nibbles and 8i+4..8i+7 in its high ones,
//           so (word & 0x0F0F0F0F) and ((word >> 4) & 0x0F0F0F0F) are 4 packed
//           bytes in element order, ready for a packed int8 dot product.
//       sm  u16  [rows, K/32]   (binding 1): low byte scale sc, high byte min mn
//       rd  vec2 [rows]         (binding 2): row scale d and row min scale dmin
//           w = (d*sc) * u - (dmin*mn),  u in 0..15
#if defined(W_F32)
#define WB 1
layout(std430, binding = 0) readonly buffer WS_ { float w_s[]; };
layout(std430, binding = 0) readonly buffer WV_ { vec4 w_v[]; };
float wget(uint row, uint k, uint K) { return w_s[row * K + k]; }
vec4 wget4(uint i4) { return w_v[i4]; }
#elif defined(W_F16)
#define WB 1
layout(std430, binding = 0) readonly buffer WS_ { float16_t w_s[]; };
layout(std430, binding = 0) readonly buffer WV_ { f16vec4 w_v[]; };
float wget(uint row, uint k, uint K) { return float(w_s[row * K + k]); }
vec4 wget4(uint i4) { return vec4(w_v[i4]); }
#elif defined(W_BF16)
#define WB 1
layout(std430, binding = 0) readonly buffer WS_ { uint16_t w_s[]; };
layout(std430, binding = 0) readonly buffer WV_ { uvec2 w_v[]; };
float wget(uint row, uint k, uint K) { return bf16_to_f32(w_s[row * K + k]); }
vec4 wget4(uint i4) {
	uvec2 u = w_v[i4];
	return vec4(uintBitsToFloat(u.x << 16), uintBitsToFloat(u.x & 0xFFFF0000u),
	            uintBitsToFloat(u.y << 16), uintBitsToFloat(u.y & 0xFFFF0000u));
}
#elif defined(W_Q8_0)
#define WB 2
#define W_BLOCKED
layout(std430, binding = 0) readonly buffer WQ_ { uint w_q[]; };
layout(std430, binding = 0) readonly buffer WQ4_ { uvec4 w_q4[]; };
layout(std430, binding = 1) readonly buffer WD_ { float16_t w_d[]; };
float wget(uint row, uint k, uint K) {
	uint i = row * K + k;
	int q = int(w_q[i >> 2] << (24 - 8 * (i & 3))) >> 24;
	return float(w_d[i >> 5]) * float(q);
}
// wget8 decodes elements 8p..8p+7 of block b (global block index).
void wget8(uint b, uint p, uint row, out float v[8]) {
	float d = float(w_d[b]);
	[[unroll]] for (uint j = 0; j < 2; j++) {
		uint wd = w_q[b * 8 + 2 * p + j];
		[[unroll]] for (uint e = 0; e < 4; e++) v[4 * j + e] = d * float(int(wd << (24 - 8 * e)) >> 24);
	}
}
#elif defined(W_Q4)
#define WB 3
#define W_BLOCKED
layout(std430, binding = 0) readonly buffer WQ_ { uint w_q[]; };
layout(std430, binding = 0) readonly buffer WQ4_ { uvec4 w_q4[]; };
layout(std430, binding = 1) readonly buffer WSM_ { uint16_t w_sm[]; };
layout(std430, binding = 2) readonly buffer WRD_ { vec2 w_rd[]; };
float wget(uint row, uint k, uint K) {
	uint b = row * (K >> 5) + (k >> 5), j = k & 31;
	uint wd = w_q[b * 4 + (j >> 3)];
	uint u = (wd >> (8 * (j & 3) + 4 * ((j >> 2) & 1))) & 15u;
	uint sm = uint(w_sm[b]);
	vec2 rd = w_rd[row];
	return rd.x * float(sm & 255u) * float(u) - rd.y * float(sm >> 8);
}
void wget8(uint b, uint p, uint row, out float v[8]) {
	uint sm = uint(w_sm[b]);
	vec2 rd = w_rd[row];
	float s = rd.x * float(sm & 255u), m = rd.y * float(sm >> 8);
	uint wd = w_q[b * 4 + p];
	[[unroll]] for (uint e = 0; e < 4; e++) {
		v[e] = s * float((wd >> (8 * e)) & 15u) - m;
		v[4 + e] = s * float((wd >> (8 * e + 4)) & 15u) - m;
	}
}
#else
#error "define a weight format"
#endif
