// Package lm is the Emu3.5 language model on the GPU: loading a checkpoint (or
// building a synthetic one), the forward pass over batches of sequences with a
// KV cache, and logits for chosen rows and token ranges.
package lm

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/emu35/emu35/model"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/model/safetensors"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

// Model is the language model's weights on one device.
type Model struct {
	Cfg    model.Config
	Format quant.Format
	D      *vk.Device
	O      *ops.Ops

	arena *vk.Arena
	embed embedder             // [V, H] in host memory (embed.go)
	files interface{ Close() } // the checkpoint, mapped while embed reads it
	// stopReadAhead ends the background read of the embedding table (Load).
	stopReadAhead context.CancelFunc

	// KVQ8 makes the sessions created afterwards keep an int8 KV cache (a
	// scale per cached vector; half the memory and attention reads of f16).
	KVQ8 bool
	// F16Act has passes of many rows (prefill) hand their matrix products f16
	// activations: what the tensor-core GEMM rounds its inputs to anyway, at
	// half the bytes. On by default where the device has tensor cores.
	F16Act bool
	// TouchWeights has a decode step touch each layer's weights (a word a
	// page, ops.Touch) while the previous layer's qkv projection runs (or its
	// attention: ops.Ops.TouchAt), so the mat-vecs do not wait for address
	// translations: a step reads far more pages than the device's translation
	// caches hold. On by default. Measured on an H100 (steps on the GPU, 1k /
	// 4k): q4 10.18 / 10.93 ms without, 9.66 / 10.42 with; q8 15.34 / 16.30
	// and 14.90 / 15.90; bf16 25.57 / 26.50 and 25.15 / 26.13. Beside the
	// attention (until the fifteenth session, and then for q4 only) the
	// touches saved q4 about 0.3 ms and cost q8 and bf16 as much as they
	// saved: there they lengthen the latency-bound attention, while the qkv
	// projection, 80 workgroups of one head, leaves SMs idle.
	TouchWeights bool
	head         *ops.Weight // [V, H]
	norm         vk.Range    // f32 [H]
	layers       []layer
	// draws is the embedding rows of the ids a GPU draw picks from, in
	// host memory, for chained decode steps (chain.go: PrepareDraws).
	draws *drawTable
}

type layer struct {
	attnNorm, mlpNorm vk.Range    // f32 [H]
	qNorm, kNorm      vk.Range    // f32 [d]
	qkv               *ops.Weight // [(nq+2nkv)·d, H]: q_proj, k_proj, v_proj rows
	o                 *ops.Weight // [H, nq·d]
	gateUp            *ops.Weight // [2I, H]: gate_proj then up_proj rows
	down              *ops.Weight // [H, I]
}

// parts lists the buffers of the layer's four matrices, in the order a step
// reads them.
func (ly *layer) parts() []vk.Range {
	var rs []vk.Range
	for _, w := range []*ops.Weight{ly.qkv, ly.o, ly.gateUp, ly.down} {
		for _, ch := range w.Chunks {
			rs = append(rs, ch.Parts...)
		}
	}
	return rs
}

// Options configure loading.
type Options struct {
	// Format of the big matrices; Auto picks the best that fits the device.
	Format quant.Format
	Auto   bool
	// Room to reserve for sessions (KV cache, activations) when choosing a format.
	Reserve int64
	// Progress receives a progress bar while weights are uploaded (nil: none).
	Progress io.Writer
}

// HeadFormat is the format of the output head for layer format f: q4 models
// keep it at q8_0, whose error dominates otherwise (the head's rounding goes
// straight into the logits); others use f.
func HeadFormat(f quant.Format) quant.Format {
	if f == quant.Q4 {
		return quant.Q8_0
	}
	return f
}

// WeightBytes is the device memory the weights take in format f (the
// embedding stays in host memory).
func WeightBytes(c model.Config, f quant.Format) int64 {
	H, d, I := c.HiddenSize, c.HeadDim, c.IntermediateSize
	per := f.Bytes((c.Heads+2*c.KVHeads)*d, H) + f.Bytes(H, c.Heads*d) + f.Bytes(2*I, H) + f.Bytes(H, I) + int64(4*(2*H+2*d))
	return int64(c.Layers)*per + HeadFormat(f).Bytes(c.VocabSize, H) + int64(4*H)
}

// ChooseFormat returns the requested format, or with auto the best of bf16, q8,
// q4 whose weights plus reserve fit 92 % of the device's memory.
func ChooseFormat(d *vk.Device, c model.Config, o Options) (quant.Format, error) {
	avail := int64(d.Caps.DeviceLocalBytes()) * 92 / 100
	if !o.Auto {
		if need := WeightBytes(c, o.Format) + o.Reserve; need > avail {
			hint := "try --weights q4"
			if o.Format == quant.Q4 {
				hint = "q4 is the smallest format: free device memory, or shrink the rest (--kv q8, no --view, fewer --max-tokens)"
			}
			return 0, fmt.Errorf("%w: %s weights need %.1f GiB (+%.1f GiB for the KV cache and activations), the device has %.1f GiB usable; %s",
				vk.ErrOutOfMemory, o.Format, gib(WeightBytes(c, o.Format)), gib(o.Reserve), gib(avail), hint)
		}
		return o.Format, nil
	}
	for _, f := range []quant.Format{quant.BF16, quant.Q8_0, quant.Q4} {
		if WeightBytes(c, f)+o.Reserve <= avail {
			return f, nil
		}
	}
	return 0, fmt.Errorf("%w: even q4 weights need %.1f GiB (+%.1f GiB for the KV cache and activations), the device has %.1f GiB",
		vk.ErrOutOfMemory, gib(WeightBytes(c, quant.Q4)), gib(o.Reserve), gib(avail))
}

func gib(n int64) float64 { return float64(n) / (1 << 30) }

// CheckTensors compares a checkpoint's tensors with what cfg needs and returns
// one error listing every missing, unexpected or wrongly shaped tensor.
func CheckTensors(cfg model.Config, tensors map[string]*safetensors.Tensor) error {
	var mm safetensors.Mismatch
	want := map[string]bool{}
	for _, ts := range cfg.Tensors() {
		want[ts.Name] = true
		t, ok := tensors[ts.Name]
		if !ok {
			mm.Missing = append(mm.Missing, ts.Name)
			continue
		}
		if fmt.Sprint(t.Shape) != fmt.Sprint(ts.Shape) {
			mm.Shape = append(mm.Shape, fmt.Sprintf("%s is %v, want %v", ts.Name, t.Shape, ts.Shape))
		}
		if t.DType != "BF16" && t.DType != "F16" && t.DType != "F32" {
			mm.DType = append(mm.DType, fmt.Sprintf("%s is %s", ts.Name, t.DType))
		}
	}
	for name := range tensors {
		if !want[name] && !strings.HasSuffix(name, "rotary_emb.inv_freq") {
			mm.Extra = append(mm.Extra, name)
		}
	}
	return mm.Err("the checkpoint does not match its config.json:")
}

// Load reads a checkpoint directory (config.json + safetensors, sharded or not)
// into device memory, converting or quantizing on the GPU as o.Format asks.
func Load(ctx context.Context, d *vk.Device, dir string, o Options) (*Model, error) {
	cfg, err := model.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	if err := CheckTensors(cfg, set.Tensors); err != nil {
		set.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	f, err := ChooseFormat(d, cfg, o)
	if err != nil {
		set.Close()
		return nil, err
	}
	m, err := alloc(d, cfg, f)
	if err != nil {
		set.Close()
		return nil, err
	}
	const embedName = "model.embed_tokens.weight"
	m.embed, m.files = tensorEmbed{set.Tensors[embedName], cfg.HiddenSize}, set
	ld := &loader{m: m, ctx: ctx}
	var total int64
	for name, t := range set.Tensors {
		if name != embedName || cfg.TieWordEmbeddings {
			total += int64(len(t.Data))
		}
	}
	if o.Progress != nil {
		ld.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(o.Progress), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("loading "+f.String()+" weights"), progressbar.OptionThrottle(200e6),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	if err := ld.all(set.Tensors); err != nil {
		m.Close()
		return nil, err
	}
	if ld.bar != nil {
		ld.bar.Finish()
	}
	// A decode step reads its tokens' embedding rows through the mapping. Read
	// the table into the page cache now, in the background, so that no step
	// waits on the disk for a row's first use (4,096 random rows of a 1.3 GB
	// table: 0.67 s from a cold cache on a virtual disk, 16 ms once read).
	// Best effort: if it fails, rows are read when first used, as before.
	bg, stop := context.WithCancel(context.Background())
	m.stopReadAhead = stop
	go set.Tensors[embedName].ReadAhead(bg)
	return m, nil
}

// alloc makes the weight buffers of a model of format f.
func alloc(d *vk.Device, cfg model.Config, f quant.Format) (*Model, error) {
	m := &Model{Cfg: cfg, Format: f, D: d, O: ops.New(d), arena: d.NewArena(vk.DeviceMem)}
	m.F16Act = m.O.CoopMat
	m.TouchWeights = true
	H, dh, I := cfg.HiddenSize, cfg.HeadDim, cfg.IntermediateSize
	al := &vk.Allocs{A: m.arena} // the weights share its first error
	wf := func(name string, f quant.Format, rows, k int) *ops.Weight {
		if al.Err != nil {
			return nil
		}
		var x *ops.Weight
		x, al.Err = m.O.NewWeight(m.arena, name, f, rows, k)
		return x
	}
	w := func(name string, rows, k int) *ops.Weight { return wf(name, f, rows, k) }
	v := al.F32
	m.head = wf("lm_head", HeadFormat(f), cfg.VocabSize, H)
	m.norm = v("norm", H)
	for l := 0; l < cfg.Layers && al.Err == nil; l++ {
		m.layers = append(m.layers, layer{
			attnNorm: v("attn_norm", H), mlpNorm: v("mlp_norm", H), qNorm: v("q_norm", dh), kNorm: v("k_norm", dh),
			qkv: w("qkv", (cfg.Heads+2*cfg.KVHeads)*dh, H), o: w("o", H, cfg.Heads*dh),
			gateUp: w("gate_up", 2*I, H), down: w("down", H, I),
		})
	}
	if al.Err != nil {
		m.Close()
		return nil, fmt.Errorf("allocating %s weights (%.1f GiB): %w", f, gib(WeightBytes(cfg, f)), al.Err)
	}
	return m, nil
}

// Close frees the weights and unmaps the checkpoint; it may be called again.
func (m *Model) Close() {
	if m.stopReadAhead != nil {
		m.stopReadAhead()
	}
	m.closeDraws()
	if m.arena != nil {
		m.arena.Free()
		m.arena = nil
	}
	if m.files != nil {
		m.files.Close()
		m.files = nil
	}
}

// Bytes is the device memory the weights hold.
func (m *Model) Bytes() uint64 { return m.arena.Reserved() }

// loader moves checkpoint tensors into the model's buffers.
type loader struct {
	m   *Model
	ctx context.Context
	bar *progressbar.ProgressBar
	tmp *vk.Arena
	buf *vk.Buffer
	cmd *vk.Cmd
}

const loadChunk = 64 << 20

func (ld *loader) all(ts map[string]*safetensors.Tensor) error {
	m := ld.m
	cfg := m.Cfg
	ld.tmp = m.D.NewArena(vk.DeviceMem)
	defer ld.tmp.Free()
	var err error
	if ld.buf, err = ld.tmp.Alloc("load", loadChunk); err != nil {
		return err
	}
	if ld.cmd, err = m.D.NewCmd(); err != nil {
		return err
	}
	defer ld.cmd.Release()
	H, dh, I := cfg.HiddenSize, cfg.HeadDim, cfg.IntermediateSize
	type target struct {
		name string
		w    *ops.Weight
		row0 int
	}
	var mats []target
	vecs := map[string]vk.Range{"model.norm.weight": m.norm}
	mats = append(mats, target{"lm_head.weight", m.head, 0})
	for l, ly := range m.layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		mats = append(mats,
			target{p + "self_attn.q_proj.weight", ly.qkv, 0},
			target{p + "self_attn.k_proj.weight", ly.qkv, cfg.Heads * dh},
			target{p + "self_attn.v_proj.weight", ly.qkv, (cfg.Heads + cfg.KVHeads) * dh},
			target{p + "self_attn.o_proj.weight", ly.o, 0},
			target{p + "mlp.gate_proj.weight", ly.gateUp, 0},
			target{p + "mlp.up_proj.weight", ly.gateUp, I},
			target{p + "mlp.down_proj.weight", ly.down, 0})
		vecs[p+"input_layernorm.weight"] = ly.attnNorm
		vecs[p+"post_attention_layernorm.weight"] = ly.mlpNorm
		vecs[p+"self_attn.q_norm.weight"] = ly.qNorm
		vecs[p+"self_attn.k_norm.weight"] = ly.kNorm
	}
	_ = H
	for name, r := range vecs {
		x, err := ts[name].F32()
		if err != nil {
			return err
		}
		if err := m.D.Upload(r, ops.F32Bytes(x)); err != nil {
			return fmt.Errorf("uploading %s: %w", name, err)
		}
		ld.progress(len(ts[name].Data))
	}
	if cfg.TieWordEmbeddings {
		ts["lm_head.weight"] = ts["model.embed_tokens.weight"]
	}
	for _, t := range mats {
		if err := ld.ctx.Err(); err != nil {
			return err
		}
		if err := ld.matrix(ts[t.name], t.w, t.row0); err != nil {
			return fmt.Errorf("loading %s: %w", t.name, err)
		}
	}
	return nil
}

func (ld *loader) progress(n int) {
	if ld.bar != nil {
		ld.bar.Add(n)
	}
}

// matrix stores tensor t [rows, K] at rows row0.. of w: bf16 is copied, other
// targets are quantized on the GPU from bf16 (or f32) in slices of rows.
func (ld *loader) matrix(t *safetensors.Tensor, w *ops.Weight, row0 int) error {
	rows, k := t.Shape[0], t.Shape[1]
	esz := map[string]int{"BF16": 2, "F16": 2, "F32": 4}[t.DType]
	step := max(1, loadChunk/(4*k)) / 64 * 64
	if step == 0 {
		step = 1
	}
	for r := 0; r < rows; r += step {
		n := min(step, rows-r)
		raw := t.Data[r*k*esz : (r+n)*k*esz]
		if err := ld.rows(t.DType, raw, w, row0+r, n); err != nil {
			return err
		}
		ld.progress(len(raw))
	}
	return nil
}

func (ld *loader) rows(dtype string, raw []byte, w *ops.Weight, row0, n int) error {
	k := w.K
	toF32 := func() []float32 {
		tt := &safetensors.Tensor{DType: dtype, Shape: []int{n, k}, Data: raw}
		x, _ := tt.F32()
		return x
	}
	switch {
	case w.Format == quant.BF16 && dtype == "BF16":
		return ld.m.O.UploadRows(w, row0, n, [][]byte{raw})
	case !w.Format.Blocked() || row0%64 != 0:
		// Conversions to float formats, and quantizing at unaligned rows: on the CPU.
		qt, err := quant.Quantize(w.Format, n, k, toF32())
		if err != nil {
			return err
		}
		return ld.m.O.UploadRows(w, row0, n, qt.Parts)
	}
	bf := dtype == "BF16"
	src := raw
	if dtype == "F16" {
		src, bf = ops.F32Bytes(toF32()), false
	}
	if err := ld.m.D.Upload(ld.buf.Slice(0, uint64(len(src)+3)&^3), src); err != nil {
		return err
	}
	ld.m.O.QuantizeRows(ld.cmd, ld.buf.Slice(0, uint64(len(src))), bf, w, row0, n)
	return ld.cmd.Submit(ld.ctx)
}
