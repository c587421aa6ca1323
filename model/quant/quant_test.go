package quant

import (
	"math"

	"github.com/emu35/emu35/model/cpu"
	"math/rand"
	"testing"
)

func gaussian(n int, seed int64) []float32 {
	r := rand.New(rand.NewSource(seed))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * 0.02
	}
	return x
}

var NMSE = cpu.NMSE

func TestHalfConversions(t *testing.T) {
	cases := []struct {
		f  float32
		h  uint16
		bf uint16
	}{
		{0, 0, 0}, {1, 0x3c00, 0x3f80}, {-2, 0xc000, 0xc000}, {65504, 0x7bff, 0x4780},
		{1e9, 0x7c00, 0x4e6e}, {5.960464477539063e-08, 0x0001, 0x3380}, {0.1, 0x2e66, 0x3dcd},
	}
	for _, c := range cases {
		if got := F32ToF16(c.f); got != c.h {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
		if got := F32ToBF16(c.f); got != c.bf {
			t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", c.f, got, c.bf)
		}
	}
	for h := 0; h < 0x7c00; h++ {
		if back := F32ToF16(F16ToF32(uint16(h))); back != uint16(h) {
			t.Fatalf("f16 %#04x does not round-trip (%#04x)", h, back)
		}
	}
}

// The round-trip error of each format is pinned: a change to a quantizer that
// makes it worse fails here.
func TestRoundTripError(t *testing.T) {
	rows, k := 64, 512
	x := gaussian(rows*k, 1)
	limits := map[Format]float64{F32: 0, F16: 1e-7, BF16: 1e-5, Q8_0: 1e-4, Q4: 5.5e-3}
	for f, lim := range limits {
		q, err := Quantize(f, rows, k, x)
		if err != nil {
			t.Fatal(err)
		}
		e := NMSE(q.Dequantize(), x)
		t.Logf("%s: NMSE %.3g, %d bytes (%.3f bits/weight)", f, e, f.Bytes(rows, k), float64(f.Bytes(rows, k))*8/float64(rows*k))
		if e > lim {
			t.Errorf("%s round-trip NMSE %.3g > %.3g", f, e, lim)
		}
	}
}

// q4_0 as ggml defines it: symmetric, scale = max/-8 with the sign of the largest
// magnitude, codes 0..15 offset by 8. The baseline the q4 design must beat.
func q4_0RoundTrip(x []float32) []float32 {
	out := make([]float32, len(x))
	for b := 0; b < len(x)/32; b++ {
		blk := x[32*b : 32*b+32]
		var amax, mx float32
		for _, v := range blk {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, mx = a, v
			}
		}
		d := RoundF16(mx / -8)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for i, v := range blk {
			q := min(15, int(v*id+8.5))
			out[32*b+i] = float32(q-8) * d
		}
	}
	return out
}

func TestQ4BeatsQ4_0(t *testing.T) {
	x := gaussian(256*1024, 2)
	q, _ := Quantize(Q4, 256, 1024, x)
	ours := NMSE(q.Dequantize(), x)
	base := NMSE(q4_0RoundTrip(x), x)
	t.Logf("q4 NMSE %.4g, q4_0 NMSE %.4g (ratio %.2f)", ours, base, ours/base)
	if ours > 0.8*base {
		t.Fatalf("q4 (%.4g) is not clearly better than q4_0 (%.4g)", ours, base)
	}
}

func TestQuantizeShapeErrors(t *testing.T) {
	if _, err := Quantize(Q4, 2, 40, make([]float32, 80)); err == nil {
		t.Error("K=40 accepted for q4")
	}
	if _, err := Quantize(F16, 2, 4, make([]float32, 7)); err == nil {
		t.Error("wrong length accepted")
	}
	if _, err := Parse("q5"); err == nil {
		t.Error("q5 parsed")
	}
}

func TestQ8_1(t *testing.T) {
	x := gaussian(2*64, 3)
	q, ds := QuantizeQ8_1(x, 2, 64)
	for b := 0; b < 4; b++ {
		sum := 0
		for i := 0; i < 32; i++ {
			sum += int(q[32*b+i])
			if d := math.Abs(float64(float32(q[32*b+i])*ds[2*b] - x[32*b+i])); d > float64(ds[2*b])/2+1e-9 {
				t.Fatalf("block %d elem %d off by %g", b, i, d)
			}
		}
		if math.Abs(float64(ds[2*b+1]-ds[2*b]*float32(sum))) > 1e-9 {
			t.Fatal("sum term wrong")
		}
	}
}
