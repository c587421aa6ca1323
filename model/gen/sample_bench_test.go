package gen

import (
	"math/rand/v2"
	"testing"
)

// The host-side work of one visual token: CFG over the 131,072 visual logits,
// image top-k (5120), and the draw.
func BenchmarkVisualSample(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	c, u := make([]float32, 131072), make([]float32, 131072)
	for i := range c {
		c[i], u[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	o := Options{CFG: 5, Image: Sampling{TopK: 5120, TopP: 1, Temperature: 1}}
	b.Run("fused", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			o.pickVisual(c, u, r)
		}
	})
	b.Run("unfused", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			o.pick(CFGSubset(c, u, o.CFG), o.Image, r)
		}
	})
}
