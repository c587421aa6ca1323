#version 450
// coopmat_peak: the tensor cores' rate through VK_NV_cooperative_matrix, the
// yardstick of the tensor-core kernels as stream is of the memory-bound ones.
// Each subgroup multiplies MA × NB f16 fragment pairs into MA·NB f32
// accumulators p.iters times: 16·MA × 16·NF outputs a subgroup (MA 4 and NF 2,
// the GEMM tile's 64 × 32; NF 4; MA 8 and NF 1), as 16×16×16 products or (N8)
// 16×8×16 ones. MODE's bits pick what else an iteration does, so
// the GEMM tile's ceiling can be taken apart:
//   none: nothing: the fragments stay in registers (the multiplies alone);
//   1, 2: loads its X (1) or W (2) fragments from shared memory first, as
//      include/coopmat_tile.glsl's tile_mma does ([row][k], padded stride, the k
//      offset alternating as a 32-element K step's two halves);
//   4: the tile loop's two workgroup barriers every second iteration;
//   8: W's tile stored [k][n] (stride LDN) and its fragments loaded row-major,
//      instead of [n][k] loaded column-major;
//   16: two iterations' fragments (a K step's two slices) loaded before their
//      multiplies, as include/coopmat_tile.glsl's PAIRED (an even p.iters).
// Y gets every accumulator (MA·NB 16×TN f32 tiles a subgroup), so nothing is dead
// code. (glslc 2023.2 -O crashes on a sum of cooperative matrices.)
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#include "include/common.glsl"

layout(std430, binding = 0) writeonly buffer Y_ { float y[]; };
layout(push_constant) uniform P { uint iters; } p;

layout(constant_id = 1) const uint MODE = 0;
#ifndef NF
#define NF 2 // 16-column bands of W a subgroup (a #define: glslc 2023.2 crashes on coopmat arrays sized by a specialization constant)
#endif
#ifndef MA
#define MA 4 // X fragments (16-row bands) a subgroup
#endif

const uint NSG = WG / 32, BK = 32, LD = BK + 8;
const uint BM = 16 * MA * NSG / 4, BN = 64 * NF; // rows of X and W the subgroups read (four subgroups across W)
const uint LDN = BN + 8;                // W's stride stored [k][n]
shared uvec4 xs[BM * LD / 8];
shared uvec4 ws[BN * LD / 8]; // also holds BK × LDN

#ifdef N8
#define TN 8 // W fragments 16 (k) × 8 (n): the 16×8×16 shape
#else
#define TN 16
#endif
const uint NB = 16 * NF / TN; // W fragments a subgroup
#define FRAGA fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define FRAGB fcoopmatNV<16, gl_ScopeSubgroup, 16, TN>
#define FRAGC fcoopmatNV<32, gl_ScopeSubgroup, 16, TN>

// load_w loads the W fragment of rows n.. (TN) and k.. (16) as the B operand.
void load_w(out FRAGB b, uint n, uint k) {
	if ((MODE & 8) != 0) coopMatLoadNV(b, ws, (k * LDN + n) / 8, LDN / 8, false);
	else coopMatLoadNV(b, ws, (n * LD + k) / 8, LD / 8, true);
}

void main() {
	const uint tid = gl_LocalInvocationID.x, sg = gl_SubgroupID, wm = sg / 4, wn = sg % 4;
	// Small distinct halves, so the sums stay finite over many iterations.
	for (uint i = tid; i < BM * LD / 8; i += WG) xs[i] = uvec4(packHalf2x16(vec2(float(i % 7) * 1e-3, 1e-3)));
	for (uint i = tid; i < BN * LD / 8; i += WG) ws[i] = uvec4(packHalf2x16(vec2(float(i % 5) * 2e-3, 2e-3)));
	barrier();
	FRAGA a[MA];
	FRAGB b[NB];
	FRAGC acc[MA][NB];
	[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = FRAGC(0.0);
	[[unroll]] for (uint j = 0; j < NB; j++) load_w(b[j], wn * 16 * NF + j * TN, 0);
	[[unroll]] for (uint i = 0; i < MA; i++) coopMatLoadNV(a[i], xs, ((wm * 16 * MA + i * 16) * LD) / 8, LD / 8, false);
	const bool ld_x = (MODE & 1) != 0, ld_w = (MODE & 2) != 0, bar = (MODE & 4) != 0;
	if ((MODE & 16) != 0) {
		for (uint it = 0; it + 1 < p.iters; it += 2) {
			if (bar) barrier();
			FRAGA a1[MA];
			FRAGB b1[NB];
			[[unroll]] for (uint j = 0; j < NB; j++) {
				if (ld_w) {
					load_w(b[j], wn * 16 * NF + j * TN, 0);
					load_w(b1[j], wn * 16 * NF + j * TN, 16);
				} else {
					b1[j] = b[j];
				}
			}
			[[unroll]] for (uint i = 0; i < MA; i++) {
				if (ld_x) {
					coopMatLoadNV(a[i], xs, ((wm * 16 * MA + i * 16) * LD) / 8, LD / 8, false);
					coopMatLoadNV(a1[i], xs, ((wm * 16 * MA + i * 16) * LD + 16) / 8, LD / 8, false);
				} else {
					a1[i] = a[i];
				}
			}
			[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
			[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = coopMatMulAddNV(a1[i], b1[j], acc[i][j]);
			if (bar) barrier();
		}
	} else {
		for (uint it = 0; it < p.iters; it++) {
			const uint kk = (it & 1) * 16;
			if (bar && (it & 1) == 0) barrier();
			if (ld_w) [[unroll]] for (uint j = 0; j < NB; j++) load_w(b[j], wn * 16 * NF + j * TN, kk);
			if (ld_x) [[unroll]] for (uint i = 0; i < MA; i++) coopMatLoadNV(a[i], xs, ((wm * 16 * MA + i * 16) * LD + kk) / 8, LD / 8, false);
			[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
			if (bar && (it & 1) == 1) barrier();
		}
	}
	[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) coopMatStoreNV(acc[i][j], y, ((gl_WorkGroupID.x * NSG + sg) * MA * NB + i * NB + j) * 16 * TN, TN, false);
}
