// coopmat_tile.glsl: the tensor-core tile matmul_coopmat and conv2d_coopmat
// share. A workgroup of NSG subgroups of 32 (8, or 16 in matmul_coopmat) computes
// BM × BN = 16·NSG × 128 outputs, subgroup s the 64 × 32 at rows (s / 4)·64, columns (s % 4)·32;
// each K step of BK (the includer declares it as a constant: 32 or 64; 32 with
// 16 subgroups, for shared memory) stages X and W rows as f16 in shared memory
// ([row][k], padded stride LD, eight halves packed to a uvec4).
//
// The includer defines load_tiles(k0), which reads step k0's values into its
// registers (during the previous step's multiplies), and store_tiles(), which
// converts them to f16 and writes them with tile_put8. (A second shared buffer,
// staging a step while the previous one multiplies with one barrier a step,
// measured slower on an H100: 139 against 172 TFLOP/s, BK 32 being the most two
// buffers fit in 48 KiB; so did four subgroups that only stage: 129.)
const uint NSG = WG / 32; // subgroups
const uint BM = 16 * NSG, BN = 128, LD = BK + 8;
shared uvec4 xs[BM * LD / 8];
shared uvec4 ws[BN * LD / 8];
shared float cs[NSG * 16 * 16]; // per-subgroup staging of edge (and, in conv2d, every) output tiles

void load_tiles(uint k0);
void store_tiles();

// tile_put8 writes eight halves (k a multiple of 8) of row r of the X tile (w
// false) or the W tile (w true).
void tile_put8(bool w, uint r, uint k, uvec4 v) {
	const uint i = (r * LD + k) / 8;
	if (w) ws[i] = v; else xs[i] = v;
}

// tile_step multiplies the staged tiles into subgroup (wm, wn)'s 64 × 32
// outputs, 16 of k (a slice) at a time, and issues the next step's global
// loads (load_tiles, when k0 + BK < K) before the multiplies, or, where the
// includer defines LOAD_AFTER, after the first slice's fragments are loaded.
// On an H200 the later placement made conv2d_coopmat's 3×3 convolutions at
// 1024² 3 % faster (82.6 → 80.1 ms for ten; after the second or third slice
// 86.5, 87.4) and matmul_coopmat's 512-invocation tile slower (f16 176 → 139
// TFLOP/s, prefill 3.54 → 3.75 s), so only the convolution defines it.
void tile_step(uint k0, uint K, uint wm, uint wn, inout fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[4][2]) {
	const bool next = k0 + BK < K;
#if !defined(LOAD_AFTER)
	if (next) load_tiles(k0 + BK); // in flight during the multiplies
#endif
	[[unroll]] for (uint kk = 0; kk < BK; kk += 16) {
		fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[4], b[2];
		[[unroll]] for (uint j = 0; j < 2; j++) coopMatLoadNV(b[j], ws, ((wn * 32 + j * 16) * LD + kk) / 8, LD / 8, true);
		[[unroll]] for (uint i = 0; i < 4; i++) coopMatLoadNV(a[i], xs, ((wm * 64 + i * 16) * LD + kk) / 8, LD / 8, false);
#if defined(LOAD_AFTER)
		if (kk == 0 && next) load_tiles(k0 + BK);
#endif
		[[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 2; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
	}
}

// tile_loop runs the K loop of subgroup (wm, wn) over K (a multiple of BK or
// not: load_tiles zero-fills the tail).
void tile_loop(uint K, uint wm, uint wn, inout fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[4][2]) {
	load_tiles(0);
	for (uint k0 = 0; k0 < K; k0 += BK) {
		store_tiles();
		barrier();
		tile_step(k0, K, wm, wn, acc);
		barrier();
	}
}
