package vq

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/model/fixtures"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/vktest"
)

func device(t *testing.T) *vk.Device { return vktest.Device(t) }

func loadGolden(t *testing.T, dir string) fixtures.Golden { return fixtures.LoadGolden(t, dir) }

// Decoder and encoder against the reference, from both checkpoint forms.
func TestParity(t *testing.T) {
	dir := fixture(t)
	d := device(t)
	g := loadGolden(t, dir)
	ctx := context.Background()
	// The research form: a directory with only config.yaml and model.ckpt.
	research := t.TempDir()
	for _, f := range []string{"config.yaml", "model.ckpt"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(research, f), b, 0o644)
	}
	for _, src := range []string{dir, research} {
		m, err := Load(d, src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		codes := g.I32(t, "codes")
		px, err := m.Decode(ctx, codes, 4, 5)
		if err != nil {
			t.Fatal(err)
		}
		e := cpu.NMSE(px, g.F32(t, "decoded"))
		t.Logf("%s: decode NMSE %.3g", filepath.Base(src), e)
		if !(e <= 1e-4) {
			t.Errorf("decode NMSE %.3g > 1e-4", e)
		}
		got, z, err := m.Encode(ctx, g.F32(t, "encode_input"), 64, 80)
		if err != nil {
			t.Fatal(err)
		}
		ez := cpu.NMSE(z, g.F32(t, "encode_z"))
		t.Logf("encode z NMSE %.3g", ez)
		if !(ez <= 1e-4) {
			t.Errorf("encode z NMSE %.3g", ez)
		}
		want, margin := g.I32(t, "encode_codes"), g.F32(t, "encode_top2_margin")
		for i := range want {
			if got[i] != want[i] && margin[i] > 1e-3 {
				t.Errorf("code %d: %d, want %d (margin %.3g)", i, got[i], want[i], margin[i])
			}
		}
		if _, err := m.Decode(ctx, []int32{1, 2, 512}, 1, 3); err == nil {
			t.Error("an out-of-range code was accepted")
		}
		if _, err := m.Decode(ctx, []int32{1, 2}, 1, 3); err == nil {
			t.Error("a wrong grid was accepted")
		}
		if _, _, err := m.Encode(ctx, make([]float32, 3*60*80), 60, 80); err == nil {
			t.Error("an image whose height is not a multiple of 16 was accepted")
		}
		m.Close()
	}
}

// The real configuration's activation memory at 1024² (64×64 codes): three
// buffers of 256 channels × 1024² and a side buffer of a quarter of that.
func TestWorkBytes(t *testing.T) {
	m := &Model{Cfg: Emu35()}
	big, side := m.maxCHW(64, 64), m.sideCHW(64, 64)
	if big != 256*1024*1024 || side != big/4 {
		t.Fatalf("maxCHW %d, sideCHW %d", big, side)
	}
}

// A decode-only model holds less, decodes exactly as the whole one, and says
// so when asked to encode.
func TestDecodeOnly(t *testing.T) {
	d := device(t)
	c := Emu35()
	c.EmbedDim, c.ZChannels, c.Ch, c.ChMult, c.NumResBlocks, c.AttnResolutions, c.Resolution = 8, 32, 32, []int{1, 2}, 1, []int{2}, 16
	c.CodebookSize = 64
	full, err := NewSynthetic(d, c, Options{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	dec, err := NewSynthetic(d, c, Options{DecodeOnly: true}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	if dec.arena.Used() >= full.arena.Used() {
		t.Fatalf("decode-only holds %d bytes, the whole model %d", dec.arena.Used(), full.arena.Used())
	}
	codes := make([]int32, 3*4)
	for i := range codes {
		codes[i] = int32(i*7) % 64
	}
	ctx := context.Background()
	a, err := full.Decode(ctx, codes, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dec.Decode(ctx, codes, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("pixel %d: %g decode-only, %g whole", i, b[i], a[i])
		}
	}
	// Concurrent decodes (the viewer's previews beside gen's own) take turns
	// and give the same pixels.
	var wg sync.WaitGroup
	outs := make([][]float32, 4)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _ = dec.Decode(ctx, codes, 3, 4)
		}()
	}
	wg.Wait()
	for i, o := range outs {
		if len(o) != len(a) {
			t.Fatalf("concurrent decode %d gave %d values", i, len(o))
		}
		for j := range o {
			if o[j] != a[j] {
				t.Fatalf("concurrent decode %d, pixel %d: %g, alone %g", i, j, o[j], a[j])
			}
		}
	}
	px := make([]float32, 3*2*2*4)
	if _, _, err := dec.Encode(ctx, px, 4, 4); err == nil {
		t.Fatal("a decode-only model encoded")
	}
	if _, _, err := full.Encode(ctx, px, 4, 4); err != nil {
		t.Fatal(err)
	}
}

// Warm decodes (gen runs it beside the LM) and keeps no memory; Close waits
// for a decode in flight and a later decode says the model is closed.
func TestWarmThenClose(t *testing.T) {
	m := tinyDecoder(t, 2)
	if err := m.Warm(context.Background()); err != nil || m.workMem != nil {
		t.Fatalf("warm: %v, memory kept: %v", err, m.workMem != nil)
	}
	done := make(chan error)
	go func() { done <- m.Warm(context.Background()) }()
	m.Close()
	if err := <-done; err != nil && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("warm beside close: %v", err)
	}
	if _, err := m.Decode(context.Background(), make([]int32, 4), 2, 2); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("decode after close: %v", err)
	}
}

// ProfileDecode times every op by kind and grid.
func TestProfileDecode(t *testing.T) {
	m := tinyDecoder(t, 8)
	defer m.Close()
	codes := make([]int32, 3*4)
	prof, err := m.ProfileDecode(context.Background(), codes, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range prof {
		if p.NS <= 0 {
			t.Errorf("%s took %g ns", p.Op, p.NS)
		}
		seen[p.Op] = p.Count
	}
	// One level of upsampling: the codes' grid 4×3 and the pixels' 8×6.
	for _, op := range []string{"codebook 4x3", "conv3x3 4x3", "attention 4x3", "upsample+conv3x3 8x6", "conv3x3 8x6", "conv3x3 out 8x6", "groupnorm+swish 8x6"} {
		if seen[op] == 0 {
			t.Errorf("no %q in the profile %v", op, seen)
		}
	}
}

// Runs keep their activations' memory for the next run (workMem): a repeated
// decode reuses it and matches the first, a larger grid or ReleaseWork starts
// afresh, and nothing of one run leaks into the next.
func TestWorkReuse(t *testing.T) {
	m := tinyDecoder(t, 2)
	defer m.Close()
	ctx := context.Background()
	codes := make([]int32, 3*4)
	for i := range codes {
		codes[i] = int32(7 * i % m.Cfg.CodebookSize)
	}
	first, err := m.Decode(ctx, codes, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	kept := m.workMem
	if kept == nil || kept.Reserved() == 0 {
		t.Fatal("the decode kept no memory for the next")
	}
	check := func(what string) {
		t.Helper()
		px, err := m.Decode(ctx, codes, 3, 4)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(px, first) {
			t.Errorf("%s: the decode differs from the first", what)
		}
	}
	check("reusing the memory")
	if _, err := m.Decode(ctx, make([]int32, 6*8), 6, 8); err != nil { // other buffers in the same memory
		t.Fatal(err)
	}
	check("after a larger grid")
	if m.workMem != kept {
		t.Error("decodes that fit the kept memory did not reuse it")
	}
	m.ReleaseWork()
	if m.workMem != nil {
		t.Errorf("ReleaseWork kept %d bytes", m.workMem.Reserved())
	}
	check("after ReleaseWork")
}

// tinyDecoder is a decode-only synthetic tokenizer of two levels (resolution
// 16), with attention at resolution attnRes.
func tinyDecoder(t *testing.T, attnRes int) *Model {
	c := Emu35()
	c.EmbedDim, c.ZChannels, c.Ch, c.ChMult, c.NumResBlocks, c.AttnResolutions, c.Resolution = 8, 32, 32, []int{1, 2}, 1, []int{attnRes}, 16
	c.CodebookSize = 64
	m, err := NewSynthetic(device(t), c, Options{DecodeOnly: true}, 3)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
