// Package ops records emu35's kernels: each method checks shapes, picks the
// shader variant and its specialization constants, and records the dispatch(es)
// into a vk.Cmd. Callers place Barriers between dependent ops.
package ops

import (
	"fmt"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/shaders"
	"github.com/emu35/emu35/vk"
)

// Ops binds kernels to one device.
type Ops struct {
	D *vk.Device
	// Tuning, filled from the device by New.
	MatVecWG, MatVecRows   uint32 // float-weight mat-vec
	QMatVecWG, QMatVecRows uint32 // integer-dot mat-vec
	WG                     uint32 // row kernels (norm, softmax)
	// MaxBinding is the largest range bound to one binding: the device's
	// maxStorageBufferRange; tests lower it to exercise row splitting.
	MaxBinding uint64
}

// New prepares ops for d.
func New(d *vk.Device) *Ops {
	o := &Ops{D: d, MatVecWG: 128, MatVecRows: 1, QMatVecWG: 128, QMatVecRows: 4, WG: 128, MaxBinding: d.Caps.MaxStorageBufferRange}
	if d.Caps.SubgroupSize >= 32 {
		// One subgroup per row on NVIDIA: the row's sum is a subgroupAdd.
		o.QMatVecRows = 128 / d.Caps.SubgroupSize
	}
	return o
}

func (o *Ops) pipe(name string, spec ...uint32) *vk.Pipeline {
	p, err := o.D.Pipeline(shaders.Get(name), spec...)
	if err != nil {
		panic(fmt.Sprintf("ops: pipeline %s: %v", name, err))
	}
	return p
}

func ceil(a, b int) int { return (a + b - 1) / b }

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

// Weight is a matrix [Rows, K] in device memory, in the parts of its format.
type Weight struct {
	Format  quant.Format
	Rows, K int
	Parts   []vk.Range
}

// Bytes is the weight's size.
func (w *Weight) Bytes() int64 { return w.Format.Bytes(w.Rows, w.K) }

// rows is the sub-weight of rows [r0, r0+n).
func (w *Weight) rows(r0, n int) []vk.Range {
	per := w.Format.PartRowBytes(w.K)
	out := make([]vk.Range, len(w.Parts))
	for i, p := range w.Parts {
		out[i] = p.Sub(uint64(r0*per[i]), uint64(n*per[i]))
	}
	return out
}

// rowChunk is how many rows fit one binding of every part (a multiple of 64, so
// chunk offsets stay aligned), or all rows.
func (o *Ops) rowChunk(w *Weight) int {
	lim := o.MaxBinding
	n := w.Rows
	for _, b := range w.Format.PartRowBytes(w.K) {
		if m := int(lim / uint64(b)); m < n {
			n = m / 64 * 64
		}
	}
	if n <= 0 {
		panic(fmt.Sprintf("ops: a row of %d %s values does not fit a binding", w.K, w.Format))
	}
	return n
}

// NewWeight allocates an uninitialised weight.
func NewWeight(a *vk.Arena, name string, f quant.Format, rows, k int) (*Weight, error) {
	if err := f.CheckShape(rows, k); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	w := &Weight{Format: f, Rows: rows, K: k}
	for i, b := range f.PartRowBytes(k) {
		buf, err := a.Alloc(fmt.Sprintf("%s.%d", name, i), uint64(b)*uint64(rows))
		if err != nil {
			return nil, err
		}
		w.Parts = append(w.Parts, buf.All())
	}
	return w, nil
}

// UploadWeight copies a CPU tensor to the device.
func UploadWeight(d *vk.Device, a *vk.Arena, name string, t *quant.Tensor) (*Weight, error) {
	w, err := NewWeight(a, name, t.Format, t.Rows, t.K)
	if err != nil {
		return nil, err
	}
	for i, p := range t.Parts {
		if err := d.Upload(w.Parts[i], p); err != nil {
			return nil, fmt.Errorf("uploading %s: %w", name, err)
		}
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
	n := x.Cols * x.K / 32
	c.Dispatch(o.pipe("quantize_q8_1_"+x.typ(), 64), o.grid1(n, 64),
		struct{ K, Cols, Stride uint32 }{uint32(x.K), uint32(x.Cols), uint32(x.Stride)}, x.R, q.Q, q.D)
}

// MatVec records y[c, n] = Σ_k W[n, k]·x[c, k] for x.Cols ∈ {1..4} columns
// (y is f32 with ystride elements between columns). Block-format weights read
// x.Q, which QuantizeAct must have filled (and a Barrier separated).
func (o *Ops) MatVec(c *vk.Cmd, w *Weight, x Act, y vk.Range, ystride int) {
	if x.K != w.K || x.Cols < 1 || x.Cols > 4 || ystride < w.Rows {
		panic(fmt.Sprintf("ops: MatVec W[%d, %d] × x[%d, %d] (ystride %d)", w.Rows, w.K, x.Cols, x.K, ystride))
	}
	chunk := o.rowChunk(w)
	for r0 := 0; r0 < w.Rows; r0 += chunk {
		n := min(chunk, w.Rows-r0)
		yr := y.Sub(uint64(4*r0), y.Size-uint64(4*r0))
		bufs := w.rows(r0, n)
		if w.Format.Blocked() {
			if x.Q == nil {
				panic("ops: MatVec with block weights needs quantized activations (Act.Q)")
			}
			bufs = append(bufs, x.Q.Q, x.Q.D, yr)
			p := o.pipe("matvec_"+w.Format.String()+"_q8_1", o.QMatVecWG, uint32(x.Cols), o.QMatVecRows)
			c.Dispatch(p, [3]uint32{uint32(ceil(n, int(o.QMatVecRows))), 1, 1},
				struct{ N, K, XStride, YStride uint32 }{uint32(n), uint32(w.K), uint32(x.K / 32), uint32(ystride)}, bufs...)
			continue
		}
		bufs = append(bufs, x.R, yr)
		vec := uint32(0)
		if w.K%4 == 0 && x.Stride%4 == 0 {
			vec = 1
		}
		p := o.pipe("matvec_"+w.Format.String()+"_"+x.typ(), o.MatVecWG, uint32(x.Cols), o.MatVecRows)
		c.Dispatch(p, [3]uint32{uint32(ceil(n, int(o.MatVecRows))), 1, 1},
			struct{ N, K, XStride, YStride, Vec uint32 }{uint32(n), uint32(w.K), uint32(x.Stride), uint32(ystride), vec}, bufs...)
	}
}

// MatMul records Y[m, n] = Σ_k X[m, k]·W[n, k] for M = x.Cols rows of X (any
// number), y f32 with ystride elements between rows.
func (o *Ops) MatMul(c *vk.Cmd, w *Weight, x Act, y vk.Range, ystride int) {
	if x.K != w.K || ystride < w.Rows {
		panic(fmt.Sprintf("ops: MatMul W[%d, %d] × X[%d, %d]", w.Rows, w.K, x.Cols, x.K))
	}
	chunk := o.rowChunk(w)
	for r0 := 0; r0 < w.Rows; r0 += chunk {
		n := min(chunk, w.Rows-r0)
		bufs := append(w.rows(r0, n), x.R, y.Sub(uint64(4*r0), y.Size-uint64(4*r0)))
		p := o.pipe("matmul_"+w.Format.String()+"_"+x.typ(), 256)
		c.Dispatch(p, [3]uint32{uint32(ceil(n, 64)), uint32(ceil(x.Cols, 64)), 1},
			struct{ M, N, K, XStride, YStride uint32 }{uint32(x.Cols), uint32(n), uint32(w.K), uint32(x.Stride), uint32(ystride)}, bufs...)
	}
}

// Embed records y[t, :] = W[ids[t], :] for t < T (ids int32 on the device, y f32).
// Ids must be in range (the caller validates them on the host).
func (o *Ops) Embed(c *vk.Cmd, w *Weight, ids vk.Range, T int, y vk.Range) {
	chunk := o.rowChunk(w)
	p := o.pipe("embed_"+w.Format.String(), o.WG)
	for r0 := 0; r0 < w.Rows; r0 += chunk {
		n := min(chunk, w.Rows-r0)
		bufs := append(w.rows(r0, n), ids, y)
		c.Dispatch(p, o.grid1(T*w.K, o.WG), struct{ T, D, V, Row0 uint32 }{uint32(T), uint32(w.K), uint32(n), uint32(r0)}, bufs...)
	}
}

// RMSNorm records y[r, :] = x[r, :]·rsqrt(mean(x[r]²)+eps)·w for rows rows of D.
func (o *Ops) RMSNorm(c *vk.Cmd, x, w, y vk.Range, rows, D int, eps float32) {
	c.Dispatch(o.pipe("rmsnorm_f32", o.WG), [3]uint32{uint32(rows), 1, 1},
		struct {
			D   uint32
			Eps float32
		}{uint32(D), eps}, x, w, y)
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

// QuantizeWeight records quantizing src [w.Rows, w.K] (f32, or bf16 if srcBF16)
// into w (q8_0 or q4).
func (o *Ops) QuantizeWeight(c *vk.Cmd, src vk.Range, srcBF16 bool, w *Weight) {
	if !w.Format.Blocked() {
		panic("ops: QuantizeWeight into " + w.Format.String())
	}
	in := "f32"
	if srcBF16 {
		in = "bf16"
	}
	p := o.pipe("quantize_"+w.Format.String()+"_"+in, 64)
	esz := 4
	if srcBF16 {
		esz = 2
	}
	chunk := o.rowChunk(w)
	if m := int(o.MaxBinding / uint64(esz*w.K)); m < chunk {
		chunk = m / 64 * 64
	}
	chunk = min(chunk, int(o.D.Caps.MaxWorkGroupCount[0]))
	for r0 := 0; r0 < w.Rows; r0 += chunk {
		n := min(chunk, w.Rows-r0)
		bufs := append([]vk.Range{src.Sub(uint64(r0*esz*w.K), uint64(n*esz*w.K))}, w.rows(r0, n)...)
		c.Dispatch(p, [3]uint32{uint32(n), 1, 1}, struct{ K uint32 }{uint32(w.K)}, bufs...)
	}
}
