// Package ops records emu35's kernels: each method checks shapes, picks the
// shader variant and its specialization constants, and records the dispatch(es)
// into a vk.Cmd. Callers place Barriers between dependent ops.
package ops

import (
	"fmt"
	"math"
	"strings"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/shaders"
	"github.com/emu35/emu35/vk"
)

// Ops binds kernels to one device.
type Ops struct {
	D *vk.Device
	// Tuning, filled from the device by New.
	// MatVecShapes is the mat-vec's workgroup shape by weight format and
	// width (MatVecWidth). DefaultMatVecFor gives the measured defaults of the device.
	MatVecShapes [NumFormats][NumWidths]MatVecShape
	WG           uint32 // row kernels (norm, softmax)
	// MaxBinding is the largest range bound to one binding: the device's
	// maxStorageBufferRange; tests lower it to exercise row splitting.
	MaxBinding uint64
	// CoopMat selects the tensor-core matmul (the device offers 16×16×16
	// f16·f16+f32 cooperative matrices on subgroups of 32).
	CoopMat bool
	// CoopBK is the tensor-core matmul and convolution K step, 32 or 64 (64
	// measured faster on an H100: GEMM 79 → 86 TFLOP/s with q4 weights, VQ
	// decode 0.57 → 0.54 s, prefill 8.6 → 7.8 s).
	CoopBK uint32
	// CoopWG is the tensor-core matmul's workgroup for products of at least
	// CoopWGMinRows rows of f16 X: 256 invocations for a 128 × 128 tile, or 512 for
	// 256 × 128 (its K step is then 32, for shared memory). 512 is the default
	// where its 46 KiB of shared memory fit: so many invocations cap the
	// driver's registers at 128 an invocation (174 with 256), and the SM runs 16
	// subgroups instead of 8 (measured on an H100: GEMM 4096 × 25600 × 5120 q4
	// 169 → 177 TFLOP/s, q8_0 166 → 175, f16 177 → 179; prefill 2 × 4096 q4
	// 3.67 → 3.47–3.51 s). Fewer rows keep 256: a t2i prompt's prefill (132
	// tokens) took 0.18 s instead of 0.14 with the larger tile, whose few
	// workgroups left SMs idle. The convolutions keep 256 too: with the
	// 32-element K step the larger tile needs, the VQ decode was slower.
	CoopWG        uint32
	CoopWGMinRows int
	// DecodePrefetch is how many of an invocation's value loads single-query
	// attention issues before its scores (8 measured best on an H100 against
	// 32: 0.8 ms a step faster with the f16 cache, 0.1 with int8).
	DecodePrefetch uint32
	// DecodeValueBatch is the value loads one invocation of single-query
	// attention keeps in flight after the early ones; 0 picks 24 with the int8
	// cache (every value load of an invocation in two batches; measured on an
	// H100: a q4 step at 16k context 16.10 → 15.84–15.93 ms, at 4k 12.25 →
	// 12.17–12.20 ms), 12 in its several-tile form (decodeWavePerSM), and 8
	// with the f16 one (twice the registers). With the
	// int8 cache an invocation's whole key is loaded at once, with its early
	// values, before the queries.
	DecodeValueBatch uint32
	// DecodeHeads is the query heads of a KV head that one workgroup of
	// single-query attention takes; 0, or a number that does not divide the
	// group, picks by the number of key splits (decodeHeads).
	DecodeHeads uint32
	// QKVHeadsWG is the workgroup of QKVHeads (a decode step's qkv projection
	// a head a workgroup, with the qk norm, RoPE and KV store after it); 0
	// leaves decode steps on MatVec and QKNormRoPEStore. 1024 measured best
	// on an H100 (q4 step on the GPU 10.25 / 11.08 → 10.01–10.03 / 10.85–10.86
	// ms at 1k / 4k; 512: 10.45 / 11.30, 256: 10.78 / 11.65).
	QKVHeadsWG uint32
	// QKVSteps 2 has QKVHeads with float weights load each row's next weights
	// before the arithmetic of its current ones, 1 a step at a time; 0 picks
	// 2 with the f16 cache and 1 with the int8 one. Its 80 workgroups of a
	// whole head leave 52 of an H100's 132 SMs idle, so each must stream fast
	// on its own: on an H100 the bf16 step with the f16 cache took 0.14–0.17
	// ms less at 1k and 4k (sixteenth session); with the int8 cache, whose
	// epilogue takes more registers, the driver compiled the two steps into
	// 54 registers instead of 63 and the step took up to 0.11 ms more. Block
	// weights keep one step: loading a row's next block once its current one
	// is used measured slower (q4 +0.12 / +0.15 ms, q8 +0.18 / +0.37).
	QKVSteps uint32
	// DecodeWave is the workgroups of single-query attention (all of a
	// step's sequences together) that one wave of its MULTI form holds, whose
	// splits take several tiles of keys each, once one-tile splits would need
	// a second wave (decodeSplits); 0: decodeWavePerSM a multiprocessor.
	// Where the driver does not report the multiprocessors
	// (VK_NV_shader_sm_builtins), 0 keeps a tile a split.
	DecodeWave uint32
	// DecodeTile is the keys of single-query attention's tiles and the
	// invocations of its workgroups, 128 (0) or 256 (a workgroup's softmax
	// reductions and barriers serve twice the keys, and half as many
	// workgroups fit a multiprocessor). Measured on an H200, q4 steps at
	// 4300 / 8000 / 16000 keys: 256 +0.18 / +0.19 / +0.49 ms.
	DecodeTile uint32
	// DecodeCoop is 1 for single-query attention on tensor cores where the
	// cache and device allow it (decodeCoop), 0 (the default) for
	// attention_decode. Measured on an H200 (twenty-first session): correct,
	// and slower at every context (q4 steps +0.09 ms at 1k keys, +1.5 at 4k,
	// +5.0 at 16k; a 1024² image 35.6 → 40.3 s): the driver gave it 253
	// registers, so two workgroups fit a multiprocessor, and even at 1k keys,
	// where its grid fits a wave, its chain of phases was no shorter.
	DecodeCoop uint32
	// TopKWG is the workgroup of topk_select, the one-workgroup pass of the
	// GPU's draw that finds the k-th largest visual score (its passes over
	// the scores wait on their loads: 1024 invocations took the draw from
	// 0.265 to 0.224 ms on an H100 before they loaded vec4s).
	TopKWG uint32
	// TouchStride is the bytes between the words Touch reads (a multiple of
	// 4): DefaultTouchStride.
	TouchStride uint32
	// NormWG is the quads of a row one workgroup of a decode step's norm
	// takes (RMSNormQ8, RMSNormParts: 4·NormWG elements), a multiple of 8
	// from 8 to 128 (wg_sum's 64 subgroups of lavapipe's 8); 64 spreads a row
	// of 5120 over 20 workgroups.
	NormWG uint32
	// TouchAt is where a decode step that touches the next layer's pages
	// records the touches: 0 beside the attention, 1 (the default) beside the
	// qkv projection a head a workgroup (QKVHeads), which leaves SMs idle.
	TouchAt uint32
}

// New prepares ops for d.
func New(d *vk.Device) *Ops {
	// Mat-vec tuning: `emu35 bench --tune` measures the alternatives.
	coop := d.Caps.HasCoopMat(16, 16, 16, "f16", "f32") && d.Caps.CoopMatNV && d.Caps.SubgroupSize == 32
	bk := uint32(64)
	if d.Caps.MaxSharedMemory < 46<<10 {
		bk = 32 // the 64-step tiles take 45 KiB of shared memory, the 32-step ones 28
	}
	wg := uint32(256)
	if WideTileFits(d.Caps) {
		wg = 512
	}
	return &Ops{CoopMat: coop, D: d, MatVecShapes: DefaultMatVecFor(d.Caps.Name), CoopBK: bk, CoopWG: wg, CoopWGMinRows: 2048, DecodePrefetch: 8, QKVHeadsWG: 1024, TopKWG: 1024, TouchStride: DefaultTouchStride, TouchAt: 1, NormWG: 64, WG: 128, MaxBinding: d.Caps.MaxStorageBufferRange}
}

// MatVecShape is a mat-vec workgroup: its invocations (a multiple of 32), the
// rows it computes and, for block weights, the consecutive blocks an
// invocation takes a step (1 for float weights).
type MatVecShape struct{ WG, Rows, BPT uint32 }

func (s MatVecShape) String() string { return fmt.Sprintf("%dx%dx%d", s.WG, s.Rows, s.BPT) }

// NumFormats is the number of weight formats (quant.F32 to quant.Q4).
const NumFormats = int(quant.Q4) + 1

// MatVecWidth classes a matrix for its mat-vec's shape: Wide, more than
// NarrowRows rows (qkv, gate/up, the head); of at most NarrowRows rows, which
// the wide shapes would leave short of warps, Narrow with K of at most
// DeepK (the o projection) and Deep with a longer K (down).
type MatVecWidth int

const (
	Wide MatVecWidth = iota
	Narrow
	Deep
	NumWidths

	NarrowRows = 8192
	DeepK      = 8192
)

// widthOf is w's MatVecWidth.
func widthOf(w *Weight) MatVecWidth {
	switch {
	case w.Rows > NarrowRows:
		return Wide
	case w.K > DeepK:
		return Deep
	}
	return Narrow
}

// DefaultMatVec is the mat-vec's shape by format and width, chosen by
// `emu35 bench --tune` and then by whole decode steps (`bench --model
// --vary`) on an H100 (docs/performance.md): q4's narrow and deep matrices
// on 64 invocations (the o and down projections gained 4 %); bf16's on 128
// invocations of 4 rows (bf16 steps 27.76 → 26.76 ms at 4k: down and o had
// run one 32-invocation workgroup per 4 rows, too few warps for K of 8192
// and 25,600). Every other choice measured slower in the steps, including
// the shapes --tune preferred for single products. (Narrow and Deep were
// one class when these were measured.) Once the steps' page touches moved
// beside the qkv projection (fifteenth session) two more gained: bf16's wide
// matrices (gate/up, the head) on 256 invocations of 2 rows, bf16 steps
// 25.00 / 25.98 → 24.62-24.64 / 25.60-25.63 ms at 1k / 4k (128×2 −0.33 ms,
// 64×4 −0.21, 512×2 +4.7); q4's deep one (down) on 128 invocations, q4
// 9.66 / 10.45 → 9.61 / 10.41 (as in the fourteenth, −0.03 / −0.04).
func DefaultMatVec() [NumFormats][NumWidths]MatVecShape {
	var t [NumFormats][NumWidths]MatVecShape
	for f := range t {
		t[f] = AllWidths(MatVecShape{32, 4, 1}) // float weights
		if quant.Format(f).Blocked() {
			t[f] = AllWidths(MatVecShape{32, 2, 1})
		}
	}
	t[quant.Q4][Narrow].WG, t[quant.Q4][Deep].WG = 64, 128
	t[quant.BF16][Narrow], t[quant.BF16][Deep] = MatVecShape{128, 4, 1}, MatVecShape{128, 4, 1}
	t[quant.BF16][Wide] = MatVecShape{256, 2, 1}
	return t
}

// DefaultMatVecFor is the mat-vec shapes for the device named device:
// DefaultMatVec (measured on an H100), with the shapes whole decode steps
// measured better on another card. On an H200 (seventeenth session, `bench
// --model --vary`, two ABBA rounds each; docs/performance.md): bf16's wide
// matrices (gate/up, the head) on 128 invocations of 2 rows, bf16 steps on
// the GPU 19.42–19.47 / 20.15–20.23 → 18.38–18.39 / 19.11–19.12 ms at 1k /
// 4k (the H100's 256×2 +1.06 ms there, 64×4 +0.02 / +0.04, 64×2 +0.11 /
// +0.25; on the H100 128×2 was 0.05 ms slower than 256×2), and q4's deep one
// (down) on 64 invocations, q4 8.11 / 8.80 → 8.07 / 8.75 in two runs (on
// the H100 128 was 0.04 ms faster).
func DefaultMatVecFor(device string) [NumFormats][NumWidths]MatVecShape {
	t := DefaultMatVec()
	if strings.Contains(device, "H200") {
		t[quant.BF16][Wide] = MatVecShape{128, 2, 1}
		t[quant.Q4][Deep].WG = 64
	}
	return t
}

// AllWidths is s for every width.
func AllWidths(s MatVecShape) [NumWidths]MatVecShape {
	var t [NumWidths]MatVecShape
	for i := range t {
		t[i] = s
	}
	return t
}

// matVecShape is the shape of a mat-vec of w.
func (o *Ops) matVecShape(w *Weight) MatVecShape {
	return FitMatVec(o.MatVecShapes[w.Format][widthOf(w)], w.Format, w.K)
}

// FitMatVec is shape s as a mat-vec of format f and rows of k runs it. An
// invocation takes 8 floats of a row a step (float weights take one block of
// 8 a step, whatever BPT says), or BPT blocks: a workgroup wider than a row's
// steps leaves the rest idle, so it halves down to them, to 32 at least
// (small models' long heads: on lavapipe bf16's wide 256 invocations ran
// hundreds of thousands of idle ones a step).
func FitMatVec(s MatVecShape, f quant.Format, k int) MatVecShape {
	per := ceil(k, 8)
	if f.Blocked() {
		per = ceil(k/32, int(max(s.BPT, 1)))
	} else {
		s.BPT = 1
	}
	for s.WG%64 == 0 && int(s.WG/2) >= per {
		s.WG /= 2
	}
	return s
}

// WideTileFits reports whether the device's workgroups hold the tensor-core
// GEMM's 512-invocation tile (CoopWG), whose 256 × 128 outputs take 46 KiB of
// shared memory.
func WideTileFits(c *vk.Caps) bool { return c.MaxSharedMemory >= 47104 && c.MaxInvocations >= 512 }

func (o *Ops) pipe(name string, spec ...uint32) *vk.Pipeline {
	p, err := o.D.Pipeline(shaders.Get(name), spec...)
	if err != nil {
		panic(fmt.Sprintf("ops: pipeline %s: %v", name, err))
	}
	return p
}

func ceil(a, b int) int { return (a + b - 1) / b }

// b2u is a flag for a push constant or a specialization constant.
func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// grid1 spreads n invocations of workgroup size wg over x (and y when needed);
// kernels recompute the flat index as x + y·(groupsX·wg).
func (o *Ops) grid1(n int, wg uint32) [3]uint32 {
	g := ceil(n, int(wg))
	maxX := int(o.D.Caps.MaxWorkGroupCount[0])
	if g <= maxX {
		return [3]uint32{uint32(g), 1, 1}
	}
	return [3]uint32{uint32(maxX), uint32(ceil(g, maxX)), 1}
}

// Weight is a matrix [Rows, K] in device memory: row chunks, each stored as the
// parts of its format in buffers that fit one binding and one allocation.
type Weight struct {
	Format  quant.Format
	Rows, K int
	Chunks  []Chunk
}

// Chunk is rows [Row0, Row0+Rows) of a weight.
type Chunk struct {
	Row0, Rows int
	Parts      []vk.Range
}

// Bytes is the weight's size.
func (w *Weight) Bytes() int64 { return w.Format.Bytes(w.Rows, w.K) }

// chunkRows is how many rows of format f, row length k, fit one binding and one
// allocation: a multiple of 64 (keeping offsets aligned), or all rows.
func (o *Ops) chunkRows(f quant.Format, rows, k int) int {
	lim := o.MaxBinding
	if m := o.D.Caps.MaxMemoryAllocationSize; m > 0 && m < lim {
		lim = m
	}
	n := rows
	for _, b := range f.PartRowBytes(k) {
		if m := int(lim / uint64(b)); m < n {
			n = m / 64 * 64
		}
	}
	if n <= 0 {
		panic(fmt.Sprintf("ops: a row of %d %s values does not fit a binding", k, f))
	}
	return n
}

// NewWeight allocates an uninitialised weight.
func (o *Ops) NewWeight(a *vk.Arena, name string, f quant.Format, rows, k int) (*Weight, error) {
	if err := f.CheckShape(rows, k); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	w := &Weight{Format: f, Rows: rows, K: k}
	per := f.PartRowBytes(k)
	step := o.chunkRows(f, rows, k)
	for r0 := 0; r0 < rows; r0 += step {
		ch := Chunk{Row0: r0, Rows: min(step, rows-r0)}
		for i, b := range per {
			buf, err := a.Alloc(fmt.Sprintf("%s.%d.%d", name, r0, i), uint64(b)*uint64(ch.Rows))
			if err != nil {
				return nil, fmt.Errorf("allocating %s (%s [%d, %d], %.1f MiB): %w", name, f, rows, k, float64(f.Bytes(rows, k))/(1<<20), err)
			}
			ch.Parts = append(ch.Parts, buf.All())
		}
		w.Chunks = append(w.Chunks, ch)
	}
	return w, nil
}

// Upload copies a CPU tensor of the same format and shape into w.
func (o *Ops) Upload(w *Weight, t *quant.Tensor) error {
	if t.Format != w.Format || t.Rows != w.Rows || t.K != w.K {
		return fmt.Errorf("uploading %s [%d, %d] into %s [%d, %d]", t.Format, t.Rows, t.K, w.Format, w.Rows, w.K)
	}
	per := w.Format.PartRowBytes(w.K)
	for _, ch := range w.Chunks {
		for i, p := range ch.Parts {
			if err := o.D.Upload(p, t.Parts[i][ch.Row0*per[i]:(ch.Row0+ch.Rows)*per[i]]); err != nil {
				return err
			}
		}
	}
	return nil
}

// UploadWeight allocates a weight and copies a CPU tensor into it.
func (o *Ops) UploadWeight(a *vk.Arena, name string, t *quant.Tensor) (*Weight, error) {
	w, err := o.NewWeight(a, name, t.Format, t.Rows, t.K)
	if err != nil {
		return nil, err
	}
	if err := o.Upload(w, t); err != nil {
		return nil, fmt.Errorf("uploading %s: %w", name, err)
	}
	return w, nil
}

// Act is an activation matrix [Cols, K] (Stride elements apart) in f32 or f16.
type Act struct {
	R       vk.Range
	F16     bool
	Cols, K int
	Stride  int
	Q       *QAct // the q8_1 form, required by block-format mat-vecs
	RMS     *RMS  // set when Q (or R) is RMSNormQ8's (RMSNormParts'): the RMS still to divide by
}

func (a Act) typ() string {
	if a.F16 {
		return "f16"
	}
	return "f32"
}

// QAct is activations quantized to q8_1 blocks: int8 codes [Cols, K] and
// (d, d·sum) per block [Cols, K/32].
type QAct struct {
	Q, D    vk.Range
	Cols, K int
}

// NewQAct allocates room for cols × k quantized activations.
func NewQAct(a *vk.Arena, name string, cols, k int) (*QAct, error) {
	if k%32 != 0 {
		return nil, fmt.Errorf("%s: q8_1 activations need K %% 32 == 0, got %d", name, k)
	}
	q, err := a.Alloc(name+".q", uint64(cols*k))
	if err != nil {
		return nil, err
	}
	dd, err := a.Alloc(name+".d", uint64(cols*k/32*8))
	if err != nil {
		return nil, err
	}
	return &QAct{Q: q.All(), D: dd.All(), Cols: cols, K: k}, nil
}

// QuantizeAct fills x.Q from x.
func (o *Ops) QuantizeAct(c *vk.Cmd, x Act) {
	q := x.Q
	if q == nil || q.K != x.K || q.Cols < x.Cols || x.K%32 != 0 {
		panic(fmt.Sprintf("ops: QuantizeAct of [%d, %d] into %+v", x.Cols, x.K, q))
	}
	n := x.Cols * x.K / 32 // blocks; 8 invocations each
	c.Dispatch(o.pipe("quantize_q8_1_"+x.typ(), 256), [3]uint32{uint32(ceil(n, 32)), 1, 1},
		struct{ K, Cols, Stride uint32 }{uint32(x.K), uint32(x.Cols), uint32(x.Stride)}, x.R, q.Q, q.D)
}

// MatVec records y[c, n] = Σ_k W[n, k]·x[c, k] for x.Cols ∈ {1..4} columns
// (y is f32 with ystride elements between columns). Block-format weights read
// x.Q, which QuantizeAct or RMSNormQ8 must have filled (and a Barrier
// separated); after RMSNormQ8, x.RMS is its result.
func (o *Ops) MatVec(c *vk.Cmd, w *Weight, x Act, y vk.Range, ystride int) {
	o.matVec(c, w, x, y, ystride, false)
}

// MatVecAdd records y[c, n] += Σ_k W[n, k]·x[c, k] (a residual add): MatVec
// then Add, in one dispatch (float weights with f32 activations).
func (o *Ops) MatVecAdd(c *vk.Cmd, w *Weight, x Act, y vk.Range, ystride int) {
	if x.F16 && !w.Format.Blocked() || x.RMS != nil {
		panic(fmt.Sprintf("ops: MatVecAdd of %s weights and [%d, %d] (f16 %v, after a norm %v): f32 or q8_1 activations, not a norm's", w.Format, x.Cols, x.K, x.F16, x.RMS != nil))
	}
	o.matVec(c, w, x, y, ystride, true)
}

func (o *Ops) matVec(c *vk.Cmd, w *Weight, x Act, y vk.Range, ystride int, add bool) {
	if x.K != w.K || x.Cols < 1 || x.Cols > 4 || ystride < w.Rows {
		panic(fmt.Sprintf("ops: MatVec W[%d, %d] × x[%d, %d] (ystride %d)", w.Rows, w.K, x.Cols, x.K, ystride))
	}
	if r := x.RMS; r != nil && (x.F16 && !w.Format.Blocked() || r.Shares.Size < uint64(4*x.Cols*r.NW)) {
		panic(fmt.Sprintf("ops: MatVec of [%d, %d] (f16 %v) with a norm's %d bytes of shares", x.Cols, x.K, x.F16, r.Shares.Size))
	}
	sh := o.matVecShape(w)
	for _, ch := range w.Chunks {
		r0, n := ch.Row0, ch.Rows
		yr := y.Sub(uint64(4*r0), y.Size-uint64(4*r0))
		bufs := append([]vk.Range{}, ch.Parts...)
		if w.Format.Blocked() {
			if x.Q == nil {
				panic("ops: MatVec with block weights needs quantized activations (Act.Q)")
			}
			bufs = append(bufs, x.Q.Q, x.Q.D, yr)
			name, push, bufs := matVecForm("matvec_"+w.Format.String()+"_q8_1", []uint32{uint32(n), uint32(w.K), uint32(x.K / 32), uint32(ystride)}, bufs, x, add)
			c.Dispatch(o.pipe(name, sh.WG, uint32(x.Cols), sh.Rows, sh.BPT), o.grid1(n, sh.Rows), push, bufs...)
			continue
		}
		bufs = append(bufs, x.R, yr)
		vec := uint32(0)
		if w.K%8 == 0 && x.Stride%8 == 0 {
			vec = 1
		}
		name, push, bufs := matVecForm("matvec_"+w.Format.String()+"_"+x.typ(), []uint32{uint32(n), uint32(w.K), uint32(x.Stride), uint32(ystride), vec}, bufs, x, add)
		c.Dispatch(o.pipe(name, sh.WG, uint32(x.Cols), sh.Rows), o.grid1(n, sh.Rows), push, bufs...)
	}
}

// matVecForm turns a mat-vec variant's name, push constants and buffers into
// its INV_RMS form when x.RMS is set (the shares bound last, their count and eps
// pushed last) and its ADD_Y form with add.
func matVecForm(name string, push []uint32, bufs []vk.Range, x Act, add bool) (string, []uint32, []vk.Range) {
	if r := x.RMS; r != nil {
		name += "_inv"
		push = append(push, uint32(r.NW), math.Float32bits(r.Eps))
		bufs = append(bufs, r.Shares)
	}
	if add {
		name += "_add"
	}
	return name, push, bufs
}

// MatMul records Y[m, n] = Σ_k X[m, k]·W[n, k] for M = x.Cols rows of X (any
// number), y f32 with ystride elements between rows.
func (o *Ops) MatMul(c *vk.Cmd, w *Weight, x Act, y vk.Range, ystride int) {
	if x.K != w.K || ystride < w.Rows || x.RMS != nil {
		panic(fmt.Sprintf("ops: MatMul W[%d, %d] × X[%d, %d]", w.Rows, w.K, x.Cols, x.K))
	}
	for _, ch := range w.Chunks {
		r0, n := ch.Row0, ch.Rows
		bufs := append(append([]vk.Range{}, ch.Parts...), x.R, y.Sub(uint64(4*r0), y.Size-uint64(4*r0)))
		name := "matmul_" + w.Format.String() + "_" + x.typ()
		grid := [3]uint32{uint32(ceil(n, 64)), uint32(ceil(x.Cols, 64)), 1}
		if o.CoopMat {
			vec := uint32(0)
			if w.K%8 == 0 && x.Stride%8 == 0 {
				vec = 1
			}
			wg, bk := o.coopTile(x)
			c.Dispatch(o.pipe(name+"_coopmat", wg, bk), [3]uint32{uint32(ceil(n, 128)), uint32(ceil(x.Cols, int(wg)/2)), 1},
				struct{ M, N, K, XStride, YStride, Vec uint32 }{uint32(x.Cols), uint32(n), uint32(w.K), uint32(x.Stride), uint32(ystride), vec}, bufs...)
			continue
		}
		c.Dispatch(o.pipe(name, 256), grid,
			struct{ M, N, K, XStride, YStride uint32 }{uint32(x.Cols), uint32(n), uint32(w.K), uint32(x.Stride), uint32(ystride)}, bufs...)
	}
}

// coopTile is the tensor-core tile's workgroup size and K step for a product
// of x: a 512-invocation workgroup (256 × 128 outputs) takes steps of 32, as 64
// would not fit 48 KiB. It serves f16 activations (the prefill's), where it was
// measured; f32 ones (the VQ's attention, a prefill's full head) keep 256.
func (o *Ops) coopTile(x Act) (wg, bk uint32) {
	if o.CoopWG == 512 && x.Cols >= o.CoopWGMinRows && x.F16 {
		return 512, 32
	}
	return 256, o.CoopBK
}

// Embed records y[t, :] = W[ids[t], :] for t < T (ids int32 on the device, y f32).
// Ids must be in range (the caller validates them on the host).
func (o *Ops) Embed(c *vk.Cmd, w *Weight, ids vk.Range, T int, y vk.Range) {
	p := o.pipe("embed_"+w.Format.String(), o.WG)
	for _, ch := range w.Chunks {
		r0, n := ch.Row0, ch.Rows
		bufs := append(append([]vk.Range{}, ch.Parts...), ids, y)
		c.Dispatch(p, o.grid1(T*w.K, o.WG), struct{ T, D, V, Row0 uint32 }{uint32(T), uint32(w.K), uint32(n), uint32(r0)}, bufs...)
	}
}

// RMSNorm records y[r, :] = x[r, :]·rsqrt(mean(x[r]²)+eps)·w for rows rows of D.
func (o *Ops) RMSNorm(c *vk.Cmd, x, w, y vk.Range, rows, D int, eps float32) {
	o.rmsNorm(c, "rmsnorm_f32", x, vk.Range{}, w, y, rows, D, eps)
}

// RMSNormF16 is RMSNorm writing y as f16 (a tensor-core GEMM's input).
func (o *Ops) RMSNormF16(c *vk.Cmd, x, w, y vk.Range, rows, D int, eps float32) {
	o.rmsNorm(c, "rmsnorm_f16", x, vk.Range{}, w, y, rows, D, eps)
}

// AddRMSNorm records x += res, then RMSNorm of the sum (the fused form of Add
// then RMSNorm); with f16, y is f16 as RMSNormF16 writes it.
func (o *Ops) AddRMSNorm(c *vk.Cmd, x, res, w, y vk.Range, rows, D int, eps float32, f16 bool) {
	name := "add_rmsnorm_f32"
	if f16 {
		name = "add_rmsnorm_f16"
	}
	o.rmsNorm(c, name, x, res, w, y, rows, D, eps)
}

func (o *Ops) rmsNorm(c *vk.Cmd, name string, x, res, w, y vk.Range, rows, D int, eps float32) {
	wg := o.WG
	if D >= 2048 {
		wg = 512 // long rows: more invocations, fewer dependent loads each
	}
	bufs := []vk.Range{x, w, y}
	if res.B != nil {
		bufs = append(bufs, res)
	}
	c.Dispatch(o.pipe(name, wg), [3]uint32{uint32(rows), 1, 1},
		struct {
			D   uint32
			Eps float32
		}{uint32(D), eps}, bufs...)
}

// NormSharesBytes is the scratch RMSNormQ8 and RMSNormParts need for rows rows
// of D: a partial sum of squares for each of a row's workgroups (of at least
// 8 quads, whatever Ops.NormWG is). Norms of any number of rows up to rows
// share it, as long as D stays the same.
func NormSharesBytes(rows, D int) uint64 { return uint64(4 * rows * ceil(D, 32)) }

// normParts is the workgroups a row of D takes in RMSNormQ8 and RMSNormParts,
// and the invocations of rmsnorm_q8_1's workgroup.
func (o *Ops) normParts(D int) (parts int, wg uint32) {
	if wg = o.NormWG; wg < 8 || wg > 128 || wg%8 != 0 {
		panic(fmt.Sprintf("ops: NormWG %d: want a multiple of 8 from 8 to 128", wg))
	}
	return ceil(D, 4*int(wg)), wg
}

// RMSNormParts records y = x·w for rows rows of D, not yet divided by each
// row's RMS, and the sums of squares that the mat-vec reading y (with Act.RMS
// set to the result) divides by: RMSNorm for decode steps with float weights,
// its row spread over workgroups that wait for none other.
func (o *Ops) RMSNormParts(c *vk.Cmd, x, w, y, shares vk.Range, rows, D int, eps float32) *RMS {
	nw, wg := o.normParts(D)
	if shares.Size < NormSharesBytes(rows, D) {
		panic(fmt.Sprintf("ops: RMSNormParts of [%d, %d] with %d bytes of shares", rows, D, shares.Size))
	}
	c.Dispatch(o.pipe("rmsnorm_parts_f32", 4*wg), [3]uint32{uint32(nw), uint32(rows), 1},
		struct {
			D   uint32
			Eps float32
		}{uint32(D), eps}, x, w, y, shares)
	return &RMS{Shares: shares, NW: nw, Eps: eps}
}

// RMS is what RMSNormQ8 and RMSNormParts leave for the mat-vec that reads
// their output (Act.RMS): each row's partial sums of squares, from which the
// mat-vec divides the row's results by its RMS.
type RMS struct {
	Shares vk.Range // f32 [rows, NW]
	NW     int
	Eps    float32
}

// RMSNormQ8 records q = q8_1(x·w) for rows rows of D, blocks not yet divided by
// the row's RMS, and the sums of squares that the mat-vec reading them (with
// Act.RMS set to the result) divides by: the fused form of RMSNorm then
// QuantizeAct, for decode steps. Norms that may run at the same time, with no
// barrier between, need their own shares (NormSharesBytes).
func (o *Ops) RMSNormQ8(c *vk.Cmd, x, w vk.Range, q *QAct, shares vk.Range, rows, D int, eps float32) *RMS {
	if q.K != D || q.Cols < rows || D%32 != 0 || shares.Size < NormSharesBytes(rows, D) {
		panic(fmt.Sprintf("ops: RMSNormQ8 of [%d, %d] into %d×%d with %d bytes of shares", rows, D, q.Cols, q.K, shares.Size))
	}
	nw, wg := o.normParts(D)
	push := struct {
		D   uint32
		Eps float32
		NW  uint32
	}{uint32(D), eps, uint32(nw)}
	grid := [3]uint32{uint32(nw), uint32(rows), 1}
	c.Dispatch(o.pipe("rmsnorm_q8_1", wg), grid, push, x, w, q.Q, q.D, shares)
	return &RMS{Shares: shares, NW: nw, Eps: eps}
}

// RoPE records the rotate-half rotary embedding in place on x [T, H, D] at
// positions pos (int32 [T]).
func (o *Ops) RoPE(c *vk.Cmd, x, pos vk.Range, T, H, D int, theta float32) {
	c.Dispatch(o.pipe("rope_f32", o.WG), o.grid1(T*H*D/2, o.WG),
		struct {
			T, H, D uint32
			Theta   float32
		}{uint32(T), uint32(H), uint32(D), theta}, x, pos)
}

// Softmax records an in-place softmax of scale·x over each of rows rows of N.
func (o *Ops) Softmax(c *vk.Cmd, x vk.Range, rows, N int, scale float32) {
	c.Dispatch(o.pipe("softmax_f32", o.WG), [3]uint32{uint32(rows), 1, 1},
		struct {
			N     uint32
			Scale float32
		}{uint32(N), scale}, x)
}

// Add records y = a + b over n elements.
func (o *Ops) Add(c *vk.Cmd, a, b, y vk.Range, n int) {
	c.Dispatch(o.pipe("add_f32", o.WG), o.grid1(n, o.WG), struct{ N uint32 }{uint32(n)}, a, b, y)
}

// SiluMul records y = silu(g)·u over n elements (the SwiGLU gate).
func (o *Ops) SiluMul(c *vk.Cmd, g, u, y vk.Range, n int) {
	c.Dispatch(o.pipe("silu_mul_f32", o.WG), o.grid1(n, o.WG), struct{ N uint32 }{uint32(n)}, g, u, y)
}

// QuantizeRows records quantizing src [rows, w.K] (f32, or bf16 if srcBF16)
// into rows [row0, row0+rows) of w (q8_0 or q4); row0 must be a multiple of 64
// (binding offsets stay aligned).
func (o *Ops) QuantizeRows(c *vk.Cmd, src vk.Range, srcBF16 bool, w *Weight, row0, rows int) {
	if !w.Format.Blocked() || row0 < 0 || row0+rows > w.Rows || row0%64 != 0 {
		panic(fmt.Sprintf("ops: QuantizeRows [%d, +%d) into %s [%d, %d]", row0, rows, w.Format, w.Rows, w.K))
	}
	in, esz := "f32", 4
	if srcBF16 {
		in, esz = "bf16", 2
	}
	p := o.pipe("quantize_"+w.Format.String()+"_"+in, 64)
	per := w.Format.PartRowBytes(w.K)
	step := min(o.chunkRows(quant.F32, rows, w.K*esz/4), int(o.D.Caps.MaxWorkGroupCount[0]))
	for _, ch := range w.Chunks {
		lo, hi := max(row0, ch.Row0), min(row0+rows, ch.Row0+ch.Rows)
		for r := lo; r < hi; r += step {
			n := min(step, hi-r)
			bufs := []vk.Range{src.Sub(uint64((r-row0)*esz*w.K), uint64(n*esz*w.K))}
			for i, b := range per {
				bufs = append(bufs, ch.Parts[i].Sub(uint64((r-ch.Row0)*b), uint64(n*b)))
			}
			c.Dispatch(p, [3]uint32{uint32(n), 1, 1}, struct{ K uint32 }{uint32(w.K)}, bufs...)
		}
	}
}

// QuantizeWeight records quantizing all of src [w.Rows, w.K] into w.
func (o *Ops) QuantizeWeight(c *vk.Cmd, src vk.Range, srcBF16 bool, w *Weight) {
	o.QuantizeRows(c, src, srcBF16, w, 0, w.Rows)
}

// UploadRows copies raw rows in w's own format (parts as the format stores them,
// e.g. bf16 values) into rows [row0, row0+rows) of w.
func (o *Ops) UploadRows(w *Weight, row0, rows int, parts [][]byte) error {
	per := w.Format.PartRowBytes(w.K)
	for _, ch := range w.Chunks {
		lo, hi := max(row0, ch.Row0), min(row0+rows, ch.Row0+ch.Rows)
		if lo >= hi {
			continue
		}
		for i, b := range per {
			dst := ch.Parts[i].Sub(uint64((lo-ch.Row0)*b), uint64((hi-lo)*b))
			if err := o.D.Upload(dst, parts[i][(lo-row0)*b:(hi-row0)*b]); err != nil {
				return err
			}
		}
	}
	return nil
}

// View is rows [lo, hi) of w as a weight of its own (no copy); lo must be a
// multiple of 64 so every binding offset stays aligned.
func (w *Weight) View(lo, hi int) *Weight {
	if lo%64 != 0 || lo < 0 || hi > w.Rows || lo >= hi {
		panic(fmt.Sprintf("ops: view [%d, %d) of %d rows", lo, hi, w.Rows))
	}
	v := &Weight{Format: w.Format, Rows: hi - lo, K: w.K}
	per := w.Format.PartRowBytes(w.K)
	for _, ch := range w.Chunks {
		a, b := max(lo, ch.Row0), min(hi, ch.Row0+ch.Rows)
		if a >= b {
			continue
		}
		nc := Chunk{Row0: a - lo, Rows: b - a}
		for i, pb := range per {
			nc.Parts = append(nc.Parts, ch.Parts[i].Sub(uint64((a-ch.Row0)*pb), uint64((b-a)*pb)))
		}
		v.Chunks = append(v.Chunks, nc)
	}
	return v
}
