#version 450
// conv2d_narrow: conv2d.comp for convolutions of at most 4 output channels
// (the IBQ decoder's conv_out: 256 → 3 channels at 1024²), where the tiles of
// conv2d (64 channels) and conv2d_coopmat (128) compute 16 to 40 times the
// outputs that exist. An invocation computes every channel of two output
// pixels, in f32. The weights (any float format) are staged in shared memory a
// range of CC input channels at a time, as one vec4 a (channel, tap) — the
// four output channels, zero past Cout — which all invocations read alike; the
// input is read a channel's taps at a time, consecutive invocations reading
// consecutive pixels. Same options, bindings and push constants as conv2d.
#include "include/common.glsl"
#include "include/weights.glsl"

layout(constant_id = 1) const uint KS = 3;
layout(constant_id = 2) const uint STRIDE = 1;
layout(constant_id = 3) const uint UPSAMPLE = 0;
layout(constant_id = 4) const uint IN_PM = 0;
layout(constant_id = 5) const uint OUT_PM = 0;
layout(constant_id = 6) const uint CIN_INNER = 0; // W's K runs (ky, kx, ci), ci fastest

layout(std430, binding = WB + 0) readonly buffer X_ { float x[]; };
layout(std430, binding = WB + 1) readonly buffer B_ { float bias[]; };
layout(std430, binding = WB + 2) readonly buffer R_ { float res[]; };
layout(std430, binding = WB + 3) writeonly buffer Y_ { float y[]; };

layout(push_constant) uniform P {
	uint Cin, H, W;
	uint Cout, Ho, Wo;
	uint residual;
} p;

#include "include/im2col.glsl"

const uint CC = 128;             // input channels a stage
shared vec4 wsh[CC * KS * KS]; // [channel of the stage][tap]: the 4 outputs' weights

// wk is W's k of input channel ci at tap t = ky·KS + kx.
uint wk(uint ci, uint t) { return CIN_INNER != 0 ? t * p.Cin + ci : ci * KS * KS + t; }

// An invocation's output pixels, WG apart (ops' narrowPixels): on an H200 the
// decoder's conv_out took 1.89 ms with one, 1.21 with two (the weights' shared
// loads shared by two pixels), 9.0 with four.
const uint PX = 2;

void main() {
	const uint tid = gl_LocalInvocationID.x;
	const uint M = p.Ho * p.Wo, N = p.Cout, K = p.Cin * KS * KS;
	const uint m0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG * PX + tid;
	// Channel ci at tap t of pixel j is x[at[j][t] + ci·cs] times in_[j][t]: 0
	// outside the image (and past the last pixel), where at is 0, a valid address.
	const uint cs = IN_PM != 0 ? 1 : p.H * p.W;
	uint at[PX][KS * KS];
	float in_[PX][KS * KS];
	[[unroll]] for (uint j = 0; j < PX; j++) {
		im2col_pixel(m0 + j * WG);
		[[unroll]] for (uint t = 0; t < KS * KS; t++) {
			uint sy, sx;
			const bool ok = im2col_tap(t / KS, t % KS, sy, sx);
			at[j][t] = ok ? (IN_PM != 0 ? (sy * p.W + sx) * p.Cin : sy * p.W + sx) : 0;
			in_[j][t] = ok ? 1.0 : 0.0;
		}
	}
	vec4 acc[PX];
	[[unroll]] for (uint j = 0; j < PX; j++) acc[j] = vec4(0.0);
	for (uint c0 = 0; c0 < p.Cin; c0 += CC) {
		const uint cn = min(CC, p.Cin - c0);
		barrier(); // the last stage's weights are read
		for (uint i = tid; i < cn * KS * KS; i += WG) {
			const uint c = i / (KS * KS), t = i % (KS * KS);
			vec4 v = vec4(0.0);
			[[unroll]] for (uint n = 0; n < 4; n++) if (n < N) v[n] = wget(n, wk(c0 + c, t), K);
			wsh[i] = v;
		}
		barrier();
		for (uint c = 0; c < cn; c++) {
			const uint base = (c0 + c) * cs;
			[[unroll]] for (uint t = 0; t < KS * KS; t++) {
				const vec4 w = wsh[c * KS * KS + t];
				[[unroll]] for (uint j = 0; j < PX; j++) acc[j] += (in_[j][t] * x[at[j][t] + base]) * w;
			}
		}
	}
	[[unroll]] for (uint j = 0; j < PX; j++) {
		const uint m = m0 + j * WG;
		if (m >= M) break;
		for (uint n = 0; n < N; n++) conv_put(m, n, M, N, acc[j][n]);
	}
}
