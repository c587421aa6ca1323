// common.glsl: extensions, the workgroup size (specialization constant 0) and
// reductions shared by every emu35 kernel. Subgroup sizes differ (8 on lavapipe,
// 32 on NVIDIA): nothing here assumes one.
#extension GL_EXT_shader_explicit_arithmetic_types : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_ballot : enable
#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
#define WG gl_WorkGroupSize.x

float bf16_to_f32(uint16_t b) { return uintBitsToFloat(uint(b) << 16); }
// f16x4 packs four floats as f16 pairs (a tensor-core tile's staged form).
uvec2 f16x4(vec4 v) { return uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw)); }

// Workgroup-wide sum and max; every invocation must call them (they barrier).
shared float red_sh[64];
float wg_sum(float v) {
	v = subgroupAdd(v);
	if (gl_NumSubgroups == 1) return v;
	barrier();
	if (subgroupElect()) red_sh[gl_SubgroupID] = v;
	barrier();
	float s = 0.0;
	for (uint i = 0; i < gl_NumSubgroups; i++) s += red_sh[i];
	barrier();
	return s;
}
float wg_max(float v) {
	v = subgroupMax(v);
	if (gl_NumSubgroups == 1) return v;
	barrier();
	if (subgroupElect()) red_sh[gl_SubgroupID] = v;
	barrier();
	float s = red_sh[0];
	for (uint i = 1; i < gl_NumSubgroups; i++) s = max(s, red_sh[i]);
	barrier();
	return s;
}

// round_away rounds halves away from zero on every driver (GLSL round() leaves
// ties to the implementation); model/quant rounds the same way.
float round_away(float x) { return sign(x) * floor(abs(x) + 0.5); }

// pack_i8x4 packs four int8 codes into a word, the first in the low byte.
uint pack_i8x4(ivec4 c) { return uint(c.x & 255) | uint(c.y & 255) << 8 | uint(c.z & 255) << 16 | uint(c.w & 255) << 24; }

// q8_word is v's four values rounded (halves away from zero) to int8 codes, packed.
uint q8_word(vec4 v) { return pack_i8x4(ivec4(round_away(v.x), round_away(v.y), round_away(v.z), round_away(v.w))); }
