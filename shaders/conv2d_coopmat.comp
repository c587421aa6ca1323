#version 450
// conv2d_coopmat: conv2d.comp on tensor cores (VK_NV_cooperative_matrix, f16
// inputs, f32 accumulation), the tiling of matmul_coopmat.comp: 128 output pixels
// × 128 output channels a workgroup, the im2col gather done while staging the
// pixel tile, the next K step's loads in registers during this step's multiplies
// (issued after the first 16 of k's fragments are loaded).
// Output tiles go through shared memory to add the bias and residual and to lay
// them out channel- or pixel-major. Chosen at run time on devices with 16×16×16
// f16·f16+f32 cooperative matrices; tested against the CPU with f16-rounded inputs.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#include "include/common.glsl"
#include "include/weights.glsl"

layout(constant_id = 1) const uint KS = 3;
layout(constant_id = 2) const uint STRIDE = 1;
layout(constant_id = 3) const uint UPSAMPLE = 0;
layout(constant_id = 4) const uint IN_PM = 0;
layout(constant_id = 5) const uint OUT_PM = 0;
layout(constant_id = 6) const uint CIN_INNER = 0; // K runs (ky, kx, ci), ci fastest
layout(constant_id = 7) const uint BK = 32; // K step: 32 or 64

layout(std430, binding = WB + 0) readonly buffer X_ { float x[]; };
layout(std430, binding = WB + 1) readonly buffer B_ { float bias[]; };
layout(std430, binding = WB + 2) readonly buffer R_ { float res[]; };
layout(std430, binding = WB + 2) readonly buffer RV_ { vec4 resv[]; };
layout(std430, binding = WB + 3) writeonly buffer Y_ { float y[]; };
layout(std430, binding = WB + 3) writeonly buffer YV_ { vec4 yv[]; };

layout(push_constant) uniform P {
	uint Cin, H, W;
	uint Cout, Ho, Wo;
	uint residual;
} p;

#define LOAD_AFTER // the next step's loads after the first slice's fragments (include/coopmat_tile.glsl)
#include "include/coopmat_tile.glsl"
#include "include/im2col.glsl"

// Invocation tid gathers k half ghalf(tid) of pixel row grow(tid), KH
// elements: a subgroup's lanes take 32 consecutive pixels of one half, so that
// each of their loads is one 128-byte line of a channel (H200: the 3×3
// convolutions at 1024² 80.1 → 79.2 ms for ten, against pairs of lanes on
// one pixel's two halves).
const uint KH = BK / 2;
uint grow(uint tid) { return tid % BM; }
uint ghalf(uint tid) { return tid / BM; }
vec4 rx[KH / 4]; // the gathered pixels' next values
// The weights' next values, as f16 bits (f32 weights are converted on loading):
// 16-byte chunks, consecutive invocations taking consecutive chunks of a row.
const uint WCH = 128 * BK / 8 / 256; // chunks an invocation
uvec4 rw[WCH];
void store_tiles() {
	const uint tid = gl_LocalInvocationID.x, r = grow(tid), kh = ghalf(tid) * KH;
	[[unroll]] for (uint e = 0; e < KH / 4; e += 2) tile_put8(false, r, kh + 4 * e, uvec4(f16x4(rx[e]), f16x4(rx[e + 1])));
	[[unroll]] for (uint i = 0; i < WCH; i++) {
		const uint q = i * 256 + tid;
		tile_put8(true, q / (BK / 8), (q % (BK / 8)) * 8, rw[i]);
	}
}
#if defined(W_F16)
layout(std430, binding = 0) readonly buffer WV8_ { uvec4 w_v8[]; };
#endif
uint tn0; // the workgroup's first output channel

// load_tiles gathers this invocation's KH consecutive k of its pixel row
// (include/im2col.glsl) and its chunks of the weight tile.
void load_tiles(uint k0) {
	const uint kh = ghalf(gl_LocalInvocationID.x) * KH;
	const uint K = p.Cin * KS * KS, kb = k0 + kh;
	uint ci, ky, kx;
	im2col_split(kb, ci, ky, kx);
	if (CIN_INNER != 0 && IN_PM == 0 && p.Cin % KH == 0) {
		// The run shares one tap: one bounds check, then a channel stride.
		uint sy, sx;
		const bool in_ = kb < K && im2col_tap(ky, kx, sy, sx);
		const uint o = (ci * p.H + sy) * p.W + sx, hw = p.H * p.W;
		[[unroll]] for (uint e = 0; e < KH; e++) rx[e / 4][e % 4] = in_ ? x[o + e * hw] : 0.0;
	} else {
		[[unroll]] for (uint e = 0; e < KH; e++) {
			rx[e / 4][e % 4] = xat(ci, ky, kx);
			im2col_next(ci, ky, kx);
		}
	}
	[[unroll]] for (uint i = 0; i < WCH; i++) {
		const uint q = i * 256 + gl_LocalInvocationID.x, n = tn0 + q / (BK / 8), k = k0 + (q % (BK / 8)) * 8;
#if defined(W_F16)
		if (K % 8 == 0 && k + 8 <= K && n < p.Cout) {
			rw[i] = w_v8[(n * K + k) / 8];
			continue;
		}
#endif
		float v[8];
		[[unroll]] for (uint e = 0; e < 8; e++) v[e] = n < p.Cout && k + e < K ? wget(n, k + e, K) : 0.0;
		rw[i] = uvec4(f16x4(vec4(v[0], v[1], v[2], v[3])), f16x4(vec4(v[4], v[5], v[6], v[7])));
	}
}

void main() {
	const uint sg = gl_SubgroupID, wm = sg / 4, wn = sg % 4;
	const uint M = p.Ho * p.Wo, N = p.Cout, K = p.Cin * KS * KS;
	const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
	im2col_pixel(m0 + grow(gl_LocalInvocationID.x));
	tn0 = n0;
	fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[4][2];
	[[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 2; j++) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
	tile_loop(K, wm, wn, acc);
	const uint lane = gl_SubgroupInvocationID;
	[[unroll]] for (uint i = 0; i < 4; i++) {
		[[unroll]] for (uint j = 0; j < 2; j++) {
			const uint tm = m0 + wm * 64 + i * 16, tn = n0 + wn * 32 + j * 16;
			if (tm >= M || tn >= N) continue;
			// Staged [pixel][channel] for a pixel-major output, [channel][pixel] for a
			// channel-major one, so that consecutive lanes read consecutive words.
			coopMatStoreNV(acc[i][j], cs, sg * 256, 16, OUT_PM == 0);
			subgroupMemoryBarrierShared();
			if (OUT_PM == 0 && M % 4 == 0) {
				// Four pixels of one channel a lane: 8 channels × 64 bytes a store.
				[[unroll]] for (uint h = 0; h < 2; h++) {
					const uint ni = lane / 4 + 8 * h, mi = (lane % 4) * 4, n = tn + ni, m = tm + mi;
					if (n < N && m < M) { // M % 4 == 0: all four pixels
						const uint c = sg * 256 + ni * 16 + mi, o = (n * M + m) / 4;
						vec4 v = vec4(cs[c], cs[c + 1], cs[c + 2], cs[c + 3]) + bias[n];
						if (p.residual != 0) v += resv[o];
						yv[o] = v;
					}
				}
			} else {
				for (uint e = lane; e < 256; e += 32) {
					// Consecutive lanes take consecutive channels (pixel-major) or pixels.
					const uint mi = OUT_PM != 0 ? e / 16 : e % 16, ni = OUT_PM != 0 ? e % 16 : e / 16;
					const uint m = tm + mi, n = tn + ni;
					if (m < M && n < N) conv_put(m, n, M, N, cs[sg * 256 + (OUT_PM != 0 ? mi * 16 + ni : ni * 16 + mi)]);
				}
			}
			subgroupMemoryBarrierShared();
		}
	}
}
