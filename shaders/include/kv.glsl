// kv.glsl: read access to a layer's KV cache for the attention kernels, as
// f16 (default) or, with KV_Q8, int8 codes with one f32 scale per cached
// vector (value = code · scale; written by kv_store's KV_Q8 form). Vector v is
// (seq·nkv + head)·maxT + position, of D values.
//   kload(v, e): values 8e..8e+7 of K vector v as four packed f16 pairs
//   vload(v, c): value c of V vector v
//   vraw(v, q) / vcodes(r) / vscl(v): values 4q..4q+3 of V vector v in parts, so
//     a kernel can issue the load early and decode later: vcodes(vraw(v, q)) · vscl(v)
//   vraw8(v, e): values 8e..8e+7 of V vector v as stored (the f16 cache only)
#ifdef KV_Q8
layout(std430, binding = 1) readonly buffer K_ { uvec2 kc[]; };  // int8 codes, 8 a word pair
layout(std430, binding = 1) readonly buffer K16_ { uvec4 kc16[]; }; // int8 codes, 16 a uvec4
layout(std430, binding = 2) readonly buffer V_ { uint vc[]; };   // int8 codes, 4 a word
layout(std430, binding = 6) readonly buffer KS_ { float kscale[]; };
layout(std430, binding = 7) readonly buffer VS_ { float vscale[]; };
vec4 codes4(uint w) {
	return vec4(bitfieldExtract(int(w), 0, 8), bitfieldExtract(int(w), 8, 8), bitfieldExtract(int(w), 16, 8), bitfieldExtract(int(w), 24, 8));
}
uvec4 kload(uint v, uint e, uint D) {
	const uvec2 w = kc[(v * D) / 8 + e];
	const float s = kscale[v];
	return uvec4(f16x4(codes4(w.x) * s), f16x4(codes4(w.y) * s));
}
// kraw(v, e) / kraw16(v, e) / kscl(v): K's codes 8e..8e+7 (16e..16e+15) and
// scale, for integer dot products.
uvec2 kraw(uint v, uint e, uint D) { return kc[(v * D) / 8 + e]; }
uvec4 kraw16(uint v, uint e, uint D) { return kc16[(v * D) / 16 + e]; }
float kscl(uint v) { return kscale[v]; }
float vload(uint v, uint c, uint D) {
	const uint i = v * D + c;
	return float(bitfieldExtract(int(vc[i / 4]), int(8 * (i % 4)), 8)) * vscale[v];
}
#define VRAW uint
#define VRAW0 0u
VRAW vraw(uint v, uint q, uint D) { return vc[(v * D) / 4 + q]; }
vec4 vcodes(VRAW r) { return codes4(r); }
float vscl(uint v) { return vscale[v]; }
#else
layout(std430, binding = 1) readonly buffer K_ { uvec4 kc[]; };       // f16, 8 a uvec4
layout(std430, binding = 2) readonly buffer V_ { uvec2 vc[]; };      // f16, 4 a uvec2
layout(std430, binding = 2) readonly buffer V8_ { uvec4 vc8[]; };    // f16, 8 a uvec4
uvec4 vraw8(uint v, uint e, uint D) { return vc8[(v * D) / 8 + e]; } // values 8e..8e+7
uvec4 kload(uint v, uint e, uint D) { return kc[(v * D) / 8 + e]; }
#define VRAW uvec2
#define VRAW0 uvec2(0)
VRAW vraw(uint v, uint q, uint D) { return vc[(v * D) / 4 + q]; }
vec4 vcodes(VRAW r) { return vec4(unpackHalf2x16(r.x), unpackHalf2x16(r.y)); }
float vload(uint v, uint c, uint D) { return vcodes(vraw(v, c / 4, D))[c % 4]; }
float vscl(uint v) { return 1.0; }
#endif
