// coopmat_tile.glsl: the tensor-core tile matmul_coopmat and conv2d_coopmat
// share. A workgroup of 8 subgroups computes BM × BN = 128 × 128 outputs; each K
// step of BK (the includer declares it, and STAGES, as constants: BK 32 or 64,
// STAGES 1 or 2) stages X and W rows as f16 in shared memory ([row][k], padded
// stride LD, four halves packed to a uvec2: a quarter of the stores). With
// STAGES 2 there are two such buffers: a step multiplies one while the next is
// stored to the other, one barrier a step (BK 32 only: two 64-step buffers
// exceed 48 KiB). Invocation tid stages row tid/2 of both tiles, k half
// (tid%2)·KH, from the includer's registers through xpack(e) and wpack(e), the
// e-th four halves of its X and W parts, which its load_tiles fills with the
// next step's values during this step's multiplies.
const uint BM = 128, BN = 128, LD = BK + 8;
const uint KH = BK / 2; // k elements an invocation stages a row
const uint TILE = BM * LD / 4; // uvec2 a tile (BM = BN)
shared uvec2 xs[STAGES * TILE];
shared uvec2 ws[STAGES * TILE];
shared float cs[8 * 16 * 16]; // per-subgroup staging of edge (and, in conv2d, every) output tiles

uvec2 xpack(uint e);
uvec2 wpack(uint e);
void load_tiles(uint k0); // fills the registers xpack and wpack read with step k0's values

void store_tiles(uint stage) {
	const uint r = gl_LocalInvocationID.x / 2, kh = (gl_LocalInvocationID.x % 2) * KH;
	const uint o = stage * TILE + (r * LD + kh) / 4;
	[[unroll]] for (uint e = 0; e < KH / 4; e++) {
		xs[o + e] = xpack(e);
		ws[o + e] = wpack(e);
	}
}

// tile_mma accumulates stage's tiles into subgroup (wm, wn)'s 64 × 32 outputs.
void tile_mma(uint stage, uint wm, uint wn, inout fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[4][2]) {
	const uint o = stage * TILE * 4;
	[[unroll]] for (uint kk = 0; kk < BK; kk += 16) {
		fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[4], b[2];
		[[unroll]] for (uint j = 0; j < 2; j++) coopMatLoadNV(b[j], ws, (o + (wn * 32 + j * 16) * LD + kk) / 4, LD / 4, true);
		[[unroll]] for (uint i = 0; i < 4; i++) coopMatLoadNV(a[i], xs, (o + (wm * 64 + i * 16) * LD + kk) / 4, LD / 4, false);
		[[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 2; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
	}
}

// tile_loop runs the K loop of subgroup (wm, wn) over K (a multiple of BK or
// not: load_tiles zero-fills the tail).
void tile_loop(uint K, uint wm, uint wn, inout fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[4][2]) {
	load_tiles(0);
	if (STAGES == 1) {
		for (uint k0 = 0; k0 < K; k0 += BK) {
			store_tiles(0);
			barrier();
			if (k0 + BK < K) load_tiles(k0 + BK); // in flight during the multiplies
			tile_mma(0, wm, wn, acc);
			barrier();
		}
		return;
	}
	store_tiles(0);
	barrier();
	if (BK < K) load_tiles(BK);
	uint s = 0;
	for (uint k0 = 0; k0 < K; k0 += BK) {
		tile_mma(s, wm, wn, acc);
		if (k0 + BK < K) {
			store_tiles(s ^ 1); // the other buffer: its last readers passed the previous barrier
			if (k0 + 2 * BK < K) load_tiles(k0 + 2 * BK);
		}
		barrier();
		s ^= 1;
	}
}
