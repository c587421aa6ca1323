// radix.glsl: floats as uint keys of the same order (model/gen's radixKey):
// negative floats inverted, positive ones with the top bit set.
uint radix_key(float v) {
	const uint u = floatBitsToUint(v);
	return u ^ (uint(int(u) >> 31) | 0x80000000u);
}
float radix_value(uint k) { return uintBitsToFloat((k & 0x80000000u) != 0 ? k ^ 0x80000000u : ~k); }
