// scan.glsl: a workgroup's exclusive prefix sum of uints (subgroup scans, then
// the subgroups' totals through shared memory).
shared uint scan_sh[WG]; // a total a subgroup

// wg_scan returns the sum of v over the invocations before this one, and the
// workgroup's total in total (every invocation must call it: it barriers).
uint wg_scan(uint v, out uint total) {
	const uint incl = subgroupInclusiveAdd(v);
	if (gl_SubgroupInvocationID == gl_SubgroupSize - 1) scan_sh[gl_SubgroupID] = incl;
	barrier();
	uint before = 0;
	total = 0;
	for (uint s = 0; s < gl_NumSubgroups; s++) {
		const uint t = scan_sh[s];
		before += s < gl_SubgroupID ? t : 0;
		total += t;
	}
	barrier();
	return before + incl - v;
}
