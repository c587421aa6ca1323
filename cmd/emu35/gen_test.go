package main

import (
	"testing"

	"github.com/emu35/emu35/model"
	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk/ops"
	"github.com/emu35/emu35/vq"
)

// A q4 t2i run of one 1024² image is admitted on a 24 GiB card (92 % usable),
// because the LM is freed before decoding; with the live window, whose previews
// decode beside the LM, it is not, and the int8 KV cache shrinks what it needs.
func TestReserveOn24GiB(t *testing.T) {
	cfg := model.Emu35()
	weights := lm.WeightBytes(cfg, quant.Q4)
	vqWork := (&vq.Model{Cfg: vq.Emu35()}).WorkBytes(64, 64)
	const vqWeights = 3 << 28 // f16, decoder only (0.75 GiB reserved)
	avail := int64(24<<30) * 92 / 100
	kv := func(q8 bool) int64 {
		return int64(cfg.Layers) * ops.KVBytes(q8, 2, cfg.KVHeads, 5120+512, cfg.HeadDim)
	}
	if need := weights + reserveBytes(kv(false), vqWeights, vqWork, false, true); need > avail {
		t.Errorf("t2i q4 needs %.2f GiB, more than %.2f", float64(need)/(1<<30), float64(avail)/(1<<30))
	}
	q8 := weights + reserveBytes(kv(true), vqWeights, vqWork, false, true)
	f16 := weights + reserveBytes(kv(false), vqWeights, vqWork, false, true)
	if q8 >= f16 {
		t.Errorf("the int8 cache needs %d bytes, f16 %d", q8, f16)
	}
	if need := weights + reserveBytes(kv(false), vqWeights, vqWork, true, true); need <= avail {
		t.Errorf("with --view t2i q4 was admitted at %.2f GiB", float64(need)/(1<<30))
	}
	if kept := reserveBytes(kv(true), vqWeights, vqWork, false, false); kept < vqWeights+vqWork {
		t.Errorf("with the LM kept, the decoding phase (%d bytes) is not reserved: %d", vqWeights+vqWork, kept)
	}
}
