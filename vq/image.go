package vq

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // reference images may be JPEG
	_ "image/png"
	"math"
	"os"
)

// SmartResize is the reference's target size for a w×h image and a pixel
// budget area: h' = ⌊√(area/ar)⌋, w' = ⌊h'·ar⌋, each rounded to the nearest
// multiple of factor (ties up), at least one factor.
func SmartResize(w, h, area, factor int) (int, int) {
	ar := float64(w) / float64(h)
	nh := int(math.Sqrt(float64(area) / ar))
	nw := int(float64(nh) * ar)
	round := func(n int) int { return max(factor, (n+factor/2)/factor*factor) }
	return round(nw), round(nh)
}

// LoadImage reads a PNG or JPEG as 8-bit RGB (alpha dropped, as PIL's convert("RGB")).
func LoadImage(path string) (*image.RGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable PNG or JPEG image: %w", path, err)
	}
	b := img.Bounds()
	if b.Dx() < 1 || b.Dy() < 1 || b.Dx() > 1<<14 || b.Dy() > 1<<14 {
		return nil, fmt.Errorf("%s: %d×%d pixels is out of range", path, b.Dx(), b.Dy())
	}
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			// Straight (non-premultiplied) channels, alpha ignored.
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			rgba.SetRGBA(x, y, color.RGBA{c.R, c.G, c.B, 255})
		}
	}
	return rgba, nil
}

// bicubic is Pillow's cubic kernel (a = −0.5).
func bicubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// coefficients returns Pillow's fixed-point taps (22 fractional bits) for
// resizing in → out along one axis: per output index, the first input index and
// the integer weights.
func coefficients(in, out int) ([]int, [][]int32) {
	scale := float64(in) / float64(out)
	fs := math.Max(scale, 1)
	support := 2 * fs
	starts := make([]int, out)
	taps := make([][]int32, out)
	for o := 0; o < out; o++ {
		center := (float64(o) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), in)
		ws := make([]float64, xmax-xmin)
		var sum float64
		for x := xmin; x < xmax; x++ {
			w := bicubic((float64(x) - center + 0.5) / fs)
			ws[x-xmin] = w
			sum += w
		}
		k := make([]int32, len(ws))
		for i, w := range ws {
			if sum != 0 {
				w /= sum
			}
			v := w * (1 << 22)
			if v < 0 {
				k[i] = int32(-math.Floor(-v + 0.5))
			} else {
				k[i] = int32(math.Floor(v + 0.5))
			}
		}
		starts[o], taps[o] = xmin, k
	}
	return starts, taps
}

func clip8(v int64) uint8 {
	v >>= 22
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// Resize is Pillow's 8-bit bicubic resize (Image.resize(..., BICUBIC)):
// separable, horizontal pass then vertical, each rounded to 8 bits.
func Resize(src *image.RGBA, w, h int) *image.RGBA {
	sw, sh := src.Bounds().Dx(), src.Bounds().Dy()
	if sw == w && sh == h {
		dst := image.NewRGBA(src.Bounds())
		draw.Draw(dst, dst.Bounds(), src, src.Bounds().Min, draw.Src)
		return dst
	}
	hs, ht := coefficients(sw, w)
	vs, vt := coefficients(sh, h)
	tmp := make([]uint8, 3*w*sh)
	for y := 0; y < sh; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				acc := int64(1) << 21
				for i, k := range ht[x] {
					acc += int64(src.Pix[y*src.Stride+4*(hs[x]+i)+c]) * int64(k)
				}
				tmp[3*(y*w+x)+c] = clip8(acc)
			}
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				acc := int64(1) << 21
				for i, k := range vt[y] {
					acc += int64(tmp[3*((vs[y]+i)*w+x)+c]) * int64(k)
				}
				dst.Pix[y*dst.Stride+4*x+c] = clip8(acc)
			}
			dst.Pix[y*dst.Stride+4*x+3] = 255
		}
	}
	return dst
}

// ToPixels converts an RGB image to [3, H, W] float32 in [−1, 1] as the reference
// does (value/127.5 − 1 in float64, then float32).
func ToPixels(img *image.RGBA) []float32 {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	out := make([]float32, 3*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				out[(c*h+y)*w+x] = float32(float64(img.Pix[y*img.Stride+4*x+c])/127.5 - 1)
			}
		}
	}
	return out
}

// FromPixels converts the decoder's [3, H, W] output to 8-bit RGB as the
// reference does: (v+1)·127.5 in float32, clamped to [0, 255], truncated.
func FromPixels(px []float32, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				v := (px[(c*h+y)*w+x] + 1) * 127.5
				v = float32(math.Min(255, math.Max(0, float64(v))))
				img.Pix[y*img.Stride+4*x+c] = uint8(v)
			}
			img.Pix[y*img.Stride+4*x+3] = 255
		}
	}
	return img
}
