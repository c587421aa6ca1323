// q8_1_rows.glsl: RR rows of a block-format weight (q4, q8_0) times NCOLS
// columns of q8_1 activations (xq, xd; p.xstride, and p.K for rows_dot). The
// includer sets rows[r] to the row indices and calls rows_start, then
// block_dot for each block its invocation takes (matvec_q.comp: a workgroup's
// invocations split K), or rows_dot, in which a subgroup's lanes take the
// blocks of K (qkv_heads.comp, where a workgroup owns whole heads). acc holds
// each invocation's partial sums (summed by the includer). (Globals: arrays
// sized by a specialization constant expression do not pass to functions
// through glslc.)
uint rows[RR];
float acc[RR][NCOLS];

#if defined(W_Q4)
vec2 rd[RR]; // the rows' scale and min scale
#endif

// block_dot adds block b (of nb a row) of each row times block b of every
// column's activations to acc.
void block_dot(uint b, uint nb) {
	uvec4 x0[NCOLS], x1[NCOLS];
	vec2 a[NCOLS];
	[[unroll]] for (uint c = 0; c < NCOLS; c++) {
		const uint xb = c * p.xstride + b;
		x0[c] = xq[2 * xb];
		x1[c] = xq[2 * xb + 1];
		a[c] = xd[xb];
	}
	[[unroll]] for (uint r = 0; r < RR; r++) {
		const uint gb = rows[r] * nb + b;
#if defined(W_Q4)
		const uvec4 q = w_q4[gb];
		const uint sm = uint(w_sm[gb]);
		const float s = rd[r].x * float(sm & 255u), m = rd[r].y * float(sm >> 8);
		const uvec4 lo = q & 0x0F0F0F0Fu, hi = (q >> 4) & 0x0F0F0F0Fu;
		[[unroll]] for (uint c = 0; c < NCOLS; c++) {
			const int dt = DOT4(lo.x, x0[c].x) + DOT4(hi.x, x0[c].y) + DOT4(lo.y, x0[c].z) + DOT4(hi.y, x0[c].w)
			             + DOT4(lo.z, x1[c].x) + DOT4(hi.z, x1[c].y) + DOT4(lo.w, x1[c].z) + DOT4(hi.w, x1[c].w);
			acc[r][c] += s * a[c].x * float(dt) - m * a[c].y;
		}
#else
		const uvec4 q0 = w_q4[2 * gb], q1 = w_q4[2 * gb + 1];
		const float s = float(w_d[gb]);
		[[unroll]] for (uint c = 0; c < NCOLS; c++) {
			const int dt = DOT4(q0.x, x0[c].x) + DOT4(q0.y, x0[c].y) + DOT4(q0.z, x0[c].z) + DOT4(q0.w, x0[c].w)
			             + DOT4(q1.x, x1[c].x) + DOT4(q1.y, x1[c].y) + DOT4(q1.z, x1[c].z) + DOT4(q1.w, x1[c].w);
			acc[r][c] += s * a[c].x * float(dt);
		}
#endif
	}
}

// rows_start zeroes acc and reads the q4 rows' scales.
void rows_start() {
	[[unroll]] for (uint r = 0; r < RR; r++) [[unroll]] for (uint c = 0; c < NCOLS; c++) acc[r][c] = 0.0;
#if defined(W_Q4)
	[[unroll]] for (uint r = 0; r < RR; r++) rd[r] = w_rd[rows[r]];
#endif
}

// rows_dot: the subgroup's lanes take the blocks of K.
void rows_dot() {
	const uint nb = p.K >> 5;
	rows_start();
	for (uint b = gl_SubgroupInvocationID; b < nb; b += gl_SubgroupSize) block_dot(b, nb);
}
