// wload8.glsl: wload8(i8, a, b) reads float weights [8·i8, 8·i8+8) of the
// flattened matrix (f32, f16 or bf16: include/weights.glsl first) in one or two
// 16-byte loads, for kernels whose invocations take 8 consecutive k at a time
// (matvec.comp, qkv_heads.comp).
#if defined(W_F32)
void wload8(uint i8, out vec4 a, out vec4 b) {
	a = w_v[2 * i8];
	b = w_v[2 * i8 + 1];
}
#elif defined(W_F16)
layout(std430, binding = 0) readonly buffer W8_ { uvec4 w_8[]; };
void wload8(uint i8, out vec4 a, out vec4 b) {
	const uvec4 u = w_8[i8];
	a = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
	b = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
}
#elif defined(W_BF16)
layout(std430, binding = 0) readonly buffer W8_ { uvec4 w_8[]; };
void wload8(uint i8, out vec4 a, out vec4 b) {
	const uvec4 u = w_8[i8];
	a = vec4(uintBitsToFloat(u.x << 16), uintBitsToFloat(u.x & 0xFFFF0000u), uintBitsToFloat(u.y << 16), uintBitsToFloat(u.y & 0xFFFF0000u));
	b = vec4(uintBitsToFloat(u.z << 16), uintBitsToFloat(u.z & 0xFFFF0000u), uintBitsToFloat(u.w << 16), uintBitsToFloat(u.w & 0xFFFF0000u));
}
#endif
