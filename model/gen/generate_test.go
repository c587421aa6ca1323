package gen

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/emu35/emu35/model"
	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/model/quant"
	tk "github.com/emu35/emu35/model/tokenizer"
	"github.com/emu35/emu35/vk/vktest"
	"github.com/emu35/emu35/vq"
)

// tinyLM is a random-weight model with Emu3.5's vocabulary (every special and
// visual id exists) and small layers.
func tinyLM(t *testing.T) *lm.Model {
	d := vktest.Device(t)
	cfg := model.Emu35()
	cfg.HiddenSize, cfg.IntermediateSize, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.HeadDim = 64, 128, 1, 2, 1, 64
	m, err := lm.NewSynthetic(context.Background(), d, cfg, quant.BF16, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// t2iPair is a t2i prompt's conditional and unconditional ids and a session of
// maxT positions for them on tinyLM.
func t2iPair(t *testing.T, prompt string, maxT int) (cond, uncond []int32, s *lm.Session) {
	cond, uncond, err := Prompts(tk.Synthetic(), "t2i", prompt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = tinyLM(t).NewSession(2, maxT, 64); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return cond, uncond, s
}

// generate is Generate, failing the test on an error.
func generate(t *testing.T, s *lm.Session, cond, uncond []int32, o Options) *Result {
	t.Helper()
	r, err := Generate(context.Background(), s, cond, uncond, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// imageOptions are a t2i run's options for an image of grid r: CFG 3, image
// top-k k, text top-k 10 and top-p 0.9, stopping at the image's end.
func imageOptions(r Ratio, k, maxNew int, seed uint64) Options {
	return Options{Preset: &r, CFG: 3, Image: Sampling{TopK: k, TopP: 1, Temperature: 1},
		Text: Sampling{TopK: 10, TopP: 0.9, Temperature: 1}, MaxNewTokens: maxNew, Seed: seed, ImageFirst: true, StopAtEOI: true}
}

// Generation follows the structure rules, repeats with the same seed, and a
// cancellation inside an image keeps the finished rows.
func TestGenerateAndCancel(t *testing.T) {
	tok := tk.Synthetic()
	cond, uncond, s := t2iPair(t, "a cat", 200)
	o := imageOptions(Ratio{3, 5}, 100, 60, 9)
	a, err := Generate(context.Background(), s, cond, uncond, o, nil)
	if err != nil || a.Reason != "eoi" {
		t.Fatalf("%v %+v", err, a)
	}
	b, _ := Generate(context.Background(), s, cond, uncond, o, nil)
	for i := range a.IDs {
		if a.IDs[i] != b.IDs[i] {
			t.Fatal("the same seed gave another sequence")
		}
	}
	items, err := Parse(tok, a.IDs)
	if err != nil || len(items) != 1 || items[0].H != 3 || items[0].W != 5 || items[0].Partial {
		t.Fatalf("items %+v %v", items, err)
	}
	// Cancel after the second row's EOL: two finished rows remain.
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Generate(ctx, s, cond, uncond, o, func(e Event) {
		if e.RowsDone == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	items, _ = Parse(tok, c.IDs)
	if len(items) != 1 || !items[0].Partial || items[0].H != 2 || items[0].W != 5 {
		t.Fatalf("partial image %+v", items)
	}
}

// Visual tokens drawn from the GPU's top-k selection are the ones the host
// sampler draws from the same logits, so a seed gives the same image either way.
func TestGPUSelectMatchesHost(t *testing.T) {
	cond, uncond, s := t2iPair(t, "a red fox", 300)
	o := imageOptions(Ratio{8, 9}, 700, 120, 4)
	gpu := generate(t, s, cond, uncond, o)
	o.HostSampling = true
	host := generate(t, s, cond, uncond, o)
	if host.GPUSelected != 0 || gpu.GPUSelected < 8*9-2 {
		t.Fatalf("GPU selected %d tokens (host run %d) of an 8×9 image", gpu.GPUSelected, host.GPUSelected)
	}
	if len(gpu.IDs) != len(host.IDs) {
		t.Fatalf("%d tokens with GPU selection, %d without", len(gpu.IDs), len(host.IDs))
	}
	for i := range gpu.IDs {
		if gpu.IDs[i] != host.IDs[i] {
			t.Fatalf("token %d: %d with GPU selection, %d without", i, gpu.IDs[i], host.IDs[i])
		}
	}
	// A pass asked to draw that gives logits instead (here: a device without
	// f64) leaves the draw to the host with the uniform drawn for the GPU.
	o.HostSampling = false
	caps := s.Model().D.Caps
	defer func(f bool) { caps.Float64 = f }(caps.Float64)
	caps.Float64 = false
	fallback := generate(t, s, cond, uncond, o)
	if fallback.GPUSelected != 0 || !slices.Equal(fallback.IDs, host.IDs) {
		t.Fatalf("the host's draws with the GPU's uniforms (%d drawn on the GPU) gave other tokens", fallback.GPUSelected)
	}
}

// twoLayerPair is a t2i prompt's conditional and unconditional ids and a session
// of 200 positions on a two-layer random model of format f.
func twoLayerPair(t *testing.T, f quant.Format, seed uint32, prompt string) (cond, uncond []int32, s *lm.Session) {
	d := vktest.Device(t)
	cfg := model.Emu35()
	cfg.HiddenSize, cfg.IntermediateSize, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.HeadDim = 64, 128, 2, 2, 1, 64
	m, err := lm.NewSynthetic(context.Background(), d, cfg, f, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if cond, uncond, err = Prompts(tk.Synthetic(), "t2i", prompt, nil); err != nil {
		t.Fatal(err)
	}
	if s, err = m.NewSession(2, 200, 64); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return cond, uncond, s
}

// A row's last visual token and its forced EOL go through the model in one
// pass, which changes no token: the same seed gives the same image as feeding
// every token on its own, with float and q4 weights (the latter's decode steps
// use the fused q8_1 norms and the int8 cache).
func TestPairedForcedTokens(t *testing.T) {
	for _, f := range []quant.Format{quant.BF16, quant.Q4} {
		cond, uncond, s := twoLayerPair(t, f, 5, "a blue bird")
		o := imageOptions(Ratio{6, 7}, 300, 100, 11)
		paired := generate(t, s, cond, uncond, o)
		o.OneByOne = true
		single := generate(t, s, cond, uncond, o)
		// A token whose successor is forced waits for it, two tokens a pass at
		// most (the EOI that ends the run is not fed): the first 5 rows' EOLs
		// (the last row ends in EOI) and the header's forced size tokens.
		want, pend := 0, 0
		st := NewStructure(o.Preset, uncond)
		for _, id := range single.IDs[:len(single.IDs)-1] {
			st.Observe(id)
			if pend++; st.Next().Kind == Forced && pend < 2 {
				continue
			}
			want, pend = want+pend-1, 0
		}
		if paired.Paired != want || want < 5 || single.Paired != 0 {
			t.Fatalf("%s: %d tokens paired (%d one by one), want %d: the rows' EOLs and the header's", f, paired.Paired, single.Paired, want)
		}
		if !slices.Equal(paired.IDs, single.IDs) || paired.Reason != "eoi" {
			t.Fatalf("%s: paired forced tokens gave %v (%s), one by one %v", f, paired.IDs, paired.Reason, single.IDs)
		}
	}
}

// The howto prompt tokenises as the reference does (reference-spec §2.3).
func TestPromptIDs(t *testing.T) {
	dir := fixturesDir(t)
	tok, err := tk.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cond, uncond, _ := Prompts(tok, "howto", "How to cook Shrimp, Celery, and Pork Dumplings.", nil)
	want := []int32{151849, 2610, 525, 264, 10950, 17847, 369, 1246, 983, 3383, 13, 5209, 6923, 264, 2033, 448, 94968, 4141, 1467, 323,
		5335, 13, 13872, 25, 2585, 311, 4296, 1417, 43894, 11, 46543, 722, 11, 323, 83934, 63982, 80302, 13, 35560, 3846, 2821, 25, 220, 151746}
	if len(cond) != len(want) {
		t.Fatalf("%v", cond)
	}
	for i := range want {
		if cond[i] != want[i] {
			t.Fatalf("id %d: %d, want %d", i, cond[i], want[i])
		}
	}
	if len(uncond) != 16 || uncond[9] != 220 {
		t.Fatalf("uncond %v", uncond)
	}
}

// What the viewer does: VQ decodes on another goroutine while generation
// records and submits on the same device (each recorder has its own command
// pool, the queue is locked). Run with -race to check the sharing.
func TestConcurrentDecode(t *testing.T) {
	m := tinyLM(t)
	vc := vq.Emu35()
	vc.EmbedDim, vc.ZChannels, vc.Ch, vc.ChMult, vc.NumResBlocks, vc.AttnResolutions, vc.Resolution = 8, 32, 32, []int{1, 1, 1, 1, 1}, 1, []int{4}, 64
	v, err := vq.NewSynthetic(m.D, vc, vq.Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	tok := tk.Synthetic()
	cond, uncond, _ := Prompts(tok, "t2i", "a cat", nil)
	s, err := m.NewSession(2, 200, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := Options{Preset: &Ratio{4, 4}, CFG: 3, Image: Sampling{TopK: 100, TopP: 1, Temperature: 1}, MaxNewTokens: 40, Seed: 1, ImageFirst: true, StopAtEOI: true}
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 3; i++ {
			if _, err := v.Decode(context.Background(), []int32{1, 2, 3, 4, 5, 6}, 2, 3); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	res, err := Generate(context.Background(), s, cond, uncond, o, nil)
	if err != nil || res.Reason != "eoi" {
		t.Fatalf("%v %+v", err, res)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Passes started before the host has read the GPU's draw they feed (chained,
// lm.Session.Start) give the tokens that passes waited for one at a time give:
// every visual pass but the first chained, with float and q4 weights, paired
// forced tokens or not; failed draws (a NaN guidance scale for some of them)
// dropping the pass started after them; a cancellation keeping the finished rows and leaving the
// session usable.
func TestChainedPasses(t *testing.T) {
	for _, f := range []quant.Format{quant.BF16, quant.Q4} {
		cond, uncond, s := twoLayerPair(t, f, 7, "a green frog")
		s.PrepareDraws(tk.BOV, s.Model().Cfg.VocabSize)
		if err := s.WaitDraws(context.Background()); err != nil {
			t.Fatal(err)
		}
		const h, w = 5, 6
		for _, c := range []struct {
			name     string
			cfg      float64
			oneByOne bool
			chained  int // passes chained (one by one, a row's last token is fed alone, and not chained: the pass after it draws nothing)
		}{{"paired", 3, false, h*w - 1}, {"one by one", 3, true, h * (w - 1)}, {"failed draws", 3, false, -1}} {
			o := imageOptions(Ratio{h, w}, 300, 100, 13)
			o.CFG, o.OneByOne = c.cfg, c.oneByOne
			fails := func(j int) bool { return j%6 == 1 && j > 12 && j < 50 }
			if c.chained < 0 {
				// Some draws fail: each drops the pass chained after it and
				// runs its own pass again, so the next is not chained; the
				// host draws those tokens, as the GPU would have.
				o.drawScale = func(j int) float64 {
					if fails(j) {
						return math.NaN()
					}
					return o.CFG
				}
			}
			chained := generate(t, s, cond, uncond, o)
			o.NoChain, o.drawScale = true, nil
			plain := generate(t, s, cond, uncond, o)
			if c.chained < 0 {
				c.chained = h*w - 1
				for j, id := range plain.IDs {
					if fails(j) && id >= tk.BOV { // (a forced EOL is not drawn)
						c.chained--
					}
				}
				if c.chained > h*w-4 {
					t.Fatalf("%d visual draws fail, want three or more", h*w-1-c.chained)
				}
			}
			if !slices.Equal(chained.IDs, plain.IDs) || chained.Reason != "eoi" {
				t.Fatalf("%s, %s: chained passes gave %v (%s), one at a time %v", f, c.name, chained.IDs, chained.Reason, plain.IDs)
			}
			if chained.Chained != c.chained || plain.Chained != 0 {
				t.Fatalf("%s, %s: %d passes chained (%d without), want %d", f, c.name, chained.Chained, plain.Chained, c.chained)
			}
		}
		o := imageOptions(Ratio{h, w}, 300, 100, 13)
		whole := generate(t, s, cond, uncond, o)
		ctx, cancel := context.WithCancel(context.Background())
		part, err := Generate(ctx, s, cond, uncond, o, func(e Event) {
			if e.RowsDone == 2 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) || !slices.Equal(part.IDs, whole.IDs[:len(part.IDs)]) {
			t.Fatalf("%s: cancelled: %v, %d tokens, not the first of the whole run's", f, err, len(part.IDs))
		}
		items, _ := Parse(tk.Synthetic(), part.IDs)
		if len(items) != 1 || !items[0].Partial || items[0].H != 2 {
			t.Fatalf("%s: cancelled run's image %+v", f, items)
		}
		if again := generate(t, s, cond, uncond, o); !slices.Equal(again.IDs, whole.IDs) {
			t.Fatalf("%s: the session gave other tokens after a cancelled run", f)
		}
	}
}
