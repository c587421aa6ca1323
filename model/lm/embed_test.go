package lm

import (
	"context"
	"math"
	"testing"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/model/safetensors"
)

// The embedding is read on the host: the device holds only what WeightBytes
// counts (no [V, H] table), the rows are the checkpoint's exact values, and a
// loaded model reads the table ahead in the background until it is closed.
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
		if m.stopReadAhead == nil {
			t.Errorf("%s: no read-ahead of the embedding table started", f)
		}
		m.Close()
		m.Close() // again: nothing left to stop or free
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

// Rows looked up over several goroutines are the rows looked up in one.
func TestEmbedRowsPar(t *testing.T) {
	e := syntheticEmbed{seed: 3, h: 64}
	ids := make([]int32, 3*embedRun+17)
	for i := range ids {
		ids[i] = int32((i * 7919) % 100000)
	}
	one, par := make([]float32, len(ids)*64), make([]float32, len(ids)*64)
	e.rows(ids, one)
	embedRowsPar(e, ids, par)
	for i := range one {
		if one[i] != par[i] {
			t.Fatalf("value %d (row %d): %g in one pass, %g spread", i, i/64, one[i], par[i])
		}
	}
}

// BenchmarkEmbedRows looks up a 2 × 4096-token prefill's rows at Emu3.5's width.
func BenchmarkEmbedRows(b *testing.B) {
	e := syntheticEmbed{seed: 1, h: 5120}
	ids := make([]int32, 8192)
	for i := range ids {
		ids[i] = int32(i * 31)
	}
	dst := make([]float32, len(ids)*5120)
	for _, par := range []bool{false, true} {
		b.Run(map[bool]string{false: "one", true: "spread"}[par], func(b *testing.B) {
			for range b.N {
				if par {
					embedRowsPar(e, ids, dst)
				} else {
					e.rows(ids, dst)
				}
			}
		})
	}
}
