package ops

import (
	"fmt"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
)

// Conv describes one convolution (see shaders/conv2d.comp).
type Conv struct {
	W        *Weight  // [Cout, Cin·KS·KS], f32 or f16
	Bias     vk.Range // f32 [Cout]
	KS       int      // 1 or 3
	Stride   int      // 1, or 2 (pad 0 with right/bottom zero padding)
	Upsample bool     // read the input upsampled ×2 (nearest)
	InPM     bool     // x is pixel-major [H·W, Cin]
	OutPM    bool     // y is pixel-major [Ho·Wo, Cout]
	// CinInner: W's K runs (ky, kx, ci), ci fastest (CinInner reorders PyTorch's
	// (ci, ky, kx)). Then a run of k shares one tap of the kernel, so the
	// tensor-core gather checks the image bounds once a run instead of once an
	// element.
	CinInner bool
}

// CinInner reorders a convolution weight [cout, cin, ks, ks] (PyTorch's) to
// [cout, ks, ks, cin], the order Conv.CinInner expects.
func CinInner(w []float32, cout, cin, ks int) []float32 {
	out := make([]float32, len(w))
	for o := 0; o < cout; o++ {
		for ci := 0; ci < cin; ci++ {
			for t := 0; t < ks*ks; t++ {
				out[(o*ks*ks+t)*cin+ci] = w[(o*cin+ci)*ks*ks+t]
			}
		}
	}
	return out
}

// OutSize is the output's height and width for an input of h×w.
func (cv *Conv) OutSize(h, w int) (int, int) {
	if cv.Upsample {
		h, w = 2*h, 2*w
	}
	if cv.Stride == 2 {
		return (h+1-3)/2 + 1, (w+1-3)/2 + 1
	}
	return h, w
}

// NarrowConv is the most output channels a convolution has for conv2d_narrow,
// which computes a pixel's channels in one invocation (in f32 also on devices
// with tensor cores), rather than a tile of 64 or 128 channels.
const NarrowConv = 4

// narrowPixels is the output pixels of an invocation of conv2d_narrow (its PX).
const narrowPixels = 2

// Conv2D records y = conv(x) + bias (+ res when res.B != nil) for an input of
// Cin×h×w.
func (o *Ops) Conv2D(c *vk.Cmd, cv *Conv, x vk.Range, h, w int, res, y vk.Range) {
	cout := cv.W.Rows
	cin := cv.W.K / (cv.KS * cv.KS)
	if cin*cv.KS*cv.KS != cv.W.K || len(cv.W.Chunks) != 1 || (cv.InPM && cv.KS != 1) {
		panic(fmt.Sprintf("ops: conv weight [%d, %d] for a %d×%d kernel", cout, cv.W.K, cv.KS, cv.KS))
	}
	if cv.W.Format != quant.F32 && cv.W.Format != quant.F16 {
		panic("ops: conv weights must be f32 or f16")
	}
	ho, wo := cv.OutSize(h, w)
	hasRes := res.B != nil
	if !hasRes {
		res = cv.Bias // bound but unread
	}
	bufs := append(append([]vk.Range{}, cv.W.Chunks[0].Parts...), x, cv.Bias, res, y)
	push := struct{ Cin, H, W, Cout, Ho, Wo, Residual uint32 }{uint32(cin), uint32(h), uint32(w), uint32(cout), uint32(ho), uint32(wo), b2u(hasRes)}
	consts := []uint32{uint32(cv.KS), uint32(max(1, cv.Stride)), b2u(cv.Upsample), b2u(cv.InPM), b2u(cv.OutPM), b2u(cv.CinInner)}
	if cout <= NarrowConv {
		c.Dispatch(o.pipe("conv2d_narrow_"+cv.W.Format.String(), append([]uint32{256}, consts...)...), o.grid1(ceil(ho*wo, narrowPixels), 256), push, bufs...)
		return
	}
	name, tile := "conv2d_"+cv.W.Format.String(), 64
	if o.CoopMat {
		name, tile, consts = name+"_coopmat", 128, append(consts, o.CoopBK)
	}
	p := o.pipe(name, append([]uint32{256}, consts...)...)
	c.Dispatch(p, [3]uint32{uint32(ceil(cout, tile)), uint32(ceil(ho*wo, tile)), 1}, push, bufs...)
}

// gnChunk is the elements one workgroup of the GroupNorm statistics pass reduces.
const gnChunk = 16384

// GNScratch returns the bytes GroupNorm's statistics need for C·HW elements in G groups.
func GNScratch(C, HW, G int) uint64 { return uint64(8 * G * (ceil(C/G*HW, gnChunk) + 1)) }

// GroupNorm records y = GroupNorm(x) (·swish) for x [C, HW] channel-major,
// G groups, affine gamma/beta [C]; stats is scratch of GNScratch bytes.
func (o *Ops) GroupNorm(c *vk.Cmd, x, gamma, beta, y, stats vk.Range, C, HW, G int, eps float32, swish bool) {
	if C%G != 0 {
		panic(fmt.Sprintf("ops: GroupNorm of %d channels in %d groups", C, G))
	}
	per := C / G * HW
	chunks := ceil(per, gnChunk)
	sw := uint32(0)
	if swish {
		sw = 1
	}
	push := struct {
		C, HW, G, Chunk, Chunks, Swish uint32
		Eps                            float32
	}{uint32(C), uint32(HW), uint32(G), gnChunk, uint32(chunks), sw, eps}
	c.Dispatch(o.pipe("groupnorm_stats", 256), [3]uint32{uint32(chunks), uint32(G), 1}, push, x, stats)
	c.Barrier()
	c.Dispatch(o.pipe("groupnorm_final", 64), [3]uint32{uint32(ceil(G, 64)), 1, 1}, push, stats)
	c.Barrier()
	n := C * HW
	if HW%4 == 0 {
		n /= 4 // a vec4 an invocation
	}
	c.Dispatch(o.pipe("groupnorm_apply", o.WG), o.grid1(n, o.WG), push, x, stats, gamma, beta, y)
}

// ArgmaxUpdate records, for each of rows rows of scores s [rows, n] (codes
// base..base+n-1), keeping the best (value, index) in best [rows] (vec2; index as
// uint32 bits); first resets best.
func (o *Ops) ArgmaxUpdate(c *vk.Cmd, s, best vk.Range, rows, n, base int, first bool) {
	f := uint32(0)
	if first {
		f = 1
	}
	c.Dispatch(o.pipe("argmax_update", 256), [3]uint32{uint32(rows), 1, 1}, struct{ N, Base, First uint32 }{uint32(n), uint32(base), f}, s, best)
}

// F32Weight views an f32 buffer [rows, k] as a weight (for products with
// activations, e.g. attention scores), which must fit one binding.
func F32Weight(r vk.Range, rows, k int) *Weight {
	if uint64(4*rows*k) > r.Size {
		panic(fmt.Sprintf("ops: F32Weight [%d, %d] over %d bytes", rows, k, r.Size))
	}
	return &Weight{Format: quant.F32, Rows: rows, K: k, Chunks: []Chunk{{Row0: 0, Rows: rows, Parts: []vk.Range{r.Sub(0, uint64(4*rows*k))}}}}
}
