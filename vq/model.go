package vq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

// Model is the vision tokenizer's weights on one device.
type Model struct {
	Cfg    Config
	D      *vk.Device
	O      *ops.Ops
	Format quant.Format // of the convolution weights: f32, or f16 to halve memory

	arena *vk.Arena
	// run lets one Decode or Encode hold activations at a time: concurrent
	// calls (the viewer's previews and gen's own decode) wait instead of
	// doubling the memory peak.
	run sync.Mutex
	// workMem keeps the activations' device memory from one run to the next
	// (its buffers are made anew each run, its blocks kept): allocating the
	// 3.3 GiB of a 1024×1024 decode took 92 ms on an H100. Held until
	// ReleaseWork or Close.
	workMem                  *vk.Arena
	codebook                 *ops.Weight // f32 [K, D]
	quantConv, postQuantConv *ops.Conv
	enc, dec                 *network
}

// network is the encoder or the decoder.
type network struct {
	convIn, convOut    *ops.Conv
	normOutG, normOutB vk.Range
	mid                [3]any // resBlock, attnBlock, resBlock
	levels             [][]any
	resample           []*ops.Conv // per level: downsample or upsample conv (nil where none)
}

type resBlock struct {
	n1g, n1b, n2g, n2b vk.Range
	c1, c2, nin        *ops.Conv
	cin, cout          int
}

type attnBlock struct {
	ng, nb        vk.Range
	q, k, v, proj *ops.Conv
	ch            int
}

// Options configure loading.
type Options struct {
	// F16 stores convolution weights in f16 (half the memory; f32 accumulation).
	// Devices with tensor cores store them so regardless: their convolutions
	// read f16 (an f32 weight is rounded the same way when staged), so the
	// results do not change, and the memory and the staging's loads halve.
	F16 bool
	// DecodeOnly leaves the encoder's weights out (0.34 GiB in f16 at Emu3.5's
	// size) for runs with no reference image; Encode then fails.
	DecodeOnly bool
}

// Load reads a vision tokenizer directory (config.json + model.safetensors, or
// config.yaml + model.ckpt) into device memory.
func Load(d *vk.Device, dir string, o Options) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	ts, err := LoadTensors(dir)
	if err != nil {
		return nil, err
	}
	if err := CheckTensors(cfg, ts); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return build(d, cfg, o, func(name string) []float32 { return ts[name].Data })
}

// build uploads the tensors get returns into a model of configuration cfg.
func build(d *vk.Device, cfg Config, o Options, get func(name string) []float32) (*Model, error) {
	m := &Model{Cfg: cfg, D: d, O: ops.New(d), Format: quant.F32, arena: d.NewArena(vk.DeviceMem)}
	if o.F16 || m.O.CoopMat {
		m.Format = quant.F16
	}
	var err error
	vec := func(name string) vk.Range {
		if err != nil {
			return vk.Range{}
		}
		var b *vk.Buffer
		if b, err = ops.Upload(d, m.arena, name, ops.F32Bytes(get(name))); err != nil {
			return vk.Range{}
		}
		return b.All()
	}
	conv := func(name string, cout, cin, ks, stride int, up bool) *ops.Conv {
		if err != nil {
			return nil
		}
		var t *quant.Tensor
		inner := ks > 1 // the tensor-core gather's fast order
		wv := get(name + ".weight")
		if inner {
			wv = ops.CinInner(wv, cout, cin, ks)
		}
		if t, err = quant.Quantize(m.Format, cout, cin*ks*ks, wv); err != nil {
			return nil
		}
		var w *ops.Weight
		if w, err = m.O.UploadWeight(m.arena, name, t); err != nil {
			return nil
		}
		return &ops.Conv{W: w, Bias: vec(name + ".bias"), KS: ks, Stride: stride, Upsample: up, CinInner: inner}
	}
	res := func(name string, cin, cout int) *resBlock {
		r := &resBlock{cin: cin, cout: cout,
			n1g: vec(name + ".norm1.weight"), n1b: vec(name + ".norm1.bias"),
			c1:  conv(name+".conv1", cout, cin, 3, 1, false),
			n2g: vec(name + ".norm2.weight"), n2b: vec(name + ".norm2.bias"),
			c2: conv(name+".conv2", cout, cout, 3, 1, false)}
		if cin != cout {
			r.nin = conv(name+".nin_shortcut", cout, cin, 1, 1, false)
		}
		return r
	}
	attn := func(name string, ch int) *attnBlock {
		a := &attnBlock{ch: ch, ng: vec(name + ".norm.weight"), nb: vec(name + ".norm.bias"),
			q: conv(name+".q", ch, ch, 1, 1, false), k: conv(name+".k", ch, ch, 1, 1, false),
			v: conv(name+".v", ch, ch, 1, 1, false), proj: conv(name+".proj_out", ch, ch, 1, 1, false)}
		a.q.OutPM, a.k.OutPM, a.proj.InPM = true, true, true
		return a
	}
	L, C := len(cfg.ChMult), cfg.Ch
	if !o.DecodeOnly { // the encoder
		e := &network{convIn: conv("encoder.conv_in", C, cfg.InChannels, 3, 1, false)}
		bin, cur := C, cfg.Resolution
		for i := 0; i < L; i++ {
			var blocks []any
			bout := C * cfg.ChMult[i]
			for j := 0; j < cfg.NumResBlocks; j++ {
				blocks = append(blocks, res(fmt.Sprintf("encoder.down.%d.block.%d", i, j), bin, bout))
				bin = bout
				if cfg.attnAt(cur) {
					blocks = append(blocks, attn(fmt.Sprintf("encoder.down.%d.attn.%d", i, j), bin))
				}
			}
			var rs *ops.Conv
			if i != L-1 {
				rs = conv(fmt.Sprintf("encoder.down.%d.downsample.conv", i), bin, bin, 3, 2, false)
				cur /= 2
			}
			e.levels, e.resample = append(e.levels, blocks), append(e.resample, rs)
		}
		e.mid = [3]any{res("encoder.mid.block_1", bin, bin), attn("encoder.mid.attn_1", bin), res("encoder.mid.block_2", bin, bin)}
		e.normOutG, e.normOutB = vec("encoder.norm_out.weight"), vec("encoder.norm_out.bias")
		e.convOut = conv("encoder.conv_out", cfg.ZChannels, bin, 3, 1, false)
		qc := conv("quant_conv", cfg.EmbedDim, cfg.ZChannels, 1, 1, false)
		if qc != nil {
			qc.OutPM = true
		}
		m.enc, m.quantConv = e, qc
	}
	// Codebook and decoder.
	if err == nil {
		var t *quant.Tensor
		if t, err = quant.Quantize(quant.F32, cfg.CodebookSize, cfg.EmbedDim, get("quantize.embedding.weight")); err == nil {
			m.codebook, err = m.O.UploadWeight(m.arena, "codebook", t)
		}
	}
	m.postQuantConv = conv("post_quant_conv", cfg.ZChannels, cfg.EmbedDim, 1, 1, false)
	if m.postQuantConv != nil {
		m.postQuantConv.InPM = true
	}
	bin, cur := C*cfg.ChMult[L-1], cfg.Resolution>>(L-1)
	dn := &network{convIn: conv("decoder.conv_in", bin, cfg.ZChannels, 3, 1, false)}
	dn.mid = [3]any{res("decoder.mid.block_1", bin, bin), attn("decoder.mid.attn_1", bin), res("decoder.mid.block_2", bin, bin)}
	dn.levels, dn.resample = make([][]any, L), make([]*ops.Conv, L)
	for i := L - 1; i >= 0; i-- {
		bout := C * cfg.ChMult[i]
		for j := 0; j <= cfg.NumResBlocks; j++ {
			dn.levels[i] = append(dn.levels[i], res(fmt.Sprintf("decoder.up.%d.block.%d", i, j), bin, bout))
			bin = bout
			if cfg.attnAt(cur) {
				dn.levels[i] = append(dn.levels[i], attn(fmt.Sprintf("decoder.up.%d.attn.%d", i, j), bin))
			}
		}
		if i != 0 {
			dn.resample[i] = conv(fmt.Sprintf("decoder.up.%d.upsample.conv", i), bin, bin, 3, 1, true)
			cur *= 2
		}
	}
	dn.normOutG, dn.normOutB = vec("decoder.norm_out.weight"), vec("decoder.norm_out.bias")
	dn.convOut = conv("decoder.conv_out", cfg.OutCh, bin, 3, 1, false)
	m.dec = dn
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("loading the vision tokenizer: %w", err)
	}
	return m, nil
}

// Close frees the weights.
func (m *Model) Close() {
	m.run.Lock() // after any decode in flight (Warm's, a preview's)
	defer m.run.Unlock()
	if m.arena != nil {
		m.arena.Free()
		m.arena = nil
	}
	m.releaseWork()
}

// ReleaseWork frees the device memory the last Decode or Encode kept for its
// activations (the next run allocates it again).
func (m *Model) ReleaseWork() {
	m.run.Lock()
	defer m.run.Unlock()
	m.releaseWork()
}

func (m *Model) workMemReserved() uint64 {
	if m.workMem == nil {
		return 0
	}
	return m.workMem.Reserved()
}

func (m *Model) releaseWork() {
	if m.workMem != nil {
		m.workMem.Free()
		m.workMem = nil
	}
}

// Bytes is the device memory the weights hold.
func (m *Model) Bytes() uint64 { return m.arena.Reserved() }

// work holds one run's activations: four buffers of the largest C·H·W, and the
// attention and GroupNorm scratch.
type work struct {
	arena      *vk.Arena
	a, b, c, d vk.Range
	s          vk.Range // attention scores [N, N] (also codebook scores)
	stats      vk.Range
	cmd        *vk.Cmd
	prof       map[string]*vk.OpTime // per-op GPU time, when profiling
}

// step ends an op: a barrier and, when profiling, a timestamp labelled with
// the op and the grid it works on (w×h).
func (w *work) step(op string, h, wd int) {
	w.cmd.Barrier()
	if w.prof != nil {
		w.cmd.Timestamp(fmt.Sprintf("%s %dx%d", op, wd, h))
	}
}

// submit runs what was recorded, adding its timings when profiling.
func (w *work) submit(ctx context.Context) error {
	err := w.cmd.Submit(ctx)
	if w.prof != nil {
		vk.AddTimings(w.prof, w.cmd.Timings())
		w.cmd.Timestamp("start") // the next recording's first interval starts here
	}
	return err
}

// sideCHW is the largest tensor the fourth buffer holds on an h×w code grid: the
// 1×1 shortcuts (cout × pixels of their level), attention's k and v (C × N),
// and the codebook-side tensors (channels × h·w). At 1024² it is a quarter of
// maxCHW, which saves about 0.8 GB.
func (m *Model) sideCHW(h, wd int) int {
	cfg := m.Cfg
	L, C, f := len(cfg.ChMult), cfg.Ch, cfg.Factor()
	pixels := func(i int) int { s := f >> i; return s * s * h * wd }     // level i's resolution
	best := max(cfg.ZChannels, cfg.EmbedDim, C*cfg.ChMult[L-1]) * h * wd // codebook side; mid attention
	res := cfg.Resolution
	bin := C
	for i := 0; i < L; i++ { // encoder
		bout := C * cfg.ChMult[i]
		for j := 0; j < cfg.NumResBlocks; j++ {
			if bin != bout {
				best = max(best, bout*pixels(i))
			}
			bin = bout
			if cfg.attnAt(res >> i) {
				best = max(best, bin*pixels(i))
			}
		}
	}
	bin = C * cfg.ChMult[L-1]
	for i := L - 1; i >= 0; i-- { // decoder
		bout := C * cfg.ChMult[i]
		for j := 0; j <= cfg.NumResBlocks; j++ {
			if bin != bout {
				best = max(best, bout*pixels(i))
			}
			bin = bout
			if cfg.attnAt(res >> i) {
				best = max(best, bin*pixels(i))
			}
		}
	}
	return best
}

// WorkBytes is the device memory a decode or encode on an h×w grid allocates
// for its activations.
func (m *Model) WorkBytes(h, wd int) int64 {
	return workBytes(m.maxCHW(h, wd), m.sideCHW(h, wd), h*wd, 0)
}

// workBytes is what newWork allocates for those arguments, but the small
// GroupNorm scratch: three buffers of maxCHW, one of sideCHW and the scores.
func workBytes(maxCHW, sideCHW, maxN, scores int) int64 {
	return 4 * int64(3*maxCHW+sideCHW+max(maxN*maxN, scores))
}

func (m *Model) newWork(maxCHW, sideCHW, maxN, scores int) (*work, error) {
	// Keep the last run's memory only when it fits this run without being
	// more than twice as large (previews of growing grids, a smaller encode;
	// small runs share the arena's first 256 MiB block).
	need := uint64(workBytes(maxCHW, sideCHW, maxN, scores))
	if r := m.workMemReserved(); r < need || r > 2*need+256<<20 {
		m.releaseWork()
	}
	if m.workMem == nil {
		m.workMem = m.D.NewArena(vk.DeviceMem)
	}
	w := &work{arena: m.workMem}
	al := &vk.Allocs{A: w.arena}
	alloc := al.F32
	w.a, w.b, w.c, w.d = alloc("a", maxCHW), alloc("b", maxCHW), alloc("c", maxCHW), alloc("d", sideCHW)
	w.s = alloc("scores", max(maxN*maxN, scores))
	w.stats = alloc("gn", int(ops.GNScratch(maxCHW, 1, 32)/4)+64*64)
	err := al.Err
	if err == nil {
		w.cmd, err = m.D.NewCmd()
	}
	if err != nil {
		w.free()
		m.releaseWork() // what did fit goes back too
		return nil, fmt.Errorf("allocating the vision tokenizer's activations (%.2f GiB): %w", float64(need)/(1<<30), err)
	}
	return w, nil
}

// free ends a run: its command buffer and buffers go, the memory under them
// stays in the model's workMem for the next run.
func (w *work) free() {
	if w.cmd != nil {
		w.cmd.Release()
	}
	w.arena.Reset()
}

// resBlock records x = block(x) in place for x [cin, h·w] (x in w.a).
func (m *Model) resBlock(w *work, r *resBlock, x vk.Range, h, wd int) {
	o, c := m.O, w.cmd
	hw := h * wd
	o.GroupNorm(c, x, r.n1g, r.n1b, w.b, w.stats, r.cin, hw, 32, 1e-6, true)
	w.step("groupnorm+swish", h, wd)
	o.Conv2D(c, r.c1, w.b, h, wd, vk.Range{}, w.c)
	w.step("conv3x3", h, wd)
	o.GroupNorm(c, w.c, r.n2g, r.n2b, w.b, w.stats, r.cout, hw, 32, 1e-6, true)
	w.step("groupnorm+swish", h, wd)
	short := x
	if r.nin != nil {
		o.Conv2D(c, r.nin, x, h, wd, vk.Range{}, w.d)
		w.step("conv1x1 shortcut", h, wd)
		short = w.d
	}
	o.Conv2D(c, r.c2, w.b, h, wd, short, x) // x = conv2 + shortcut: each element reads its own residual first
	w.step("conv3x3", h, wd)
}

// attnBlock records x = x + proj(attention(GN(x))) in place for x [ch, N].
func (m *Model) attnBlock(w *work, a *attnBlock, x vk.Range, h, wd int) {
	o, c := m.O, w.cmd
	N, C := h*wd, a.ch
	o.GroupNorm(c, x, a.ng, a.nb, w.b, w.stats, C, N, 32, 1e-6, false)
	w.step("groupnorm", h, wd)
	o.Conv2D(c, a.q, w.b, h, wd, vk.Range{}, w.c) // q [N, C]
	o.Conv2D(c, a.k, w.b, h, wd, vk.Range{}, w.d) // k [N, C]
	w.step("attention", h, wd)
	o.MatMul(c, ops.F32Weight(w.d, N, C), ops.Act{R: w.c, Cols: N, K: C, Stride: C}, w.s, N) // S = q·kᵀ [N, N]
	w.step("attention", h, wd)
	o.Conv2D(c, a.v, w.b, h, wd, vk.Range{}, w.d) // v [C, N] (k is no longer needed)
	o.Softmax(c, w.s, N, N, float32(1/math.Sqrt(float64(C))))
	w.step("attention", h, wd)
	o.MatMul(c, ops.F32Weight(w.d, C, N), ops.Act{R: w.s, Cols: N, K: N, Stride: N}, w.c, C) // O = S·vᵀ [N, C]
	w.step("attention", h, wd)
	o.Conv2D(c, a.proj, w.c, h, wd, x, x)
	w.step("attention", h, wd)
}

func (m *Model) block(w *work, b any, x vk.Range, h, wd int) {
	switch b := b.(type) {
	case *resBlock:
		m.resBlock(w, b, x, h, wd)
	case *attnBlock:
		m.attnBlock(w, b, x, h, wd)
	}
}

// maxCHW is the largest channels × pixels any activation of a run on an h×w code
// grid takes (pixels up to (f·h)×(f·w)).
func (m *Model) maxCHW(h, wd int) int {
	cfg := m.Cfg
	f := cfg.Factor()
	best := 3 * f * f * h * wd
	for i, mult := range cfg.ChMult {
		s := f >> i // level i works at (s·h)×(s·w); its upsample (decoder) doubles that
		best = max(best, cfg.Ch*mult*s*s*h*wd)
		if i > 0 {
			best = max(best, cfg.Ch*mult*4*s*s*h*wd)
		}
	}
	return max(best, cfg.Ch*cfg.ChMult[len(cfg.ChMult)-1]*h*wd, cfg.ZChannels*h*wd)
}

// Warm builds the pipelines a decode uses by decoding a 2×2 grid of code 0.
// The driver compiles each on first use (seconds in all for the tensor-core
// convolutions when the pipeline cache is empty), so gen runs this beside
// the LM's generation and the first image does not wait for it.
// Its activations' memory is given back at once: it would otherwise stay
// beside the LM's for the whole generation.
func (m *Model) Warm(ctx context.Context) error {
	_, err := m.Decode(ctx, make([]int32, 4), 2, 2)
	m.ReleaseWork()
	return err
}

// Decode turns a grid of codes [h, w] (row-major) into float pixels [3, f·h, f·w]
// (the decoder's raw output, about [−1, 1], not clamped).
func (m *Model) Decode(ctx context.Context, codes []int32, h, wd int) ([]float32, error) {
	px, _, err := m.decode(ctx, codes, h, wd, false)
	return px, err
}

// ProfileDecode decodes with a GPU timestamp after every op and returns the
// time per kind of op and grid (the grid an op works on: codes ×1, ×2, ... up
// to pixels), largest first, with the host's allocation of the activations and
// readback of the pixels ("host: ..." ops, wall clock).
func (m *Model) ProfileDecode(ctx context.Context, codes []int32, h, wd int) ([]vk.OpTime, error) {
	_, prof, err := m.decode(ctx, codes, h, wd, true)
	return prof, err
}

func (m *Model) decode(ctx context.Context, codes []int32, h, wd int, profile bool) ([]float32, []vk.OpTime, error) {
	m.run.Lock()
	defer m.run.Unlock()
	if m.arena == nil {
		return nil, nil, errors.New("vq: decoding with a closed model")
	}
	cfg := m.Cfg
	if h <= 0 || wd <= 0 || len(codes) != h*wd {
		return nil, nil, fmt.Errorf("a %d×%d grid needs %d codes, got %d", h, wd, h*wd, len(codes))
	}
	for i, k := range codes {
		if k < 0 || int(k) >= cfg.CodebookSize {
			return nil, nil, fmt.Errorf("code %d (row %d, column %d) is %d, outside the codebook [0, %d)", i, i/wd, i%wd, k, cfg.CodebookSize)
		}
	}
	attnN := 0
	if cfg.attnAt(cfg.Resolution >> (len(cfg.ChMult) - 1)) {
		attnN = h * wd
	}
	t0 := time.Now()
	w, err := m.newWork(m.maxCHW(h, wd), m.sideCHW(h, wd), max(h*wd, attnN), 0)
	if err != nil {
		return nil, nil, err
	}
	defer w.free()
	if profile {
		w.prof = map[string]*vk.OpTime{"host: allocate activations": {Op: "host: allocate activations", Count: 1, NS: float64(time.Since(t0))}}
		w.cmd.Timestamp("start")
	}
	ids, err := ops.Upload(m.D, w.arena, "codes", ops.I32Bytes(codes))
	if err != nil {
		return nil, nil, err
	}
	o, c, dn := m.O, w.cmd, m.dec
	o.Embed(c, m.codebook, ids.All(), h*wd, w.b) // z_q [hw, D] pixel-major
	w.step("codebook", h, wd)
	o.Conv2D(c, m.postQuantConv, w.b, h, wd, vk.Range{}, w.c) // [Z, hw]
	w.step("conv1x1", h, wd)
	o.Conv2D(c, dn.convIn, w.c, h, wd, vk.Range{}, w.a)
	w.step("conv3x3", h, wd)
	for _, b := range dn.mid {
		m.block(w, b, w.a, h, wd)
	}
	ch, cw := h, wd
	for i := len(cfg.ChMult) - 1; i >= 0; i-- {
		for _, b := range dn.levels[i] {
			m.block(w, b, w.a, ch, cw)
		}
		if up := dn.resample[i]; up != nil {
			o.Conv2D(c, up, w.a, ch, cw, vk.Range{}, w.b)
			w.step("upsample+conv3x3", 2*ch, 2*cw)
			w.a, w.b = w.b, w.a // the result is the next level's x (the buffers are one size)
			ch, cw = 2*ch, 2*cw
		}
		if err := w.submit(ctx); err != nil { // a level at a time: Ctrl-C is noticed
			return nil, nil, err
		}
	}
	last := dn.convOut.W.K / 9
	o.GroupNorm(c, w.a, dn.normOutG, dn.normOutB, w.b, w.stats, last, ch*cw, 32, 1e-6, true)
	w.step("groupnorm+swish", ch, cw)
	o.Conv2D(c, dn.convOut, w.b, ch, cw, vk.Range{}, w.c)
	w.step("conv3x3 out", ch, cw)
	if err := w.submit(ctx); err != nil {
		return nil, nil, err
	}
	t0 = time.Now()
	px, err := ops.DownloadF32(m.D, w.c, cfg.OutCh*ch*cw)
	if err != nil || !profile {
		return px, nil, err
	}
	w.prof["host: read back pixels"] = &vk.OpTime{Op: "host: read back pixels", Count: 1, NS: float64(time.Since(t0))}
	return px, vk.SortedTimes(w.prof), nil
}

// Encode turns pixels [3, H, W] in [−1, 1] (H, W multiples of the factor) into
// codes [H/f, W/f] by the argmax of z·E over the codebook (IBQ uses the dot
// product), and also returns z [D, h·w] (after quant_conv).
func (m *Model) Encode(ctx context.Context, pixels []float32, H, W int) (codes []int32, z []float32, err error) {
	m.run.Lock()
	defer m.run.Unlock()
	if m.enc == nil {
		return nil, nil, fmt.Errorf("the vision tokenizer was loaded without its encoder (vq.Options.DecodeOnly): reference images cannot be encoded")
	}
	cfg := m.Cfg
	f := cfg.Factor()
	if H <= 0 || W <= 0 || H%f != 0 || W%f != 0 || len(pixels) != cfg.InChannels*H*W {
		return nil, nil, fmt.Errorf("image of %d values for %d×%d×%d: the sides must be positive multiples of %d", len(pixels), cfg.InChannels, H, W, f)
	}
	h, wd := H/f, W/f
	chunk := min(cfg.CodebookSize, max(64, (64<<20)/(4*h*wd))/64*64)
	w, err := m.newWork(m.maxCHW(h, wd), m.sideCHW(h, wd), h*wd, h*wd*chunk)
	if err != nil {
		return nil, nil, err
	}
	defer w.free()
	if err := m.D.Upload(w.a.Sub(0, uint64(4*len(pixels))), ops.F32View(pixels)); err != nil {
		return nil, nil, err
	}
	o, c, e := m.O, w.cmd, m.enc
	o.Conv2D(c, e.convIn, w.a, H, W, vk.Range{}, w.b)
	c.Barrier()
	w.a, w.b = w.b, w.a // x (the buffers are one size)
	ch, cw := H, W
	for i := range cfg.ChMult {
		for _, b := range e.levels[i] {
			m.block(w, b, w.a, ch, cw)
		}
		if dn := e.resample[i]; dn != nil {
			o.Conv2D(c, dn, w.a, ch, cw, vk.Range{}, w.b)
			ch, cw = dn.OutSize(ch, cw)
			c.Barrier()
			w.a, w.b = w.b, w.a
		}
		if err := c.Submit(ctx); err != nil {
			return nil, nil, err
		}
	}
	for _, b := range e.mid {
		m.block(w, b, w.a, ch, cw)
	}
	last := e.convOut.W.K / 9
	o.GroupNorm(c, w.a, e.normOutG, e.normOutB, w.b, w.stats, last, ch*cw, 32, 1e-6, true)
	c.Barrier()
	o.Conv2D(c, e.convOut, w.b, ch, cw, vk.Range{}, w.c)
	c.Barrier()
	o.Conv2D(c, m.quantConv, w.c, ch, cw, vk.Range{}, w.d) // z [hw, D] pixel-major
	c.Barrier()
	best := w.b.Sub(0, uint64(8*h*wd))
	for base := 0; base < cfg.CodebookSize; base += chunk {
		n := min(chunk, cfg.CodebookSize-base)
		o.MatMul(c, m.codebook.View(base, base+n), ops.Act{R: w.d, Cols: h * wd, K: cfg.EmbedDim, Stride: cfg.EmbedDim}, w.s, n)
		c.Barrier()
		o.ArgmaxUpdate(c, w.s, best, h*wd, n, base, base == 0)
		c.Barrier()
		if err := c.Submit(ctx); err != nil {
			return nil, nil, err
		}
	}
	bv := make([]byte, 8*h*wd)
	if err := m.D.Download(best, bv); err != nil {
		return nil, nil, err
	}
	codes = make([]int32, h*wd)
	for i := range codes {
		codes[i] = int32(binary.LittleEndian.Uint32(bv[8*i+4:]))
	}
	zpm, err := ops.DownloadF32(m.D, w.d, h*wd*cfg.EmbedDim)
	if err != nil {
		return nil, nil, err
	}
	z = make([]float32, len(zpm)) // channel-major, as the reference reports it
	for p := 0; p < h*wd; p++ {
		for ch := 0; ch < cfg.EmbedDim; ch++ {
			z[ch*h*wd+p] = zpm[p*cfg.EmbedDim+ch]
		}
	}
	return codes, z, nil
}
