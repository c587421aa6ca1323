// inv_rms.glsl: the mat-vecs' INV_RMS form. Their activations are a norm's
// x·w, not yet divided by the RMS of x (rmsnorm_q8_1.comp, rmsnorm.comp with
// PARTS): column c's RMS is sqrt(sum of shares[c, :] / K + eps), and the results
// are divided by it (reduce_rows.glsl's ROW_SCALE). A share a lane is loaded
// before the product's loop (inv_rms_load) and summed after it (inv_rms_sum),
// so its latency hides behind the weights'. Every subgroup of every workgroup
// sums the same shares the same way, so all agree on the RMS.
// Needs: binding S_BINDING, push constants p.K, p.nw and p.eps.
layout(std430, binding = S_BINDING) readonly buffer S_ { float shares[]; }; // [cols, nw]

float inv_rms[NCOLS];
float inv_part[NCOLS];
#define ROW_SCALE(c) inv_rms[c]

void inv_rms_load() {
	const uint lane = gl_SubgroupInvocationID;
	[[unroll]] for (uint c = 0; c < NCOLS; c++) inv_part[c] = lane < p.nw ? shares[c * p.nw + lane] : 0.0;
}

void inv_rms_sum() {
	const uint lane = gl_SubgroupInvocationID;
	[[unroll]] for (uint c = 0; c < NCOLS; c++) {
		for (uint i = lane + gl_SubgroupSize; i < p.nw; i += gl_SubgroupSize) inv_part[c] += shares[c * p.nw + i];
		inv_rms[c] = inversesqrt(subgroupAdd(inv_part[c]) / float(p.K) + p.eps);
	}
}
