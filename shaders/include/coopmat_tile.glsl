// coopmat_tile.glsl: the tensor-core tile matmul_coopmat and conv2d_coopmat
// share. A workgroup of 8 subgroups computes BM × BN = 128 × 128 outputs; each K
// step of BK (a specialization constant the includer declares: 32 or 64) stages
// X and W rows as f16 in shared memory ([row][k], padded stride LD, four halves
// packed to a uvec2: a quarter of the stores). Invocation tid stages row tid/2
// of both tiles, k half (tid%2)·KH, from rx and rw, which the includer's
// load_tiles fills with the next step's values during this step's multiplies.
const uint BM = 128, BN = 128, LD = BK + 8;
const uint KH = BK / 2; // k elements an invocation stages a row
shared uvec2 xs[BM * LD / 4];
shared uvec2 ws[BN * LD / 4];
shared float cs[8 * 16 * 16]; // per-subgroup staging of edge (and, in conv2d, every) output tiles

vec4 rx[KH / 4], rw[KH / 4];

void store_tiles() {
	const uint r = gl_LocalInvocationID.x / 2, kh = (gl_LocalInvocationID.x % 2) * KH;
	[[unroll]] for (uint e = 0; e < KH / 4; e++) {
		xs[(r * LD + kh) / 4 + e] = uvec2(packHalf2x16(rx[e].xy), packHalf2x16(rx[e].zw));
		ws[(r * LD + kh) / 4 + e] = uvec2(packHalf2x16(rw[e].xy), packHalf2x16(rw[e].zw));
	}
}
