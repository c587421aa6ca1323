package main

import (
	"context"
	"fmt"
	"math/rand"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/gen"
	"github.com/emu35/emu35/model/lm"
	tk "github.com/emu35/emu35/model/tokenizer"
	"github.com/emu35/emu35/vk"
)

// benchE2E times one whole t2i image (x2i with --refs): prefill of the pair,
// every decode step (host sampling included), the VQ decode, and a per-op
// breakdown of one step at the final context. --quick uses the demo's tiny
// models.
func benchE2E(c *cli.Context, d *vk.Device, b *bencher) error {
	stream, err := b.streamFirst()
	if err != nil {
		return err
	}
	if n := c.Int("refs"); n < 0 || n > 3 {
		return fmt.Errorf("--refs %d: x2i takes 1 to 3 reference images", n)
	}
	ratio := c.String("ratio")
	if c.Bool("quick") && !c.IsSet("ratio") {
		ratio = "8x8" // the tiny demo model on lavapipe: seconds, not minutes
	}
	r, ok, err := gen.ParseRatio(ratio)
	if err != nil {
		return err
	}
	if !ok {
		r = gen.Ratio{H: 64, W: 64}
	}
	s := &genSetup{decodeOnly: true, opts: gen.Options{Preset: &r, CFG: 5, Image: gen.Sampling{TopK: 5120, TopP: 1, Temperature: 1},
		Text: gen.Sampling{TopK: 1024, TopP: 0.9, Temperature: 1}, MaxNewTokens: 8 + r.H*(r.W+1), Seed: 1, ImageFirst: true, StopAtEOI: true,
		OneByOne: c.Bool("one-by-one"), NoChain: c.Bool("no-chain")}}
	if err := s.load(c, d, c.Bool("quick")); err != nil {
		return err
	}
	defer s.close()
	if err := applyKnobs(c, s.lm.O); err != nil {
		return err
	}
	if err := applyModelKnobs(c, s.lm); err != nil {
		return err
	}
	if err := applyKnobs(c, s.vq.O); err != nil { // its convolutions take --coop-bk
		return err
	}
	task, refs := e2eTask(c.Int("refs"), r, s.vq.Cfg.CodebookSize)
	cond, uncond, err := gen.Prompts(s.tk, task, "A clay astronaut exploring Mars, with a red dust storm on the horizon.", refs)
	if err != nil {
		return err
	}
	sess, err := s.lm.NewSession(2, len(cond)+s.opts.MaxNewTokens+1, len(cond)+1)
	if err != nil {
		return err
	}
	defer sess.Close() // (closed earlier on success; Close may repeat)
	// Warm up: the driver compiles each pipeline on first use (seconds; the
	// on-disk pipeline cache keeps them for later runs), so time a run as
	// every run after the first one goes. A short generation covers the
	// prefill, the unconditional prompt and the decode steps of the first key
	// band; warmBands the later bands' steps (their attention is planned for
	// more keys, with other kernels); Warm the VQ.
	tw := time.Now()
	warm := s.opts
	warm.MaxNewTokens = min(warm.MaxNewTokens, 16+r.W)
	if _, err := gen.Generate(c.Context, sess, cond, uncond, warm, nil); err != nil {
		return err
	}
	if !s.opts.NoChain { // the draw table Generate began to fill (a run uses it once it is full)
		sess.PrepareDraws(tk.BOV, sess.Model().Cfg.VocabSize)
		if err := sess.WaitDraws(c.Context); err != nil {
			return err
		}
	}
	if err := warmBands(c.Context, sess, s.opts); err != nil {
		return err
	}
	if err := s.vq.Warm(c.Context); err != nil {
		return err
	}
	fmt.Printf("warm-up (building pipelines; the pipeline cache keeps them for later runs): %.3f s\n", time.Since(tw).Seconds())
	var first time.Duration
	gpu0 := sess.StepGPU()
	t0 := time.Now()
	res, err := gen.Generate(c.Context, sess, cond, uncond, s.opts, func(e gen.Event) {
		if e.N == 1 {
			first = time.Since(t0)
		}
	})
	if err != nil {
		return err
	}
	steps := time.Since(t0) - first
	gpu := sess.StepGPU()
	items, err := gen.Parse(s.tk, res.IDs)
	if err != nil || len(items) != 1 || items[0].Kind != "image" {
		return fmt.Errorf("the run did not produce one image (%d items): %v", len(items), err)
	}
	// One step's GPU time by op at the final context (the pair's lengths as generated).
	lens := sess.Lens
	var prof []lm.OpTime
	var bytes map[string]int64
	if lens[0] < sess.MaxT && lens[1] < sess.MaxT {
		if prof, err = sess.ProfileDecode(c.Context, 2, tk.BOV, 0); err != nil {
			return err
		}
		bytes = sess.StepBytes(2, tk.BOV, 0)
	}
	// As emu35 gen does for a single question: the session and the LM's
	// weights are freed before the image is decoded.
	lmBytes, sessBytes, format, kv := s.lm.Bytes(), sess.Bytes(), s.lm.Format, kvName(s.lm.KVQ8)
	tableBytes := sess.DrawTableBytes()
	sess.Close()
	s.lm.Close()
	t1 := time.Now()
	if _, err := s.vq.Decode(context.Background(), items[0].Codes, items[0].H, items[0].W); err != nil {
		return err
	}
	vqTime := time.Since(t1)
	n := len(res.IDs)
	f := s.vq.Cfg.Factor()
	fmt.Printf("device: %s (%s); LM %s weights, %s KV cache\n", d.Caps.Name, d.Caps.Type, format, kv)
	fmt.Printf("%s %dx%d px: %d tokens\n", task, f*r.W, f*r.H, n)
	if len(refs) > 0 {
		fmt.Printf("  after %d reference images of %dx%d px (random codes; the unconditional prompt holds them too)\n", len(refs), f*r.W, f*r.H)
	}
	fmt.Printf("  prompt prefill + first token   %8.3f s (%d prompt tokens)\n", first.Seconds(), len(cond))
	fmt.Printf("  %d more tokens                %8.3f s (%.2f ms/token, %.1f tokens/s)\n", n-1, steps.Seconds(), steps.Seconds()*1e3/float64(n-1), float64(n-1)/steps.Seconds())
	perTok := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(n-1) }
	fmt.Printf("    per token: model pass %.2f ms (GPU, transfers, waits), sampling %.2f ms, the rest %.2f ms; %d visual tokens selected on the GPU;\n"+
		"    %d forced tokens fed in one pass with the token before them; %d passes started before the host read the drawn token they feed\n",
		perTok(res.Forward), perTok(res.Sampling), perTok(steps-res.Forward-res.Sampling), res.GPUSelected, res.Paired, res.Chained)
	if n := gpu.Steps - gpu0.Steps; n > 0 {
		g := (gpu.Total - gpu0.Total).Seconds() * 1e3 / float64(n)
		fmt.Printf("    on the GPU: %.2f ms a recorded step (%d of them, timestamps at their start and end): the GPU is busy %.1f %% of the tokens' time\n",
			g, n, 100*g*float64(n)/(steps.Seconds()*1e3))
		per := func(a, b time.Duration) float64 { return (a - b).Seconds() * 1e3 / float64(n) }
		fmt.Printf("    the host in a step: %.3f ms before submitting it (its inputs), %.3f in vkQueueSubmit, %.3f waiting for the GPU, %.3f after (the readback)\n",
			per(gpu.Before, gpu0.Before), per(gpu.Submit, gpu0.Submit), per(gpu.Wait, gpu0.Wait), per(gpu.After, gpu0.After))
	}
	fmt.Printf("  VQ decode                       %8.3f s\n", vqTime.Seconds())
	fmt.Printf("  image                           %8.3f s\n", (first + steps + vqTime).Seconds())
	gib := func(b uint64) float64 { return float64(b) / (1 << 30) }
	vqW, vqA := s.vq.Bytes(), uint64(s.vq.WorkBytes(r.H, r.W))
	fmt.Printf("memory: LM weights %.2f GiB, session %.2f GiB, VQ weights %.2f GiB, VQ activations %.2f GiB; in host memory, the draw table %.2f GiB\n",
		gib(lmBytes), gib(sessBytes), gib(vqW), gib(vqA), gib(tableBytes))
	fmt.Printf("  peak %.2f GiB: generating %.2f GiB, decoding %.2f GiB (emu35 gen frees the LM before decoding a single question's images;\n"+
		"  with several questions it stays: %.2f GiB; --view previews decode beside the LM: up to %.2f GiB)\n",
		gib(max(lmBytes+sessBytes, vqA)+vqW), gib(lmBytes+sessBytes+vqW), gib(vqW+vqA), gib(lmBytes+max(sessBytes, vqA)+vqW), gib(lmBytes+sessBytes+vqA+vqW))
	if prof != nil {
		printProfile(fmt.Sprintf("one decode step by op (context %d/%d, visual head)", lens[0], lens[1]), prof, bytes, stream)
	}
	return nil
}

// e2eTask is --e2e's task for --refs n: t2i, or x2i after n reference
// images of grid r (random codes below codebook, seeded), serialised.
func e2eTask(n int, r gen.Ratio, codebook int) (string, []string) {
	if n == 0 {
		return "t2i", nil
	}
	rng := rand.New(rand.NewSource(7))
	refs := make([]string, n)
	for i := range refs {
		codes := make([]int32, r.H*r.W)
		for j := range codes {
			codes[j] = int32(rng.Intn(codebook))
		}
		refs[i] = gen.ImageString(codes, r.H, r.W)
	}
	return "x2i", refs
}

// warmBands runs the image's decode steps, a visual token of the pair and one
// with its forced EOL, at the end of each key band the session records steps
// for (what they write to the cache is garbage; Generate resets the session).
func warmBands(ctx context.Context, sess *lm.Session, o gen.Options) error {
	V := sess.Model().Cfg.VocabSize
	chain := !o.NoChain && sess.DrawsReady(tk.BOV, V)
	for _, b := range sess.KeyBands() {
		for _, toks := range [][]int32{{tk.BOV}, {tk.BOV, tk.EOL}} {
			n := len(toks)
			if err := sess.SetLens(b-3*n, b-3*n); err != nil {
				return err
			}
			req := func(toks []int32) lm.Request {
				return lm.Request{Inputs: []lm.Input{{Seq: 0, Tokens: toks}, {Seq: 1, Tokens: toks}}, Lo: tk.BOV, Hi: V,
					Select: &lm.Select{CFG: o.CFG, TopK: o.Image.TopK, R: 0.5}}
			}
			if _, err := sess.Forward(ctx, req(toks)); err != nil {
				return err
			}
			if !chain {
				continue
			}
			// Chained steps (a Drawn token), of both parities.
			drawn := append([]int32{lm.Drawn}, toks[1:]...)
			var ps []*lm.Pending
			for range 2 {
				p, err := sess.Start(ctx, req(drawn))
				if err != nil {
					return err
				}
				ps = append(ps, p)
			}
			for _, p := range ps {
				if _, err := p.Wait(ctx); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
