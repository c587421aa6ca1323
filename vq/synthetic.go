package vq

import (
	"hash/fnv"
	"math"
	"strings"

	"github.com/emu35/emu35/vk"
)

// NewSynthetic builds a vision tokenizer of configuration cfg with random
// weights (scaled by 1/√fan-in so activations stay in range; GroupNorm scales 1,
// biases 0): for benchmarks at the real size without the checkpoint.
func NewSynthetic(d *vk.Device, cfg Config, o Options, seed uint64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	shapes := map[string][]int{}
	for _, s := range cfg.Tensors() {
		shapes[s.Name] = s.Shape
	}
	var state uint64
	rnd := func() float32 { // xorshift64*, uniform in [-1, 1)
		state ^= state >> 12
		state ^= state << 25
		state ^= state >> 27
		return float32(int64(state*2685821657736338717)>>11) / float32(1<<52)
	}
	return build(d, cfg, o, func(name string) []float32 {
		h := fnv.New64a() // each tensor's values depend on its name, not on the load order
		h.Write([]byte(name))
		state = (seed ^ h.Sum64()) | 1
		shape := shapes[name]
		n := 1
		for _, v := range shape {
			n *= v
		}
		x := make([]float32, n)
		switch {
		case strings.HasSuffix(name, ".bias"):
		case len(shape) == 1: // GroupNorm scale
			for i := range x {
				x[i] = 1
			}
		default:
			fan := float32(n / shape[0])
			s := float32(math.Sqrt(3 / float64(fan)))
			for i := range x {
				x[i] = rnd() * s
			}
		}
		return x
	})
}
