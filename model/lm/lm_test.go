package lm

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/model/fixtures"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/vktest"
)

func fixture(t *testing.T) string { return fixtures.Dir(t, "lm-tiny") }

func device(t *testing.T) *vk.Device { return vktest.Device(t) }

type golden = fixtures.Golden

func loadGolden(t *testing.T, dir string) golden { return fixtures.LoadGolden(t, dir) }

func flat(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

func nmse(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	e := cpu.NMSE(got, want)
	t.Logf("%s: NMSE %.3g", what, e)
	if !(e <= tol) {
		t.Errorf("%s: NMSE %.3g > %.3g", what, e, tol)
	}
}

// Parity with the reference on lm-tiny: prefill, captures, decode through the
// KV cache, greedy ids, the CFG pair batched, chunked prefill, logit ranges.
func TestParity(t *testing.T) {
	dir := fixture(t)
	d := device(t)
	g := loadGolden(t, dir)
	ctx := context.Background()
	prompt, dec, unc := g.I32(t, "prompt_ids"), g.I32(t, "decode_ids"), g.I32(t, "uncond_ids")
	for _, tc := range []struct {
		f        quant.Format
		tol      float64
		maxRows  int
		checkIDs bool
		kv8      bool // int8 KV cache
		f16act   bool // f16 activations into the prefill's products (the default with tensor cores)
	}{
		{quant.BF16, 1e-4, 64, true, false, false}, {quant.BF16, 1e-4, 16, true, false, false}, {quant.Q8_0, 2e-3, 64, false, false, false},
		{quant.Q4, 5e-2, 64, false, false, false}, {quant.BF16, 1e-3, 16, false, true, false}, {quant.BF16, 1e-4, 64, false, false, true},
		{quant.Q8_0, 2e-3, 64, false, true, false}, // (q8 weights with --kv q8: the error the int8 cache adds to q8_0's)
	} {
		name := tc.f.String()
		m, err := Load(ctx, d, dir, Options{Format: tc.f})
		if err != nil {
			t.Fatal(err)
		}
		if m.KVQ8 = tc.kv8; tc.kv8 {
			name += " kv q8"
		}
		if m.F16Act = tc.f16act; tc.f16act {
			name += " f16 activations"
		}
		s, err := m.NewSession(2, 64, tc.maxRows)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Forward(ctx, Request{Inputs: []Input{{0, prompt}}, Logits: LogitsAll,
			CaptureLayer0: tc.maxRows >= len(prompt), CaptureFinalNorm: tc.maxRows >= len(prompt)})
		if err != nil {
			t.Fatal(err)
		}
		nmse(t, name+" prefill logits", flat(r.Logits[0]), g.F32(t, "prefill_logits"), tc.tol)
		if r.Layer0 != nil {
			nmse(t, name+" hidden after layer 0", flat(r.Layer0), g.F32(t, "hidden_after_layer0"), tc.tol)
			nmse(t, name+" final norm", flat(r.FinalNorm), g.F32(t, "final_norm_out"), tc.tol)
		}
		var dl [][]float32
		for _, id := range dec {
			r, err := s.Forward(ctx, Request{Inputs: []Input{{0, []int32{id}}}})
			if err != nil {
				t.Fatal(err)
			}
			dl = append(dl, r.Logits[0][0])
		}
		nmse(t, name+" decode logits", flat(dl), g.F32(t, "decode_logits"), tc.tol)

		// The CFG pair batched: both prompts in one pass, then decode steps for both.
		s.Reset()
		r, err = s.Forward(ctx, Request{Inputs: []Input{{0, prompt}, {1, unc}}, Logits: LogitsAll})
		if err != nil {
			t.Fatal(err)
		}
		nmse(t, name+" batched prompt", flat(r.Logits[0]), g.F32(t, "prefill_logits"), tc.tol)
		nmse(t, name+" batched uncond", flat(r.Logits[1]), g.F32(t, "uncond_logits"), tc.tol)
		dl = nil
		for i, id := range dec {
			r, err := s.Forward(ctx, Request{Inputs: []Input{{0, []int32{id}}, {1, []int32{unc[i]}}}})
			if err != nil {
				t.Fatal(err)
			}
			dl = append(dl, r.Logits[0][0])
		}
		nmse(t, name+" batched decode", flat(dl), g.F32(t, "decode_logits"), tc.tol)

		if tc.checkIDs {
			s.Reset()
			want := g.I32(t, "greedy_ids")
			r, err = s.Forward(ctx, Request{Inputs: []Input{{0, prompt}}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				id := argmax(r.Logits[0][0])
				if id != want[i] {
					t.Fatalf("%s greedy id %d: %d, want %d", name, i, id, want[i])
				}
				if r, err = s.Forward(ctx, Request{Inputs: []Input{{0, []int32{id}}}}); err != nil {
					t.Fatal(err)
				}
			}
			// A restricted logit range equals that slice of the full logits.
			s.Reset()
			full, _ := s.Forward(ctx, Request{Inputs: []Input{{0, prompt[:9]}}})
			s.Reset()
			part, err := s.Forward(ctx, Request{Inputs: []Input{{0, prompt[:9]}}, Lo: 1000, Hi: 1500})
			if err != nil {
				t.Fatal(err)
			}
			nmse(t, name+" logit range", part.Logits[0][0], full.Logits[0][0][1000:1500], 1e-12)
		}
		s.Close()
		m.Close()
	}
}

// tinySession is a session of seqs sequences × maxT positions on lm-tiny in bf16.
func tinySession(t *testing.T, seqs, maxT int) *Session {
	m, err := Load(context.Background(), device(t), fixture(t), Options{Format: quant.BF16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	s, err := m.NewSession(seqs, maxT, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Recorded decode steps plan their attention for a band of keys (keyBand) and
// are recorded again when a sequence outgrows it: across the bands of 128,
// 256 and 512 keys, each replayed step's logits equal those of a pass planned
// for exactly its keys.
func TestReplayBands(t *testing.T) {
	ctx := context.Background()
	s := tinySession(t, 2, 320)
	s.minBand = 128
	r := rand.New(rand.NewSource(3))
	ids := make([]int32, 300)
	for i := range ids {
		ids[i] = int32(r.Intn(2048))
	}
	for seq := 0; seq < 2; seq++ {
		if _, err := s.Forward(ctx, Request{Inputs: []Input{{seq, ids[:100]}}, Logits: LogitsNone}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 100; i < len(ids); i++ {
		step := []int32{ids[i]}
		replayed, err := s.Forward(ctx, Request{Inputs: []Input{{0, step}}})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := s.Forward(ctx, Request{Inputs: []Input{{1, step}}, CaptureFinalNorm: true}) // not replayable
		if err != nil {
			t.Fatal(err)
		}
		if e := cpu.NMSE(replayed.Logits[0][0], plain.Logits[0][0]); !(e < 1e-9) {
			t.Fatalf("position %d: replayed step's logits differ from a plain pass's (NMSE %.3g)", i, e)
		}
	}
	if len(s.steps) != 3 {
		t.Errorf("%d recorded steps, want one for each of the bands 128, 256 and 320 (the cache)", len(s.steps))
	}
	// Every replayed step's GPU time is counted (on devices with timestamps).
	if g := s.StepGPU(); s.m.D.Caps.TimestampValidBits > 0 && (g.Steps != 200 || g.Last <= 0 || g.Total < time.Duration(g.Steps)*time.Microsecond) {
		t.Errorf("GPU time of the replayed steps: %+v, want 200 steps of a microsecond or more", g)
	}
	// And the host's phases in them.
	if g := s.StepGPU(); g.Before <= 0 || g.Submit <= 0 || g.Wait <= 0 || g.After <= 0 {
		t.Errorf("the host's time in the replayed steps: %+v, want each phase counted", g)
	}
}

func TestForwardErrors(t *testing.T) {
	ctx := context.Background()
	s := tinySession(t, 1, 8)
	for _, req := range []Request{
		{Inputs: []Input{{0, []int32{1, 2048}}}},
		{Inputs: []Input{{0, []int32{-1}}}},
		{Inputs: []Input{{1, []int32{1}}}},
		{Inputs: []Input{{0, make([]int32, 9)}}},
		{Inputs: []Input{{0, []int32{1}}}, Lo: 5, Hi: 3},
		{Inputs: []Input{{0, []int32{1}}}, Select: &Select{CFG: 3, TopK: 5}}, // one input
	} {
		if _, err := s.Forward(ctx, req); err == nil {
			t.Errorf("accepted %+v", req)
		}
	}
}

// A decode step of the pair with Select returns the GPU's survivors: the
// guided scores at or above the k-th largest, as the logits give them, for
// ranges of either size in one session; with a NaN score it falls back to the
// logits themselves.
func TestSelect(t *testing.T) {
	ctx := context.Background()
	s := tinySession(t, 2, 16)
	const k = 37
	// step runs the pair's second token (the same step each time: the cache
	// holds what it held) with logits for [lo, 2048).
	step := func(lo int, sel *Select) *Result {
		t.Helper()
		if err := s.SetLens(1, 1); err != nil {
			t.Fatal(err)
		}
		r, err := s.Forward(ctx, Request{Inputs: []Input{{0, []int32{7}}, {1, []int32{8}}}, Lo: lo, Hi: 2048, Select: sel})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if _, err := s.Forward(ctx, Request{Inputs: []Input{{0, []int32{5}}, {1, []int32{6}}}}); err != nil {
		t.Fatal(err)
	}
	plain := step(0, nil)
	c, u := plain.Logits[0][0], plain.Logits[1][0]
	for _, lo := range []int{100, 0, 100} {
		top := step(lo, &Select{CFG: 3, TopK: k, Survivors: true}).Top
		if top == nil {
			t.Fatalf("lo %d: no selection from a recorded step", lo)
		}
		scores := make([]float32, 2048-lo)
		for i := range scores {
			scores[i] = float32(3*float64(c[lo+i]) + (1-3)*float64(u[lo+i]))
		}
		sorted := slices.Clone(scores)
		slices.Sort(sorted)
		var want []int32
		for i, v := range scores {
			if v >= sorted[len(sorted)-k] {
				want = append(want, int32(i))
			}
		}
		if !slices.Equal(top.Idx, want) {
			t.Fatalf("lo %d: survivors %v, want %v", lo, top.Idx, want)
		}
		for j, i := range top.Idx {
			if top.Val[j] != scores[i] {
				t.Fatalf("lo %d: score of %d is %g, want %g", lo, i, top.Val[j], scores[i])
			}
		}
	}
	nan := step(100, &Select{CFG: math.NaN(), TopK: k})
	if nan.Top != nil || len(nan.Logits[0]) != 1 || !slices.Equal(nan.Logits[0][0], c[100:]) || !slices.Equal(nan.Logits[1][0], u[100:]) {
		t.Fatalf("a NaN selection gave Top %v and %d logit rows", nan.Top != nil, len(nan.Logits[0]))
	}
}

func TestLoadErrors(t *testing.T) {
	dir := fixture(t)
	d := device(t)
	tmp := t.TempDir()
	// A checkpoint with one shard missing and a config from elsewhere.
	for _, f := range []string{"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(tmp, f), b, 0o644)
	}
	if _, err := Load(context.Background(), d, tmp, Options{Format: quant.BF16}); err == nil {
		t.Error("missing shard accepted")
	}
	if _, err := Load(context.Background(), d, t.TempDir(), Options{Format: quant.BF16}); err == nil {
		t.Error("empty directory accepted")
	}
}

// A recorded step of two tokens a sequence (a sampled token and the forced one
// after it) gives the second token's logits that two one-token steps give, for
// float and block weights (the latter with the int8 cache and its fused norms),
// with and without the GPU's top-k selection.
func TestReplayTwoTokens(t *testing.T) {
	ctx := context.Background()
	for _, f := range []quant.Format{quant.BF16, quant.Q4} {
		m, err := Load(ctx, device(t), fixture(t), Options{Format: f})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		m.KVQ8 = f == quant.Q4 // q4's default cache
		var ss [3]*Session     // two-token steps, one-token steps, one-token steps without ops.QKVHeads
		for i := range ss {
			if ss[i], err = m.NewSession(2, 64, 8); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(ss[i].Close)
			for seq := 0; seq < 2; seq++ {
				if _, err := ss[i].Forward(ctx, Request{Inputs: []Input{{seq, []int32{int32(3 + seq), 9, 400}}}, Logits: LogitsNone}); err != nil {
					t.Fatal(err)
				}
			}
		}
		r := rand.New(rand.NewSource(5))
		for i := 0; i < 12; i++ {
			a, b := int32(r.Intn(2048)), int32(r.Intn(2048))
			var sel *Select
			if i%2 == 1 {
				sel = &Select{CFG: 2, TopK: 50, R: float64(i) / 12, Survivors: true}
			}
			pair := func(s *Session, toks []int32, sel *Select) *Result {
				t.Helper()
				res, err := s.Forward(ctx, Request{Inputs: []Input{{0, toks}, {1, toks}}, Lo: 1000, Hi: 2048, Select: sel})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			pair(ss[0], []int32{a}, nil)
			one := pair(ss[0], []int32{b}, sel)
			two := pair(ss[1], []int32{a, b}, sel)
			wg := m.O.QKVHeadsWG
			m.O.QKVHeadsWG = 0
			pair(ss[2], []int32{a}, nil)
			plain := pair(ss[2], []int32{b}, nil)
			m.O.QKVHeadsWG = wg
			// QKVHeads sums the qkv projection and the qk norm in another
			// order: an f16 cache value can round the other way (bf16's
			// logits then differ by an NMSE of up to about 1e-9), and an int8
			// cache code (or an int8 query), which a 2-layer model with q4
			// weights turns into up to about 1e-4.
			tol := 1e-7
			if m.KVQ8 {
				tol = 1e-3
			}
			for seq := 0; seq < 2 && sel == nil; seq++ {
				nmse(t, fmt.Sprintf("%s step %d seq %d, the qkv projection a head a workgroup", f, i, seq), one.Logits[seq][0], plain.Logits[seq][0], tol)
			}
			if sel != nil {
				if one.Top == nil || two.Top == nil || one.Top.Drawn != two.Top.Drawn || len(one.Top.Idx) == 0 ||
					!slices.Equal(one.Top.Idx, two.Top.Idx) || !slices.Equal(one.Top.Val, two.Top.Val) {
					t.Fatalf("%s step %d: the two-token step's selection differs from the one-token step's", f, i)
				}
				continue
			}
			for seq := 0; seq < 2; seq++ {
				if len(two.Logits[seq]) != 1 {
					t.Fatalf("%s step %d: %d logit rows for sequence %d, want the last token's", f, i, len(two.Logits[seq]), seq)
				}
				nmse(t, fmt.Sprintf("%s step %d seq %d", f, i, seq), two.Logits[seq][0], one.Logits[seq][0], 1e-12)
			}
		}
		for k := range ss[1].steps {
			if k.n != 2 || k.ts[0] != 2 || k.ts[1] != 2 {
				t.Errorf("%s: the two-token session recorded a step of %v tokens, want 2 and 2", f, k.ts[:k.n])
			}
		}
		if len(ss[1].steps) == 0 {
			t.Errorf("%s: the two-token steps were not replayed", f)
		}
	}
}
