// reduce_rows.glsl: sums acc[ROWS][NCOLS] over the workgroup and writes the
// totals: y[c*ystride + row0 + r] for rows < n. One barrier: subgroupAdd, then
// the subgroup totals through shared memory. A kernel may define ROW_SCALE(c),
// a factor for column c's totals, or ADD_Y to add the totals to y.
shared float rr_sh[ROWS * NCOLS * 32]; // up to 32 subgroups per workgroup

void reduce_rows(float acc[ROWS][NCOLS], uint row0, uint n, uint ystride) {
	[[unroll]] for (uint r = 0; r < ROWS; r++) {
		[[unroll]] for (uint c = 0; c < NCOLS; c++) {
			const float s = subgroupAdd(acc[r][c]);
			if (subgroupElect()) rr_sh[(r * NCOLS + c) * 32 + gl_SubgroupID] = s;
		}
	}
	barrier();
	const uint tid = gl_LocalInvocationID.x;
	for (uint i = tid; i < ROWS * NCOLS; i += WG) {
		const uint r = i / NCOLS, c = i % NCOLS;
		if (row0 + r < n) {
			float s = 0.0;
			for (uint g = 0; g < gl_NumSubgroups; g++) s += rr_sh[i * 32 + g];
#if defined(ROW_SCALE)
			y[c * ystride + row0 + r] = s * ROW_SCALE(c);
#elif defined(ADD_Y)
			y[c * ystride + row0 + r] += s;
#else
			y[c * ystride + row0 + r] = s;
#endif
		}
	}
}
