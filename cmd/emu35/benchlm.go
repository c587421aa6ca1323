package main

import (
	"fmt"
	"io"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model"
	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

// benchModel times the language model: prefill of the CFG pair and decode steps
// of the pair at each context length, with the full and the visual-only head.
func benchModel(c *cli.Context, d *vk.Device, b *bencher) error {
	ctxs, err := parseIDs("ctx", c.String("ctx"))
	if err != nil {
		return err
	}
	for _, name := range c.StringSlice("vary") { // before the model is built
		var touch bool
		for _, v := range strings.Split(name, "+") {
			if err := setVaried(&ops.Ops{}, &touch, v); err != nil {
				return fmt.Errorf("--vary %q: %w", name, err)
			}
		}
	}
	stream, err := b.streamFirst()
	if err != nil {
		return err
	}
	prefill, steps := c.Int("prefill"), max(2, c.Int("steps"))
	if c.Bool("autotune") {
		if len(c.StringSlice("vary")) > 0 {
			return fmt.Errorf("--autotune chooses the settings itself: leave --vary out")
		}
		prefill = 0
	}
	maxCtx := prefill
	for _, n := range ctxs {
		maxCtx = max(maxCtx, int(n))
	}
	maxT := maxCtx + steps + 1
	m, err := openModel(c, d, 0)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := applyKnobs(c, m.O); err != nil {
		return err
	}
	if err := applyModelKnobs(c, m); err != nil {
		return err
	}
	cfg := m.Cfg
	s, err := m.NewSession(2, maxT, max(2*prefill, 8))
	if err != nil {
		return err
	}
	defer s.Close()
	sh := m.O.MatVecShapes[m.Format]
	fmt.Printf("device: %s (%s)\nmodel: %s, %s weights, %d layers, hidden %d, vocab %d; mat-vec shapes wide %s, narrow-short %s, narrow-deep %s\n",
		d.Caps.Name, d.Caps.Type, c.String("model"), m.Format, cfg.Layers, cfg.HiddenSize, cfg.VocabSize, sh[ops.Wide], sh[ops.Narrow], sh[ops.Deep])
	fmt.Printf("memory: weights %.2f GiB, session (%s KV cache for 2×%d positions + activations) %.2f GiB\n",
		float64(m.Bytes())/(1<<30), kvName(m.KVQ8), maxT, float64(s.Bytes())/(1<<30))
	r := rand.New(rand.NewSource(1))
	tokens := func(n int) []int32 {
		t := make([]int32, n)
		for i := range t {
			t[i] = int32(r.Intn(cfg.VocabSize))
		}
		return t
	}
	if prefill > 0 {
		var best time.Duration
		for i := 0; i < 2; i++ { // the first pass also builds pipelines
			s.Reset()
			t0 := time.Now()
			if _, err := s.Forward(c.Context, lm.Request{Inputs: []lm.Input{{Seq: 0, Tokens: tokens(prefill)}, {Seq: 1, Tokens: tokens(prefill)}}}); err != nil {
				return err
			}
			if dt := time.Since(t0); i == 0 || dt < best {
				best = dt
			}
		}
		flops := 2 * 2 * float64(prefill) * float64(paramsPerToken(cfg))
		fmt.Printf("prefill 2×%d tokens: %.3f s (%.1f TFLOP/s on the matrices)\n", prefill, best.Seconds(), flops/best.Seconds()/1e12)
		prof, err := s.ProfilePrefill(c.Context, 2, prefill)
		if err != nil {
			return err
		}
		printProfile(fmt.Sprintf("the prefill of 2×%d tokens by op, timestamps after every op", prefill), prof, nil, stream)
	}
	visLo := 151854
	if visLo >= cfg.VocabSize {
		visLo = 0
	}
	// decodeSteps times steps decode steps of s at context n, prints their
	// medians and returns the GPU's.
	decodeSteps := func(s *lm.Session, what string, n int, lo int) (float64, error) {
		if err := s.SetLens(n, n); err != nil {
			return 0, err
		}
		var times, gpu []float64
		for i := 0; i < steps; i++ {
			req := lm.Request{Inputs: []lm.Input{{Seq: 0, Tokens: tokens(1)}, {Seq: 1, Tokens: tokens(1)}}, Lo: lo}
			t0 := time.Now()
			if _, err := s.Forward(c.Context, req); err != nil {
				return 0, err
			}
			times = append(times, float64(time.Since(t0).Microseconds())/1e3)
			gpu = append(gpu, s.StepGPU().Last.Seconds()*1e3)
		}
		sort.Float64s(times)
		sort.Float64s(gpu)
		fmt.Printf("decode step, CFG pair, context %d, %s: %.2f ms (median of %d, min %.2f; on the GPU %.2f)\n", n, what, times[len(times)/2], steps, times[0], gpu[len(gpu)/2])
		return gpu[len(gpu)/2], nil
	}
	head := "visual head"
	if visLo == 0 {
		head = "full head"
	}
	varied := func(s *lm.Session, name string, n int) (float64, error) {
		return decodeSteps(s, head+", "+name, n, visLo)
	}
	if c.Bool("autotune") {
		return autotune(c, m, maxT, ctxs, varied)
	}
	if alts := c.StringSlice("vary"); len(alts) > 0 {
		return varyKnobs(m, maxT, ctxs, alts, varied)
	}
	for _, n := range ctxs {
		if _, err := decodeSteps(s, "full head", int(n), 0); err != nil {
			return err
		}
		if visLo > 0 {
			if _, err := decodeSteps(s, "visual head", int(n), visLo); err != nil {
				return err
			}
		}
	}
	// Where a step's GPU time goes, at the last context length, visual head.
	if len(ctxs) > 0 {
		n := int(ctxs[len(ctxs)-1])
		if err := s.SetLens(n, n); err != nil {
			return err
		}
		prof, err := s.ProfileDecode(c.Context, 2, visLo, 0)
		if err != nil {
			return err
		}
		printProfile(fmt.Sprintf("one decode step by op (context %d, timestamps after every op)", n), prof, s.StepBytes(2, visLo, 0), stream)
	}
	return nil
}

// varyKnobs times the model's decode steps (through steps, at each context;
// it returns their GPU median) with its ops knobs and page touches as they
// are ("base") and as each alternative sets them (setVaried's settings joined
// by +), after an untimed pass of each, in two rounds, the second in reverse
// order, a session each, so that the settings compare on one machine and one
// build of the weights. A summary follows: each alternative's GPU medians and
// their mean's difference from the base's.
func varyKnobs(m *lm.Model, maxT int, ctxs []int32, alts []string, steps stepTimer) error {
	names := append([]string{"base"}, alts...)
	gpu, err := timeVaried(m, maxT, ctxs, names, steps)
	if err != nil {
		return err
	}
	printVaried(os.Stdout, names, ctxs, gpu)
	return nil
}

// stepTimer times a session's decode steps at context n under the knobs
// named name and returns their GPU median (ms).
type stepTimer func(s *lm.Session, name string, n int) (float64, error)

// timeVaried is varyKnobs' timing of names ("base" first), after a warm-up
// of each at the first context (so that no timed step builds pipelines): each
// alternative's GPU medians [context][round].
func timeVaried(m *lm.Model, maxT int, ctxs []int32, names []string, steps stepTimer) (map[string][][]float64, error) {
	if len(ctxs) == 0 {
		return nil, fmt.Errorf("--vary and --autotune time decode steps at the --ctx lengths: give at least one")
	}
	o := m.O
	saved, touch := *o, m.TouchWeights
	restore := func() { *o, m.TouchWeights = saved, touch }
	defer restore()
	set := func(name string) error {
		restore()
		if name == "base" {
			return nil
		}
		for _, v := range strings.Split(name, "+") {
			if err := setVaried(o, &m.TouchWeights, v); err != nil {
				return fmt.Errorf("--vary %q: %w", name, err)
			}
		}
		if err := checkAttnHeads(m, int(o.DecodeHeads)); err != nil {
			return fmt.Errorf("--vary %q: attn-heads %d: %w", name, o.DecodeHeads, err)
		}
		return nil
	}
	gpu := map[string][][]float64{} // [alternative][context] the rounds' GPU medians
	for _, name := range names {    // every alternative parses before any run
		if err := set(name); err != nil {
			return nil, err
		}
		gpu[name] = make([][]float64, len(ctxs))
	}
	// Each alternative's steps once at the first context, untimed, so that no
	// timed step builds pipelines.
	for _, name := range names {
		_ = set(name)
		s, err := m.NewSession(2, maxT, 8)
		if err != nil {
			return nil, err
		}
		_, err = steps(s, name+" (warm-up)", int(ctxs[0]))
		s.Close()
		if err != nil {
			return nil, err
		}
	}
	for round := 0; round < 2; round++ {
		for i := range names {
			name := names[i]
			if round == 1 {
				name = names[len(names)-1-i]
			}
			_ = set(name) // checked above
			s, err := m.NewSession(2, maxT, 8)
			if err != nil {
				return nil, err
			}
			for j, n := range ctxs {
				ms, err := steps(s, name, int(n))
				if err != nil {
					s.Close()
					return nil, err
				}
				gpu[name][j] = append(gpu[name][j], ms)
			}
			s.Close()
		}
	}
	return gpu, nil
}

// printVaried prints varyKnobs' summary: for each alternative and context the
// rounds' GPU medians and the difference of their mean from the base's.
func printVaried(out io.Writer, names []string, ctxs []int32, gpu map[string][][]float64) {
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	w := len("alternative")
	for _, n := range names {
		w = max(w, len(n))
	}
	fmt.Fprintf(out, "summary: decode steps on the GPU, ms (each round's median; the mean's difference from base)\n  %-*s", w, "alternative")
	for _, n := range ctxs {
		fmt.Fprintf(out, "  %-24s", fmt.Sprintf("context %d", n))
	}
	fmt.Fprintln(out)
	for _, name := range names {
		fmt.Fprintf(out, "  %-*s", w, name)
		for j := range ctxs {
			r, cell := gpu[name][j], ""
			for _, x := range r {
				cell += fmt.Sprintf("%.2f ", x)
			}
			if name != "base" {
				cell += fmt.Sprintf("(%+.2f)", mean(r)-mean(gpu["base"][j]))
			}
			fmt.Fprintf(out, "  %-24s", cell)
		}
		fmt.Fprintln(out)
	}
}

// printProfile prints a profile's time by op (an LM pass's, the VQ
// decode's) and, for the ops with bytes (a decode step's weights and KV cache),
// their rate against the measured stream.
func printProfile(what string, prof []vk.OpTime, bytes map[string]int64, stream float64) {
	var total float64
	for _, p := range prof {
		total += p.NS
	}
	fmt.Printf("%s: %.2f ms in all\n", what, total/1e6)
	fmt.Printf("  %-24s %6s %11s %7s %9s %8s %9s\n", "op", "count", "time", "share", "MB read", "GB/s", "% stream")
	for _, p := range prof {
		fmt.Printf("  %-24s %5d× %8.3f ms %6.1f%%", p.Op, p.Count, p.NS/1e6, 100*p.NS/total)
		if b := bytes[p.Op]; b > 0 {
			rate := float64(b) / p.NS // bytes/ns = GB/s
			fmt.Printf(" %9.1f %8.1f %8.1f%%", float64(b)/1e6, rate, 100*rate*1e9/stream)
		}
		fmt.Println()
	}
}

// paramsPerToken is the matrix parameters one token multiplies through (the head included).
func paramsPerToken(cfg model.Config) int64 {
	H, d, I := int64(cfg.HiddenSize), int64(cfg.HeadDim), int64(cfg.IntermediateSize)
	per := H*int64(cfg.Heads+2*cfg.KVHeads)*d + int64(cfg.Heads)*d*H + 3*H*I
	return int64(cfg.Layers)*per + int64(cfg.VocabSize)*H
}

// setVaried applies one setting of a --vary alternative: one of o's integer
// knobs named as its flag (opsKnobs), the model's page touches (touch=on|off,
// into *touch), or a mat-vec shape (as --mv).
func setVaried(o *ops.Ops, touch *bool, v string) error {
	key, val, _ := strings.Cut(v, "=")
	if key == "touch" {
		if val != "on" && val != "off" {
			return fmt.Errorf("touch=%s: want on or off", val)
		}
		*touch = val == "on"
		return nil
	}
	if _, ok := opsKnobs(o)[key]; !ok {
		return setShape(o, v)
	}
	n, err := strconv.Atoi(val)
	if err == nil {
		err = setOpsKnob(o, key, n)
	}
	if err != nil {
		return fmt.Errorf("%s=%s: %w", key, val, err)
	}
	return nil
}

// opsKnob is an integer knob of ops.Ops that bench sets by name, from its
// flag (applyKnobs) or a --vary setting: values lo..hi, multiples of step,
// stored times unit.
type opsKnob struct {
	dst                *uint32
	lo, hi, step, unit int
	want               string
}

// opsKnobs are o's knobs by name. (--attn-heads, up to 64, is the flag's own;
// a --vary setting takes up to 32.)
func opsKnobs(o *ops.Ops) map[string]opsKnob {
	return map[string]opsKnob{
		"attn-prefetch": {&o.DecodePrefetch, 1, 32, 1, 1, "1 to 32"},
		"attn-values":   {&o.DecodeValueBatch, 1, 32, 1, 1, "1 to 32"},
		"attn-heads":    {&o.DecodeHeads, 1, 32, 1, 1, "1 to 32"},
		"attn-coop":     {&o.DecodeCoop, 0, 1, 1, 1, "0 or 1"},
		"attn-tile":     {&o.DecodeTile, 0, 256, 128, 1, "0 (128), 128 or 256"},
		"attn-wave":     {&o.DecodeWave, 0, 1 << 20, 1, 1, "0 (the default) or the workgroups of a wave of the several-tile form, up to 1048576"},
		"qkv-steps":     {&o.QKVSteps, 0, 2, 1, 1, "0 (2 with the f16 cache, 1 with int8), 1 or 2"},
		"qkv-heads":     {&o.QKVHeadsWG, 0, 1024, 32, 1, "0 or a multiple of 32 up to 1024"},
		"norm-wg":       {&o.NormWG, 8, 128, 8, 1, "a multiple of 8 from 8 to 128"},
		"touch-at":      {&o.TouchAt, 0, 1, 1, 1, "0 (beside the attention) or 1 (beside the qkv projection)"},
		"touch-stride":  {&o.TouchStride, 1, 1 << 20, 1, 1 << 10, "1 to 1048576 KiB"},
	}
}

// setOpsKnob sets o's knob key to n, or says which values it takes.
func setOpsKnob(o *ops.Ops, key string, n int) error {
	k := opsKnobs(o)[key]
	if n < k.lo || n > k.hi || n%k.step != 0 {
		return fmt.Errorf("want %s", k.want)
	}
	*k.dst = uint32(n * k.unit)
	return nil
}

// checkAttnHeads says whether h query heads a decode attention workgroup (0:
// chosen by the number of splits) divide m's query heads per KV head.
func checkAttnHeads(m *lm.Model, h int) error {
	if g := m.Cfg.Heads / m.Cfg.KVHeads; h > 0 && g%h != 0 {
		return fmt.Errorf("want a divisor of the model's %d query heads per KV head", g)
	}
	return nil
}
