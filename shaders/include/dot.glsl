// dot.glsl: packed 4×int8 dot product (OpSDot). Debian's glslang lacks
// GL_EXT_integer_dot_product, so the instruction is declared through
// GL_EXT_spirv_intrinsics; it runs on lavapipe and is accelerated on NVIDIA.
#extension GL_EXT_spirv_intrinsics : require
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4(uint a, uint b, spirv_literal uint fmt);
#define DOT4(a, b) sdot4((a), (b), 0)
