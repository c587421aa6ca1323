package gen

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/emu35/emu35/model/cpu"
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

// The host's draw among 5120 survivors (the GPU draws when it selects; the
// host does with --host-sampling or without f64), back to back and after the
// host has idled for a decode step's time, as between tokens.
func BenchmarkDrawVals(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	idx, val := make([]int32, 5120), make([]float32, 5120)
	for i := range idx {
		idx[i], val[i] = int32(i), float32(5*r.NormFloat64())
	}
	for _, idle := range []time.Duration{0, 10 * time.Millisecond} {
		b.Run(fmt.Sprintf("idle=%v", idle), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if idle > 0 {
					b.StopTimer()
					time.Sleep(idle)
					b.StartTimer()
				}
				cpu.Draw(idx, val, r.Float64())
			}
		})
	}
}
