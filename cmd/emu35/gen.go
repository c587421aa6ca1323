package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/configs"
	"github.com/emu35/emu35/model"
	"github.com/emu35/emu35/model/gen"
	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/model/tokenizer"
	"github.com/emu35/emu35/viewer"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
	"github.com/emu35/emu35/vq"
)

func genCmd() *cli.Command {
	return &cli.Command{
		Name:  "gen",
		Usage: "generate text and images: --task t2i | x2i | howto | story | explore | vla",
		Description: `Runs the reference's generation for a task: its prompt template, classifier-free
guidance on visual tokens, separate text and image sampling, and the image-structure rules.
Each prompt gets a directory in --out with image_NN.png, text.md and story.pb (the reference's
Story protobuf). Ctrl-C stops cleanly and writes what was generated (an unfinished image with
its finished rows). --demo runs everything on small random-weight models built on the fly.`,
		Flags: []cli.Flag{
			deviceFlag, modelFlag, weightsFlag, kvFlag, tuningFlag, vqFlag, f16Flag, tokenizerFlag,
			&cli.StringFlag{Name: "task", Value: "t2i", Usage: "t2i, x2i, howto, story, explore or vla (selects the preset in configs/)"},
			&cli.StringFlag{Name: "config", Usage: "a preset file (YAML, as in configs/) instead of the task's"},
			&cli.StringSliceFlag{Name: "prompt", Usage: "the question (repeat for several)"},
			&cli.StringFlag{Name: "prompts", Usage: "a file with one question per line"},
			&cli.StringSliceFlag{Name: "image", Usage: "reference image (PNG/JPEG; repeat up to 3)"},
			&cli.StringFlag{Name: "out", Value: "out", Usage: "output directory"},
			&cli.StringFlag{Name: "ratio", Usage: "t2i grid: auto, 4:3, 21:9, 16:9, 3:2, 1:1, 3:4, 9:16, 2:3, default, or HxW tokens"},
			&cli.Float64Flag{Name: "cfg", Usage: "classifier-free guidance scale (preset: 5 t2i, 3 others)"},
			&cli.IntFlag{Name: "max-tokens", Usage: "maximum new tokens"},
			&cli.Uint64Flag{Name: "seed", Usage: "random seed (preset 6666); the same seed repeats a run"},
			&cli.BoolFlag{Name: "greedy", Usage: "argmax instead of sampling"},
			&cli.IntFlag{Name: "text-top-k"}, &cli.Float64Flag{Name: "text-top-p"}, &cli.Float64Flag{Name: "text-temperature"},
			&cli.IntFlag{Name: "image-top-k"}, &cli.Float64Flag{Name: "image-top-p"}, &cli.Float64Flag{Name: "image-temperature"},
			&cli.IntFlag{Name: "image-area", Usage: "pixel budget for reference images"},
			&cli.BoolFlag{Name: "stop-at-eoi", Usage: "stop after the first image (the reference's vLLM path does for t2i/x2i)"},
			&cli.BoolFlag{Name: "host-sampling", Usage: "select visual tokens' top k on the CPU, not the GPU (the same tokens, slower; for checking)"},
			&cli.BoolFlag{Name: "image-first", Usage: "begin the answer with an image (BOI as the first token)"},
			&cli.BoolFlag{Name: "demo", Usage: "tiny random-weight models built on the fly: the whole pipeline, noise as output"},
			&cli.BoolFlag{Name: "view", Usage: "open a window that shows images while they are generated (←/→ browse, s save, Esc stop)"},
			&cli.Float64Flag{Name: "view-hold", Usage: "with --view: close the window this many seconds after generation (0: when you close it)"},
		},
		Action: runGen,
	}
}

// genSetup is everything a run needs.
type genSetup struct {
	modelCfg model.Config // the LM's configuration (known before loading)
	tk       *tokenizer.Tokenizer
	lm       *lm.Model
	vq       *vq.Model
	preset   configs.Preset
	opts     gen.Options
	// decodeOnly: no reference image, so the VQ encoder's weights stay unloaded.
	decodeOnly bool
	// lmFreeAtEnd: one question, so the LM's weights are freed before its
	// images are decoded and the two phases' memory never adds up (the LM's
	// weights with the VQ decoder's activations).
	lmFreeAtEnd bool
	view        bool // previews decode while the LM runs
	refs        int  // reference images
}

func runGen(c *cli.Context) error {
	p, err := presetOf(c)
	if err != nil {
		return err
	}
	if c.IsSet("image-area") {
		if p.ImageArea = c.Int("image-area"); p.ImageArea < 256 {
			return fmt.Errorf("--image-area %d is too small", p.ImageArea)
		}
	}
	questions, err := questionsOf(c)
	if err != nil {
		return err
	}
	images := c.StringSlice("image")
	if len(images) > 3 {
		return fmt.Errorf("at most 3 reference images (got %d)", len(images))
	}
	if p.UseImage && len(images) == 0 {
		return fmt.Errorf("task %s needs at least one --image", p.Task)
	}
	opts, err := optionsOf(c, p)
	if err != nil {
		return err
	}
	var refs []*image.RGBA
	for _, path := range images {
		img, err := vq.LoadImage(path)
		if err != nil {
			return err
		}
		refs = append(refs, img)
	}
	var exts []string
	if c.Bool("view") { // fail before any loading when there is no display
		if exts, err = viewer.Init(); err != nil {
			return fmt.Errorf("--view: %w", err)
		}
	}
	o := vk.DefaultOptions()
	o.Device = c.Int("device")
	if c.Bool("view") {
		o.InstanceExtensions, o.DeviceExtensions = exts, viewer.DeviceExtensions
	}
	d, err := vk.Open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	s := &genSetup{preset: p, opts: opts, decodeOnly: len(refs) == 0, view: c.Bool("view"), refs: len(refs),
		lmFreeAtEnd: len(questions) == 1}
	if c.Bool("demo") {
		fmt.Fprintln(os.Stderr, "demo: random-weight models with Emu3.5's vocabulary layout and structure rules; the output is noise.\n"+
			"For real images download BAAI/Emu3.5-Image (or BAAI/Emu3.5) and BAAI/Emu3.5-VisionTokenizer and pass --model and --vq.")
	}
	if err := s.load(c, d, c.Bool("demo")); err != nil {
		return err
	}
	defer s.close()
	work := func(ctx context.Context, on func(gen.Event)) error {
		for i, q := range questions {
			dir := filepath.Join(c.String("out"), fmt.Sprintf("%03d", i))
			if err := s.run(ctx, d, q, refs, dir, on); err != nil {
				return err
			}
		}
		return nil
	}
	if !c.Bool("view") {
		return work(c.Context, nil)
	}
	w, h := 512, 512
	if opts.Preset != nil {
		f := s.vq.Cfg.Factor()
		w, h = f*opts.Preset.W, f*opts.Preset.H
		for w > 1024 || h > 1024 {
			w, h = w/2, h/2
		}
		for w < 256 && h < 256 {
			w, h = w*2, h*2
		}
	}
	win, err := viewer.Open(d, "emu35", w, h)
	if err != nil {
		return fmt.Errorf("--view: %w", err)
	}
	defer win.Close()
	if err := os.MkdirAll(c.String("out"), 0o755); err != nil {
		return err
	}
	return runLive(c.Context, s, win, p.Task, time.Duration(c.Float64("view-hold")*float64(time.Second)), work, c.String("out"))
}

func presetOf(c *cli.Context) (configs.Preset, error) {
	if f := c.String("config"); f != "" {
		return configs.Load(f)
	}
	return configs.ForTask(c.String("task"))
}

func questionsOf(c *cli.Context) ([]string, error) {
	qs := c.StringSlice("prompt")
	if f := c.String("prompts"); f != "" {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				qs = append(qs, l)
			}
		}
	}
	if len(qs) == 0 {
		if c.Bool("demo") {
			return []string{"A red apple on a wooden table."}, nil
		}
		return nil, fmt.Errorf("give a --prompt (or --prompts FILE)")
	}
	return qs, nil
}

// optionsOf merges the preset with the flags that were set.
func optionsOf(c *cli.Context, p configs.Preset) (gen.Options, error) {
	o := gen.Options{CFG: p.CFG, Text: p.Text, Image: p.Image, MaxNewTokens: p.MaxNewTokens, Seed: p.Seed,
		Greedy: c.Bool("greedy"), StopAtEOI: c.Bool("stop-at-eoi"), ImageFirst: c.Bool("image-first"), HostSampling: c.Bool("host-sampling")}
	ratio := p.Ratio
	if c.IsSet("ratio") {
		ratio = c.String("ratio")
	}
	r, ok, err := gen.ParseRatio(ratio)
	if err != nil {
		return o, err
	}
	if ok {
		o.Preset = &r
	}
	if c.IsSet("cfg") {
		o.CFG = c.Float64("cfg")
	}
	if c.IsSet("max-tokens") {
		o.MaxNewTokens = c.Int("max-tokens")
	}
	if c.IsSet("seed") {
		o.Seed = c.Uint64("seed")
	}
	set := func(name string, i *int, f *float64) {
		if c.IsSet(name) {
			if i != nil {
				*i = c.Int(name)
			} else {
				*f = c.Float64(name)
			}
		}
	}
	set("text-top-k", &o.Text.TopK, nil)
	set("text-top-p", nil, &o.Text.TopP)
	set("text-temperature", nil, &o.Text.Temperature)
	set("image-top-k", &o.Image.TopK, nil)
	set("image-top-p", nil, &o.Image.TopP)
	set("image-temperature", nil, &o.Image.Temperature)
	if o.MaxNewTokens <= 0 || o.CFG <= 0 {
		return o, fmt.Errorf("--max-tokens and --cfg must be positive")
	}
	return o, nil
}

// load opens the models named by the flags, or the demo's tiny ones.
func (s *genSetup) load(c *cli.Context, d *vk.Device, demo bool) error {
	open := s.open
	if demo {
		open = s.openDemo
	}
	if err := open(c, d); err != nil {
		return err
	}
	// The decoder's pipelines compile while the LM generates. An error here
	// recurs, and is reported, in the real decode.
	go s.vq.Warm(context.Background()) //nolint:errcheck
	return nil
}

// close frees both models.
func (s *genSetup) close() {
	s.lm.Close()
	s.vq.Close()
}

func (s *genSetup) open(c *cli.Context, d *vk.Device) error {
	if c.String("model") == "" || c.String("vq") == "" {
		return fmt.Errorf("--model and --vq are required (the Emu3.5 and Emu3.5-VisionTokenizer directories), or use --demo")
	}
	dir := c.String("tokenizer")
	if dir == "" {
		dir = c.String("model")
	}
	if strings.HasPrefix(dir, "synthetic:") {
		s.tk = tokenizer.Synthetic() // random weights: the real id layout is all that matters
	} else {
		tk, err := tokenizer.Load(dir)
		if err != nil {
			return err
		}
		s.tk = tk
	}
	// The cache the reservation allows for (before loading anything; with
	// --weights auto, f16's, the larger).
	q8, err := kvQ8(c, weightsFormat(c))
	if err != nil {
		return err
	}
	if path := c.String("model"); strings.HasPrefix(path, "synthetic:") {
		s.modelCfg, _ = lm.SyntheticConfig(strings.TrimPrefix(path, "synthetic:"))
	} else if s.modelCfg, err = model.LoadConfig(path); err != nil {
		return err
	}
	if s.vq, err = openVQ(c, d, s.decodeOnly); err != nil {
		return err
	}
	// Keep room for the vision tokenizer (loaded above) and the larger of the
	// two phases: generation (the session's KV cache of both sequences, with
	// the previews' activations under --view) and the decoding of a 1024²
	// image (unless the LM is freed before it).
	positions := s.opts.MaxNewTokens + 512 + s.refs*(s.preset.ImageArea/256+256)
	reserve := reserveBytes(s.lmKVBytesPerPosition(q8)*int64(positions), int64(s.vq.Bytes()), s.vq.WorkBytes(64, 64), s.view, s.lmFreeAtEnd)
	if s.lm, err = openModel(c, d, reserve); err != nil {
		s.vq.Close()
		return err
	}
	gib := func(b int64) float64 { return float64(b) / (1 << 30) }
	after := "the images are decoded after the LM is freed"
	if !s.lmFreeAtEnd {
		after = "the LM stays loaded while images are decoded"
	}
	fmt.Fprintf(os.Stderr, "device memory: LM %s weights %.1f GiB, VQ weights %.1f GiB, up to %.1f GiB more for the KV cache and activations (%s); the device has %.1f GiB\n",
		s.lm.Format, gib(int64(s.lm.Bytes())), gib(int64(s.vq.Bytes())), gib(reserve-int64(s.vq.Bytes())), after, gib(int64(d.Caps.DeviceLocalBytes())))
	return nil
}

// reserveBytes is the device memory a run needs beside the LM's weights: the
// VQ weights, and the larger of its two phases, generating (the KV cache kv,
// activations, and with view the previews' VQ activations vqWork) and decoding
// (vqWork, unless the LM is freed first).
func reserveBytes(kv, vqWeights, vqWork int64, view, lmFreeAtEnd bool) int64 {
	generating := kv + 1<<28
	if view {
		generating += vqWork
	}
	decoding := vqWork
	if lmFreeAtEnd {
		decoding = 0
	}
	return vqWeights + max(generating, decoding) + 1<<28
}

// lmKVBytesPerPosition is the KV cache of both CFG sequences per position for
// the checkpoint's configuration (Emu3.5: 512 KiB in f16, 264 KiB in q8).
func (s *genSetup) lmKVBytesPerPosition(q8 bool) int64 {
	cfg := s.modelCfg
	return int64(cfg.Layers) * ops.KVBytes(q8, 2, cfg.KVHeads, 1, cfg.HeadDim)
}

// openDemo builds the tiny models: the LM has the real vocabulary (and so every
// special and visual token id) with small layers, the tokenizer is byte-level
// with the real id layout unless --tokenizer is given, and the VQ has the real
// codebook size with small channels.
func (s *genSetup) openDemo(c *cli.Context, d *vk.Device) error {
	s.tk = tokenizer.Synthetic()
	if dir := c.String("tokenizer"); dir != "" {
		tk, err := tokenizer.Load(dir)
		if err != nil {
			return err
		}
		s.tk = tk
	}
	cfg := model.Emu35()
	cfg.HiddenSize, cfg.IntermediateSize, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.HeadDim, cfg.MaxPositions = 64, 128, 2, 2, 1, 64, 8192
	var err error
	if s.lm, err = lm.NewSynthetic(c.Context, d, cfg, quant.BF16, 7); err != nil {
		return err
	}
	if s.lm.KVQ8, err = kvQ8(c, s.lm.Format); err != nil {
		s.lm.Close()
		return err
	}
	vc := vq.Emu35()
	vc.EmbedDim, vc.ZChannels, vc.Ch, vc.ChMult, vc.NumResBlocks, vc.AttnResolutions, vc.Resolution = 8, 32, 32, []int{1, 1, 1, 1, 1}, 1, []int{4}, 64
	if s.vq, err = vq.NewSynthetic(d, vc, vq.Options{DecodeOnly: s.decodeOnly}, 7); err != nil {
		s.lm.Close()
		return err
	}
	return nil
}

// run generates for one question and writes its directory.
func (s *genSetup) run(ctx context.Context, d *vk.Device, question string, refs []*image.RGBA, dir string, hook func(gen.Event)) error {
	var imgStrs []string
	var refImgs []image.Image
	for _, img := range refs {
		W, H := vq.SmartResize(img.Bounds().Dx(), img.Bounds().Dy(), s.preset.ImageArea, s.vq.Cfg.Factor())
		codes, _, err := s.vq.Encode(ctx, vq.ToPixels(vq.Resize(img, W, H)), H, W)
		if err != nil {
			return fmt.Errorf("encoding a reference image: %w", err)
		}
		f := s.vq.Cfg.Factor()
		imgStrs = append(imgStrs, gen.ImageString(codes, H/f, W/f))
		refImgs = append(refImgs, img)
	}
	s.vq.ReleaseWork() // the encoder's activations' memory goes to the LM's session
	cond, uncond, err := gen.Prompts(s.tk, s.preset.Task, question, imgStrs)
	if err != nil {
		return err
	}
	maxT := max(len(cond), len(uncond)) + s.opts.MaxNewTokens + 1
	sess, err := s.lm.NewSession(2, maxT, min(2048, max(len(cond), len(uncond))+1))
	if err != nil {
		return err
	}
	prog := newProgress(s.opts.MaxNewTokens)
	res, genErr := gen.Generate(ctx, sess, cond, uncond, s.opts, func(e gen.Event) {
		prog.update(e)
		if hook != nil {
			hook(e)
		}
	})
	prog.done()
	if err := sess.DrawsErr(); err != nil {
		fmt.Fprintf(os.Stderr, "note: image steps waited for the host between tokens: %v\n", err)
	}
	sess.Close() // its KV cache is not needed by the image decoding below
	if s.lmFreeAtEnd {
		s.lm.Close() // nor, after the last question, the LM's weights
	}
	genTime := time.Since(prog.start)
	if genErr != nil && !errors.Is(genErr, context.Canceled) {
		return genErr
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := gen.WriteFile(filepath.Join(dir, "tokens.txt"), []byte(idsText(res.IDs))); err != nil {
		return err
	}
	items, err := gen.Parse(s.tk, res.IDs)
	if err != nil {
		return err
	}
	var decoded []gen.Decoded
	for _, it := range items {
		dc := gen.Decoded{Item: it}
		if it.Kind == "image" {
			// A fresh context: after Ctrl-C the finished rows are still decoded.
			px, err := s.vq.Decode(context.Background(), it.Codes, it.H, it.W)
			if err != nil {
				return err
			}
			f := s.vq.Cfg.Factor()
			dc.Image = vq.FromPixels(px, f*it.W, f*it.H)
		}
		decoded = append(decoded, dc)
	}
	s.vq.ReleaseWork() // kept across this answer's images, not into the next question
	if err := gen.Save(dir, question, refImgs, decoded); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d tokens (%s) in %.1f s (%.1f tokens/s, prompt %d tokens), %d items; written %.1f s after the start\n",
		dir, len(res.IDs), res.Reason, genTime.Seconds(), float64(len(res.IDs))/genTime.Seconds(), len(cond), len(items), time.Since(prog.start).Seconds())
	if genErr != nil {
		return fmt.Errorf("interrupted; what was generated is in %s: %w", dir, genErr)
	}
	return nil
}

func idsText(ids []int32) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, id)
	}
	b.WriteByte('\n')
	return b.String()
}

// progress prints tokens/s, the current image row and an ETA on stderr.
type progress struct {
	start, last time.Time
	max         int
}

func newProgress(max int) *progress { return &progress{start: time.Now(), max: max} }

func (p *progress) update(e gen.Event) {
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	rate := float64(e.N) / time.Since(p.start).Seconds()
	line := fmt.Sprintf("\r%6d tokens  %6.1f tok/s", e.N, rate)
	if e.InImage && e.H > 0 {
		left := (e.H - e.RowsDone) * (e.W + 1)
		line += fmt.Sprintf("  image row %d/%d  ETA %s", e.RowsDone, e.H, (time.Duration(float64(left)/rate) * time.Second).Round(time.Second))
	}
	fmt.Fprint(os.Stderr, line+"   ")
}

func (p *progress) done() { fmt.Fprintln(os.Stderr) }
