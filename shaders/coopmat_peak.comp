#version 450
// coopmat_peak: the tensor cores' rate through VK_NV_cooperative_matrix, the
// yardstick of the tensor-core kernels as stream is of the memory-bound ones.
// Each subgroup multiplies MA × NB fragment pairs into MA·NB accumulators
// p.iters times: 16·MA × 16·NF outputs a subgroup (MA 4 and NF 2, the GEMM
// tile's 64 × 32; NF 4; MA 8 and NF 1), as f16 16×16×16 products into f32,
// (N8) f16 16×8×16 ones, or (I8) int8 16×16×32 ones into int32. MODE's bits
// pick what else an iteration does, so the GEMM tile's ceiling can be taken
// apart:
//   none: nothing: the fragments stay in registers (the multiplies alone);
//   1, 2: loads its X (1) or W (2) fragments from shared memory first, as
//      include/coopmat_tile.glsl's tile_step does ([row][k] rows of 64 bytes
//      padded to 80, the k offset alternating between a K step's two slices);
//   4: the tile loop's two workgroup barriers every second iteration;
//   8: W's tile stored [k][n] (stride LDN) and its fragments loaded row-major,
//      instead of [n][k] loaded column-major (f16 only);
//   16: two iterations' fragments (a K step's two slices) loaded before their
//      multiplies (an even p.iters);
//   32: W's fragments loaded from device memory (wglob, as ws holds the tile:
//      the cache's copy) instead of shared memory;
//   64: the barriers of mode 4 order shared memory only (controlBarrier with
//      shared storage semantics) instead of GLSL's barrier();
//   128: W's fragments of the next iteration loaded before this one's
//      multiplies (across the barriers), not before its own;
//   256: (f16 16×16×16 only) the fragments of modes 1 and 2 held in shared
//      memory in fragment order, each invocation's eight halves of a fragment
//      in one 16-byte word, loaded with one read and set element by element
//      instead of coopMatLoadNV: the tiles are filled in the element order
//      frag_rc gives, so results show whether the driver's is that one;
//   512: every second iteration also loads 16 bytes an invocation from device
//      memory (wglob, coalesced, wrapping around its length: 32 MiB), whose
//      value the next such iteration consumes, as a GEMM's loads of its next
//      K step are in flight during its multiplies (not with 16 or 128): at
//      the iteration's start, or (1024) after its fragments are loaded, or
//      (2048) after its multiplies.
// Y gets every accumulator (MA·NB 16×TN tiles a subgroup), so nothing is dead
// code. (glslc 2023.2 -O crashes on a sum of cooperative matrices.)
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#ifdef I8
#extension GL_NV_integer_cooperative_matrix : require
#endif
#include "include/common.glsl"

layout(std430, binding = 0) writeonly buffer Y_ { float y[]; };
layout(std430, binding = 0) writeonly buffer YI_ { int yi[]; };
layout(std430, binding = 1) readonly buffer WG_ { uvec4 wglob[]; }; // mode 32: W's tile in device memory, as ws holds it
layout(push_constant) uniform P { uint iters; } p;

layout(constant_id = 1) const uint MODE = 0;
#ifndef NF
#define NF 2 // 16-column bands of W a subgroup (a #define: glslc 2023.2 crashes on coopmat arrays sized by a specialization constant)
#endif
#ifndef MA
#define MA 4 // X fragments (16-row bands) a subgroup
#endif
#ifdef N8
#define TN 8 // W fragments of 8 columns: the 16×8×16 shape
#else
#define TN 16
#endif
#ifdef I8
#define KP 32 // k a product
#define FRAGA icoopmatNV<8, gl_ScopeSubgroup, 16, KP>
#define FRAGB icoopmatNV<8, gl_ScopeSubgroup, KP, TN>
#define FRAGC icoopmatNV<32, gl_ScopeSubgroup, 16, TN>
#else
#define KP 16
#define FRAGA fcoopmatNV<16, gl_ScopeSubgroup, 16, KP>
#define FRAGB fcoopmatNV<16, gl_ScopeSubgroup, KP, TN>
#define FRAGC fcoopmatNV<32, gl_ScopeSubgroup, 16, TN>
#endif
const uint NB = 16 * NF / TN; // W fragments a subgroup

// Shared rows are 64 bytes of k (two products' slices of 32 bytes) padded to
// 80: RS 16-byte words apart; offsets below are in those words.
const uint NSG = WG / 32, RS = 5, SLICE = 2;
const uint BM = 16 * MA * NSG / 4, BN = 64 * NF; // rows of X and W the subgroups read (four subgroups across W)
const uint LDN = (BN + 8) / 8;                  // W's row stride stored [k][n] (f16), in words
shared uvec4 xs[BM * RS];
shared uvec4 ws[BN * RS]; // also holds KP·2 × LDN

// frag_rc is the (row, k) of half j (0, 1) of word e (0..3) of invocation
// l's A fragment (b false: 16 rows × 16 k), or the (n, k) of its B fragment
// (b true: 16 k × 16 n, loaded column-major from [n][k]), in the element
// order of an H200's driver (580; a probe that loaded a tile of known values
// and wrote each invocation's elements out found it, on the next/frag-order
// branch). It is one order in the matrix's own (row, column) terms whatever the
// use: with g = l / 4 and t = l % 4, word e holds row g + 8·(e >> 1), columns
// 2t + 8·(e & 1) and the next. So A's words pair two k of one row, and B's two
// n at one k, which the multiply must rearrange (mma.sync wants B's pairs along k).
uvec2 frag_rc(bool b, uint l, uint e, uint j) {
	const uint g = l / 4, t = l % 4, major = g + 8 * (e >> 1), minor = 2 * t + 8 * (e & 1) + j;
	return b ? uvec2(minor, major) : uvec2(major, minor);
}

// frag_word is the invocation's word of the fragment of rows (or n) r.. and
// slice s in the fragment-ordered tile t (xs or ws); frag_set sets a
// fragment's eight halves from it.
#define frag_word(t, r, s) t[(((r) / 16) * 2 + (s)) * 32 + gl_SubgroupInvocationID]
#define frag_set(f, v) [[unroll]] for (uint e_ = 0; e_ < 4; e_++) { const f16vec2 h_ = unpackFloat2x16(v[e_]); f[2 * e_] = h_.x; f[2 * e_ + 1] = h_.y; }

// load_w loads the W fragment of rows n.. (TN) and slice s as the B operand.
void load_w(out FRAGB b, uint n, uint s) {
#if !defined(I8) && !defined(N8)
	if ((MODE & 256) != 0) {
		const uvec4 v = frag_word(ws, n, s);
		frag_set(b, v);
		return;
	}
#endif
	if ((MODE & 32) != 0) coopMatLoadNV(b, wglob, n * RS + s * SLICE, RS, true);
	else if ((MODE & 8) != 0) coopMatLoadNV(b, ws, s * KP * LDN + n / 8, LDN, false);
	else coopMatLoadNV(b, ws, n * RS + s * SLICE, RS, true);
}

void load_x(out FRAGA a, uint r, uint s) {
#if !defined(I8) && !defined(N8)
	if ((MODE & 256) != 0) {
		const uvec4 v = frag_word(xs, r, s);
		frag_set(a, v);
		return;
	}
#endif
	coopMatLoadNV(a, xs, r * RS + s * SLICE, RS, false);
}

// fill_frag is word i of a fragment-ordered tile (mode 256) holding what fill
// puts at the same elements of the row-ordered one.
uvec4 fill_frag(bool b, uint i, uint m, float c) {
	const uint f = i / 32, l = i % 32, band = f / 2, s = f % 2;
	uvec4 v;
	[[unroll]] for (uint e = 0; e < 4; e++) {
		vec2 hv;
		[[unroll]] for (uint j = 0; j < 2; j++) {
			const uvec2 rc = frag_rc(b, l, e, j);
			const uint h = (16 * band + rc.x) * RS * 8 + s * 16 + rc.y; // the half's index in the row-ordered tile
			hv[j] = h % 2 == 0 ? float((h / 8) % m) * c : c;
		}
		v[e] = packHalf2x16(hv);
	}
	return v;
}

// fill is word i of a tile: f16 pairs (c·(i mod m), c), or int8 codes
// (i mod m − m/2, 1, −1, 2) in each 32-bit lane.
uvec4 fill(uint i, uint m, float c) {
#ifdef I8
	return uvec4(uint((int(i % m) - int(m / 2)) & 255) | 0x02FF0100u);
#else
	return uvec4(packHalf2x16(vec2(float(i % m) * c, c)));
#endif
}

// tile_barrier is the tile loop's barrier (mode 4), in the form mode 64 picks.
void tile_barrier() {
	if ((MODE & 64) != 0) controlBarrier(gl_ScopeWorkgroup, gl_ScopeWorkgroup, gl_StorageSemanticsShared, gl_SemanticsAcquireRelease);
	else barrier();
}

void main() {
	const uint tid = gl_LocalInvocationID.x, sg = gl_SubgroupID, wm = sg / 4, wn = sg % 4;
	const bool frag = (MODE & 256) != 0;
	for (uint i = tid; i < BM * RS; i += WG) xs[i] = frag ? fill_frag(false, i, 7, 1e-3) : fill(i, 7, 1e-3);
	for (uint i = tid; i < BN * RS; i += WG) ws[i] = frag ? fill_frag(true, i, 5, 2e-3) : fill(i, 5, 2e-3);
	barrier();
	FRAGA a[MA];
	FRAGB b[NB];
	FRAGC acc[MA][NB];
	[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = FRAGC(0);
	[[unroll]] for (uint j = 0; j < NB; j++) load_w(b[j], wn * 16 * NF + j * TN, 0);
	[[unroll]] for (uint i = 0; i < MA; i++) load_x(a[i], wm * 16 * MA + i * 16, 0);
	const bool ld_x = (MODE & 1) != 0, ld_w = (MODE & 2) != 0, bar = (MODE & 4) != 0;
	if ((MODE & 16) != 0) {
		for (uint it = 0; it + 1 < p.iters; it += 2) {
			if (bar) tile_barrier();
			FRAGA a1[MA];
			FRAGB b1[NB];
			[[unroll]] for (uint j = 0; j < NB; j++) {
				if (ld_w) {
					load_w(b[j], wn * 16 * NF + j * TN, 0);
					load_w(b1[j], wn * 16 * NF + j * TN, 1);
				} else {
					b1[j] = b[j];
				}
			}
			[[unroll]] for (uint i = 0; i < MA; i++) {
				if (ld_x) {
					load_x(a[i], wm * 16 * MA + i * 16, 0);
					load_x(a1[i], wm * 16 * MA + i * 16, 1);
				} else {
					a1[i] = a[i];
				}
			}
			[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
			[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = coopMatMulAddNV(a1[i], b1[j], acc[i][j]);
			if (bar) tile_barrier();
		}
	} else if ((MODE & 128) != 0) {
		// W's fragments of the next iteration loaded before this one's
		// multiplies, so that their latency spans the barriers.
		FRAGB bn[NB];
		for (uint it = 0; it < p.iters; it++) {
			const uint s = it & 1;
			if (bar && s == 0) tile_barrier();
			if (ld_w) [[unroll]] for (uint j = 0; j < NB; j++) load_w(bn[j], wn * 16 * NF + j * TN, s ^ 1);
			if (ld_x) [[unroll]] for (uint i = 0; i < MA; i++) load_x(a[i], wm * 16 * MA + i * 16, s);
			[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
			if (bar && s == 1) tile_barrier();
			if (ld_w) [[unroll]] for (uint j = 0; j < NB; j++) b[j] = bn[j];
		}
	} else {
		// Mode 512's loads, each consuming the one before: every second
		// iteration, at its start, after its fragments' loads (1024) or after
		// its multiplies (2048).
		const bool gload = (MODE & 512) != 0;
		const uint nw = uint(wglob.length());
		uvec4 sink = uvec4(0), pend = uvec4(0);
#define GLOAD_AT(bits) if (gload && s == 0 && (MODE & 3072) == (bits)) { sink ^= pend; pend = wglob[((it / 2) * gl_NumWorkGroups.x * WG + gl_GlobalInvocationID.x) % nw]; }
		for (uint it = 0; it < p.iters; it++) {
			const uint s = it & 1;
			GLOAD_AT(0)
			if (bar && s == 0) tile_barrier();
			if (ld_w) [[unroll]] for (uint j = 0; j < NB; j++) load_w(b[j], wn * 16 * NF + j * TN, s);
			if (ld_x) [[unroll]] for (uint i = 0; i < MA; i++) load_x(a[i], wm * 16 * MA + i * 16, s);
			GLOAD_AT(1024)
			[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
			GLOAD_AT(2048)
			if (bar && s == 1) tile_barrier();
		}
		if (gload && p.iters == 0xFFFFFFFFu) y[gl_GlobalInvocationID.x] = float((sink ^ pend).x); // never: keeps the loads
	}
	[[unroll]] for (uint i = 0; i < MA; i++) [[unroll]] for (uint j = 0; j < NB; j++) {
		const uint at = ((gl_WorkGroupID.x * NSG + sg) * MA * NB + i * NB + j) * 16 * TN;
#ifdef I8
		coopMatStoreNV(acc[i][j], yi, at, TN, false);
#else
		coopMatStoreNV(acc[i][j], y, at, TN, false);
#endif
	}
}
