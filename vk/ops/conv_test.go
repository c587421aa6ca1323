package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
)

func transpose(x []float32, rows, cols int) []float32 {
	y := make([]float32, len(x))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			y[c*rows+r] = x[r*cols+c]
		}
	}
	return y
}

// Every convolution variant against the CPU, on odd sizes.
func TestConv2D(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(13))
	for _, tc := range []struct {
		cin, cout, h, w, ks, stride int
		up, inPM, outPM, res        bool
		f                           quant.Format
		inner                       bool // Conv.CinInner
	}{
		{3, 5, 7, 9, 3, 1, false, false, false, false, quant.F32, false},
		{17, 33, 6, 5, 3, 1, false, false, false, true, quant.F32, false},
		{8, 6, 8, 6, 3, 2, false, false, false, false, quant.F32, false},
		{8, 6, 4, 3, 3, 1, true, false, false, true, quant.F32, false},
		{16, 12, 5, 7, 1, 1, false, true, false, true, quant.F32, false},
		{16, 12, 5, 7, 1, 1, false, false, true, false, quant.F32, false},
		{17, 33, 6, 5, 3, 1, false, false, false, true, quant.F16, false},
		// Channel-inner K: runs of a tap (Cin a multiple of the staged runs) and not.
		{32, 20, 9, 7, 3, 1, false, false, false, true, quant.F16, true},
		{64, 40, 5, 6, 3, 1, true, false, true, false, quant.F16, true},
		{32, 8, 9, 8, 3, 2, false, false, false, false, quant.F32, true},
		{17, 33, 6, 5, 3, 1, false, false, false, true, quant.F32, true},
		{32, 40, 16, 12, 3, 1, false, false, false, true, quant.F16, true}, // 192 pixels: the vec4 output path
		// At most NarrowConv output channels (conv2d_narrow): the decoder's
		// conv_out form, more than one stage of input channels with a tail, and
		// each option once.
		{256, 3, 9, 7, 3, 1, false, false, false, false, quant.F16, true},
		{131, 4, 6, 5, 3, 1, false, false, false, true, quant.F32, false},
		{7, 1, 8, 6, 3, 2, false, false, false, false, quant.F32, true},
		{6, 2, 4, 3, 3, 1, true, false, true, true, quant.F16, true},
		{16, 3, 5, 7, 1, 1, false, true, false, true, quant.F32, false},
		{24, 3, 40, 31, 3, 1, false, false, false, true, quant.F16, true}, // 1240 pixels: an invocation's later pixels, and a part-full workgroup
	} {
		name := fmt.Sprintf("%+v", tc)
		x := randn(r, tc.cin*tc.h*tc.w, 1)
		wv := randn(r, tc.cout*tc.cin*tc.ks*tc.ks, 0.2)
		bias := randn(r, tc.cout, 1)
		wt, _ := quant.Quantize(tc.f, tc.cout, tc.cin*tc.ks*tc.ks, wv)
		wg := wt
		if tc.inner {
			wg, _ = quant.Quantize(tc.f, tc.cout, tc.cin*tc.ks*tc.ks, CinInner(wv, tc.cout, tc.cin, tc.ks))
		}
		w, _ := e.o.UploadWeight(e.a, "w", wg)
		cv := &Conv{W: w, Bias: e.f32("b", bias), KS: tc.ks, Stride: tc.stride, Upsample: tc.up, InPM: tc.inPM, OutPM: tc.outPM, CinInner: tc.inner}
		xr, wr := x, wt.Dequantize()
		coop := e.o.CoopMat && tc.cout > NarrowConv
		if coop { // tensor cores multiply f16-rounded inputs
			xr, wr = RoundF16All(xr), RoundF16All(wr)
		}
		want, ho, wo := cpu.Conv2D(xr, tc.cin, tc.h, tc.w, wr, bias, tc.cout, tc.ks, tc.stride, tc.up)
		xin := x
		if tc.inPM {
			xin = transpose(x, tc.cin, tc.h*tc.w)
		}
		var res vk.Range
		if tc.res {
			rv := randn(r, len(want), 1)
			want = cpu.Add(want, rv)
			if tc.outPM {
				rv = transpose(rv, tc.cout, ho*wo)
			}
			res = e.f32("res", rv)
		}
		for _, bk := range []uint32{32, 64} { // the tensor-core kernel's K steps
			e.o.CoopBK = bk
			y := e.out("y", len(want))
			e.o.Conv2D(e.c, cv, e.f32("x", xin), tc.h, tc.w, res, y)
			e.run()
			got := e.get(y, len(want))
			if tc.outPM {
				got = transpose(got, ho*wo, tc.cout)
			}
			tl := 1e-10
			if coop {
				tl = 1e-6
			}
			check(t, fmt.Sprintf("conv %s (K step %d)", name, bk), got, want, tl)
		}
	}
}

func TestGroupNorm(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(14))
	for _, tc := range []struct {
		c, hw, g    int
		mean, spike float32
	}{{32, 20, 32, 5, 0}, {64, 9000, 32, 5, 0}, {8, 5000, 2, 5, 0}, {4, 9001, 2, 5, 0}, // vec4s, and floats (HW odd)
		{8, 40000, 2, 1000, 0}, {8, 40000, 2, 5, 300}} {
		x := randn(r, tc.c*tc.hw, 3)
		for i := range x {
			x[i] += tc.mean // a mean far from 0 tests the centred variance
		}
		// A spike of 100 standard deviations at the start of every statistics
		// chunk, where the one-pass sums take their pivot.
		for i := 0; tc.spike != 0 && i < len(x); i += gnChunk {
			x[i] = tc.spike
		}
		ga, be := randn(r, tc.c, 1), randn(r, tc.c, 1)
		y := e.out("y", len(x))
		st := e.out("st", int(GNScratch(tc.c, tc.hw, tc.g)/4))
		e.o.GroupNorm(e.c, e.f32("x", x), e.f32("g", ga), e.f32("b", be), y, st, tc.c, tc.hw, tc.g, 1e-6, true)
		e.run()
		tol := 1e-10
		if tc.mean > 100 || tc.spike != 0 {
			tol = 1e-8 // f32's rounding of x itself (an NMSE of 2e-10 with a mean of 1000), or the spike's
		}
		check(t, fmt.Sprintf("groupnorm %+v", tc), e.get(y, len(x)), cpu.GroupNorm(x, tc.c, tc.hw, tc.g, ga, be, 1e-6, true), tol)
	}
}

func TestArgmax(t *testing.T) {
	e := newEnv(t)
	rows, n := 3, 1000
	s1, s2 := make([]float32, rows*n), make([]float32, rows*n)
	for i := range s1 {
		s1[i] = float32(i % 97)
		s2[i] = float32(i % 89)
	}
	s1[1*n+500] = 200 // row 1's best in chunk 1
	s2[2*n+10] = 300  // row 2's best in chunk 2
	s2[2*n+20] = 300  // a tie: the first index wins
	best := e.out("best", 2*rows)
	e.o.ArgmaxUpdate(e.c, e.f32("s1", s1), best, rows, n, 0, true)
	e.c.Barrier()
	e.o.ArgmaxUpdate(e.c, e.f32("s2", s2), best, rows, n, n, false)
	e.run()
	got := e.get(best, 2*rows)
	idx := func(r int) uint32 { return math.Float32bits(got[2*r+1]) }
	if idx(0) != 96 || idx(1) != 500 || idx(2) != uint32(n+10) {
		t.Fatalf("argmax: %d %d %d", idx(0), idx(1), idx(2))
	}
}
