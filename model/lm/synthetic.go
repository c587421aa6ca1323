package lm

import (
	"context"

	"github.com/emu35/emu35/model"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
)

// NewSynthetic builds a model of configuration cfg with random weights made on
// the GPU in format f (nothing is read or uploaded): for benchmarks at the real
// dimensions on machines without the 68 GB checkpoint. Its outputs are noise.
func NewSynthetic(ctx context.Context, d *vk.Device, cfg model.Config, f quant.Format, seed uint32) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := alloc(d, cfg, f)
	if err != nil {
		return nil, err
	}
	c, err := d.NewCmd()
	if err != nil {
		m.Close()
		return nil, err
	}
	defer c.Release()
	ones := func(r vk.Range) { m.O.Fill(c, r, seed, 0x001FFFFF, 0x3F800000) } // [1, 1.25)
	m.embed = syntheticEmbed{uint64(seed), cfg.HiddenSize}
	m.O.RandomWeight(c, m.head, seed+1)
	ones(m.norm)
	for i, l := range m.layers {
		s := seed + 16*uint32(i+1)
		m.O.RandomWeight(c, l.qkv, s)
		m.O.RandomWeight(c, l.o, s+1)
		m.O.RandomWeight(c, l.gateUp, s+2)
		m.O.RandomWeight(c, l.down, s+3)
		for _, r := range []vk.Range{l.attnNorm, l.mlpNorm, l.qNorm, l.kNorm} {
			ones(r)
		}
		if i%8 == 7 {
			if err := c.Submit(ctx); err != nil {
				m.Close()
				return nil, err
			}
		}
	}
	if err := c.Submit(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// SyntheticConfig names the synthetic configurations `--model synthetic:NAME` accepts.
func SyntheticConfig(name string) (model.Config, bool) {
	switch name {
	case "emu3.5", "emu35":
		return model.Emu35(), true
	case "tiny":
		c := model.Emu35()
		c.VocabSize, c.HiddenSize, c.IntermediateSize, c.Layers, c.Heads, c.KVHeads = 2048, 256, 704, 2, 4, 2
		return c, true
	}
	return model.Config{}, false
}
