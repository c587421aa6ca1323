package lm

import (
	"context"
	"math"
	"testing"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/model/safetensors"
)

// The embedding is read on the host: the device holds only what WeightBytes
// counts (no [V, H] table), and the rows are the checkpoint's exact values.
func TestEmbedOnHost(t *testing.T) {
	dir := fixture(t)
	d := device(t)
	for _, f := range []quant.Format{quant.BF16, quant.Q8_0, quant.Q4} {
		m, err := Load(context.Background(), d, dir, Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		used, want := m.arena.Used(), uint64(WeightBytes(m.Cfg, f))
		c := m.Cfg
		if used > want+uint64(4096*(4*c.Layers+4)) { // per-buffer alignment slack
			t.Errorf("%s: %d device bytes, WeightBytes says %d", f, used, want)
		}
		set, err := safetensors.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		all, err := set.Tensors["model.embed_tokens.weight"].F32()
		if err != nil {
			t.Fatal(err)
		}
		ids := []int32{0, 7, int32(c.VocabSize - 1)}
		got := make([]float32, len(ids)*c.HiddenSize)
		m.embed.rows(ids, got)
		for i, id := range ids {
			for j := 0; j < c.HiddenSize; j++ {
				if g, w := got[i*c.HiddenSize+j], all[int(id)*c.HiddenSize+j]; g != w {
					t.Fatalf("%s: row %d [%d] = %g, the checkpoint has %g", f, id, j, g, w)
				}
			}
		}
		set.Close()
		m.Close()
	}
}

// Synthetic rows depend only on (seed, id), lie in ±[2⁻⁷, 2⁻⁶), and differ
// between ids and seeds.
func TestSyntheticEmbed(t *testing.T) {
	e := syntheticEmbed{seed: 7, h: 256}
	a, b := make([]float32, 2*256), make([]float32, 256)
	e.rows([]int32{5, 6}, a)
	e.rows([]int32{5}, b)
	neg := 0
	for j := range b {
		if a[j] != b[j] {
			t.Fatalf("row 5 [%d]: %g then %g", j, a[j], b[j])
		}
		if m := math.Abs(float64(b[j])); m < 1.0/128 || m >= 1.0/64 {
			t.Fatalf("value %g outside ±[2⁻⁷, 2⁻⁶)", b[j])
		}
		if b[j] < 0 {
			neg++
		}
	}
	if neg < 96 || neg > 160 {
		t.Errorf("%d of 256 values negative", neg)
	}
	same := 0
	c := make([]float32, 256)
	syntheticEmbed{seed: 8, h: 256}.rows([]int32{5}, c)
	for j := range b {
		if a[256+j] == b[j] || c[j] == b[j] {
			same++
		}
	}
	if same > 4 {
		t.Errorf("%d equal values between different ids or seeds", same)
	}
}
