// im2col.glsl: the implicit-GEMM convolutions' gather of input x for one
// output pixel (a row of the pixel tile) over consecutive k = (ci·KS + ky)·KS + kx,
// or k = (ky·KS + kx)·Cin + ci with CIN_INNER (the weights' K laid out so: runs of
// k then share a tap, see ops.Conv.CinInner). The pixel is set once per
// workgroup (im2col_pixel); k is split once per K step (im2col_split) and then
// stepped (im2col_next), so no element pays a division. conv_put writes an
// output with its bias and residual, as every convolution kernel does.
// Include after KS, STRIDE, UPSAMPLE, IN_PM, OUT_PM, CIN_INNER, x, bias, res, y
// and p (Cin, H, W, Ho, Wo, residual).
int im_py, im_px;
bool im_in;

void im2col_pixel(uint m) {
	im_in = m < p.Ho * p.Wo;
	im_py = int(m / p.Wo);
	im_px = int(m % p.Wo);
}

// im2col_tap is the pixel's input position for tap (ky, kx), in the stored
// (not upsampled) input: false outside the image (zero padding).
bool im2col_tap(uint ky, uint kx, out uint sy, out uint sx) {
	const int pad = STRIDE == 1 ? int(KS - 1) / 2 : 0;
	const int iy = im_py * int(STRIDE) + int(ky) - pad, ix = im_px * int(STRIDE) + int(kx) - pad;
	const int vh = int(UPSAMPLE != 0 ? 2 * p.H : p.H), vw = int(UPSAMPLE != 0 ? 2 * p.W : p.W);
	sy = UPSAMPLE != 0 ? uint(iy) / 2 : uint(iy);
	sx = UPSAMPLE != 0 ? uint(ix) / 2 : uint(ix);
	return im_in && iy >= 0 && ix >= 0 && iy < vh && ix < vw;
}

// xat is input element (ci, ky, kx) of the pixel (0 outside the image or the
// channels: zero padding and the K tail).
float xat(uint ci, uint ky, uint kx) {
	uint sy, sx;
	if (ci >= p.Cin || ky >= KS || !im2col_tap(ky, kx, sy, sx)) return 0.0;
	return IN_PM != 0 ? x[(sy * p.W + sx) * p.Cin + ci] : x[(ci * p.H + sy) * p.W + sx];
}

void im2col_split(uint k, out uint ci, out uint ky, out uint kx) {
	if (CIN_INNER != 0) {
		ci = k % p.Cin;
		const uint kk = k / p.Cin;
		ky = kk / KS;
		kx = kk % KS;
		return;
	}
	ci = k / (KS * KS);
	const uint kk = k % (KS * KS);
	ky = kk / KS;
	kx = kk % KS;
}

void im2col_next(inout uint ci, inout uint ky, inout uint kx) {
	if (CIN_INNER != 0) {
		if (++ci == p.Cin) {
			ci = 0;
			if (++kx == KS) {
				kx = 0;
				ky++; // KS past the end: the K tail
			}
		}
		return;
	}
	if (++kx == KS) {
		kx = 0;
		if (++ky == KS) {
			ky = 0;
			ci++;
		}
	}
}

// conv_put writes output (pixel m, channel n) of M pixels and N channels: a
// plus the channel's bias and, when the call has one, the residual.
void conv_put(uint m, uint n, uint M, uint N, float a) {
	const uint o = OUT_PM != 0 ? m * N + n : n * M + m;
	float v = a + bias[n];
	if (p.residual != 0) v += res[o];
	y[o] = v;
}
