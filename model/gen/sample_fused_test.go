package gen

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// The fused visual sampler draws exactly what CFGSubset + Warp + Draw draw,
// including ties at the threshold, −inf and NaN logits, and k near the ends,
// with the logits split across up to 8 cores.
func TestSampleCFGTopKMatches(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 340; trial++ {
		n := 1 + r.IntN(3000)
		if trial >= 300 {
			n = 8192 + r.IntN(70000)
		}
		c, u := make([]float32, n), make([]float32, n)
		for i := range c {
			c[i], u[i] = float32(r.NormFloat64()*3), float32(r.NormFloat64()*3)
			switch r.IntN(20) {
			case 0: // ties
				c[i], u[i] = 1, 1
			case 1:
				c[i] = float32(math.Inf(-1))
			case 2:
				u[i] = float32(math.NaN())
			}
		}
		k := 1 + r.IntN(n)
		s := 1 + 9*r.Float64()
		seed := r.Uint64()
		want := Options{}.pick(CFGSubset(c, u, s), Sampling{TopK: k, TopP: 1, Temperature: 1}, rand.New(rand.NewPCG(seed, 1)))
		got := sampleCFGTopK(c, u, s, k, rand.New(rand.NewPCG(seed, 1)))
		if got != want {
			t.Fatalf("trial %d (n %d, k %d): fused drew %d, unfused %d", trial, n, k, got, want)
		}
	}
}

// pickVisual takes the fused path only where it is exact; elsewhere it is the
// unfused one (temperature, top-p, greedy).
func TestPickVisualSettings(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	c, u := make([]float32, 4096), make([]float32, 4096)
	for i := range c {
		c[i], u[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	for _, o := range []Options{
		{CFG: 3, Image: Sampling{TopK: 100, TopP: 1, Temperature: 1}},
		{CFG: 3, Image: Sampling{TopK: 100, TopP: 0.8, Temperature: 1}},
		{CFG: 3, Image: Sampling{TopK: 100, TopP: 1, Temperature: 0.7}},
		{CFG: 3, Image: Sampling{TopK: 0, TopP: 1, Temperature: 1}},
		{CFG: 3, Greedy: true, Image: Sampling{TopK: 100, TopP: 1, Temperature: 1}},
	} {
		for seed := uint64(0); seed < 20; seed++ {
			want := o.pick(CFGSubset(c, u, o.CFG), o.Image, rand.New(rand.NewPCG(seed, 2)))
			if got := o.pickVisual(c, u, rand.New(rand.NewPCG(seed, 2))); got != want {
				t.Fatalf("%+v seed %d: pickVisual %d, pick %d", o, seed, got, want)
			}
		}
	}
}
