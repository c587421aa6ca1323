// wload8.glsl: wload8(i8, a, b) reads float weights [8·i8, 8·i8+8) of the
// flattened matrix (f32, f16 or bf16: include/weights.glsl first) in one or two
// 16-byte loads, for kernels whose invocations take 8 consecutive k at a time
// (matvec.comp, qkv_heads.comp); in two parts, wraw8(i8) loads them as stored
// (WRAW) and wdec8 converts them, so a kernel can hold its next loads in
// flight.
#if defined(W_F32)
#define WRAW mat2x4
WRAW wraw8(uint i8) { return mat2x4(w_v[2 * i8], w_v[2 * i8 + 1]); }
void wdec8(WRAW u, out vec4 a, out vec4 b) {
	a = u[0];
	b = u[1];
}
#elif defined(W_F16)
layout(std430, binding = 0) readonly buffer W8_ { uvec4 w_8[]; };
#define WRAW uvec4
WRAW wraw8(uint i8) { return w_8[i8]; }
void wdec8(uvec4 u, out vec4 a, out vec4 b) {
	a = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
	b = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
}
#elif defined(W_BF16)
layout(std430, binding = 0) readonly buffer W8_ { uvec4 w_8[]; };
#define WRAW uvec4
WRAW wraw8(uint i8) { return w_8[i8]; }
void wdec8(uvec4 u, out vec4 a, out vec4 b) {
	a = vec4(uintBitsToFloat(u.x << 16), uintBitsToFloat(u.x & 0xFFFF0000u), uintBitsToFloat(u.y << 16), uintBitsToFloat(u.y & 0xFFFF0000u));
	b = vec4(uintBitsToFloat(u.z << 16), uintBitsToFloat(u.z & 0xFFFF0000u), uintBitsToFloat(u.w << 16), uintBitsToFloat(u.w & 0xFFFF0000u));
}
#endif
void wload8(uint i8, out vec4 a, out vec4 b) { wdec8(wraw8(i8), a, b); }
