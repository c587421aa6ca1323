package ops

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/vktest"
)

type env struct {
	t *testing.T
	d *vk.Device
	o *Ops
	a *vk.Arena
	c *vk.Cmd
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := vktest.Device(t)
	e := &env{t: t, d: d, o: New(d), a: d.NewArena(vk.DeviceMem)}
	var err error
	if e.c, err = d.NewCmd(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.c.Release(); e.a.Free() })
	return e
}

func (e *env) f32(name string, x []float32) vk.Range {
	b, err := Upload(e.d, e.a, name, F32Bytes(x))
	if err != nil {
		e.t.Fatal(err)
	}
	return b.All()
}

func (e *env) act(name string, x []float32, cols, k int, f16 bool) Act {
	var b *vk.Buffer
	var err error
	if f16 {
		b, err = Upload(e.d, e.a, name, F16Bytes(x))
	} else {
		b, err = Upload(e.d, e.a, name, F32Bytes(x))
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return Act{R: b.All(), F16: f16, Cols: cols, K: k, Stride: k}
}

func (e *env) out(name string, n int) vk.Range {
	b, err := e.a.Alloc(name, uint64(4*n))
	if err != nil {
		e.t.Fatal(err)
	}
	return b.All()
}

func (e *env) run() {
	if err := e.c.Submit(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) get(r vk.Range, n int) []float32 {
	x, err := DownloadF32(e.d, r, n)
	if err != nil {
		e.t.Fatal(err)
	}
	return x
}

// getF16 reads n f16 values from r.
func (e *env) getF16(r vk.Range, n int) []float32 {
	b := make([]byte, 2*n)
	if err := e.d.Download(r, b); err != nil {
		e.t.Fatal(err)
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = quant.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return x
}

func randn(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * scale
	}
	return x
}

// check fails the test when NMSE(got, want) > tol, listing the worst elements.
func check(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	e := cpu.NMSE(got, want)
	if !(e <= tol) || len(got) != len(want) {
		idx := make([]int, len(got))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool {
			return math.Abs(float64(got[idx[a]]-want[idx[a]])) > math.Abs(float64(got[idx[b]]-want[idx[b]]))
		})
		s := ""
		for _, i := range idx[:min(5, len(idx))] {
			s += fmt.Sprintf("\n  [%d] got %g want %g", i, got[i], want[i])
		}
		t.Errorf("%s: NMSE %.3g > %.3g; worst:%s", what, e, tol, s)
	}
}

func TestMatVecFloat(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(1))
	for _, f := range []quant.Format{quant.F32, quant.F16, quant.BF16} {
		// (280001 rows take more workgroups than lavapipe's 65,535 along x.)
		for _, sh := range [][2]int{{37, 77}, {33, 256}, {130, 1000}, {280001, 16}} {
			for _, cols := range []int{1, 2, 3} {
				for _, f16 := range []bool{false, true} {
					N, K := sh[0], sh[1]
					if N > 1<<16 && (cols == 1 || f16) {
						continue // (the large shape once or twice a format)
					}
					wt, _ := quant.Quantize(f, N, K, randn(r, N*K, 0.05))
					w, err := e.o.UploadWeight(e.a, "w", wt)
					if err != nil {
						t.Fatal(err)
					}
					x := randn(r, cols*K, 1)
					xa := e.act("x", x, cols, K, f16)
					y := e.out("y", cols*N)
					sh := MatVecShape{WG: uint32(32 << (K % 3)), Rows: uint32(1 + N%3), BPT: 1}
					e.o.MatVecShapes[f] = AllWidths(sh)
					e.o.MatVec(e.c, w, xa, y, N)
					e.run()
					xr := x
					if f16 {
						xr = make([]float32, len(x))
						for i, v := range x {
							xr[i] = quant.RoundF16(v)
						}
					}
					name := fmt.Sprintf("matvec %s %dx%d cols %d f16act %v", f, N, K, cols, f16)
					got := e.get(y, cols*N)
					check(t, name, got, cpu.MatMul(wt.Dequantize(), N, K, xr, cols), 1e-10)
					if !f16 && N < 1<<16 { // MatVecAdd: the same sums, added to what y holds
						y0 := randn(r, cols*N, 1)
						ya := e.f32("ya", y0)
						e.o.MatVecAdd(e.c, w, xa, ya, N)
						e.run()
						check(t, name+" added", e.get(ya, cols*N), cpu.Add(y0, got), 0)
					}
				}
			}
		}
	}
}

func (e *env) checkQ8_1(q *QAct, x []float32, cols, k int) []float32 {
	xq, err := e.o.downloadQ8_1(q, x, cols, k)
	if err != nil {
		e.t.Fatal(err)
	}
	return xq
}

// Block-format mat-vecs are checked twice: exactly (against the CPU with the
// GPU's q8_1 activation codes) and end to end (against float activations).
func TestMatVecQuant(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(2))
	for _, f := range []quant.Format{quant.Q8_0, quant.Q4} {
		for _, sh := range [][2]int{{37, 96}, {65, 704}, {5, 32}, {140001, 32}} { // (the last: over 65,535 workgroups)
			for _, cols := range []int{1, 2, 4} {
				for _, f16 := range []bool{false, true} {
					N, K := sh[0], sh[1]
					if N > 1<<16 && (cols == 1 || f16) {
						continue // (the large shape once or twice a format)
					}
					wt, _ := quant.Quantize(f, N, K, randn(r, N*K, 0.05))
					w, err := e.o.UploadWeight(e.a, "w", wt)
					if err != nil {
						t.Fatal(err)
					}
					x := randn(r, cols*K, 1)
					if f16 {
						for i, v := range x {
							x[i] = quant.RoundF16(v)
						}
					}
					xa := e.act("x", x, cols, K, f16)
					q, err := NewQAct(e.a, "xq", cols, K)
					if err != nil {
						t.Fatal(err)
					}
					xa.Q = q
					y := e.out("y", cols*N)
					// Alternate the kernel's shapes: rows per workgroup and blocks per step.
					for i := range e.o.MatVecShapes[f] {
						e.o.MatVecShapes[f][i].Rows, e.o.MatVecShapes[f][i].BPT = uint32(1+N%4), uint32(1+cols%2)
					}
					e.o.QuantizeAct(e.c, xa)
					e.c.Barrier()
					e.o.MatVec(e.c, w, xa, y, N)
					e.run()
					got := e.get(y, cols*N)
					xq := e.checkQ8_1(xa.Q, x, cols, K)
					name := fmt.Sprintf("matvec %s %dx%d cols %d f16act %v", f, N, K, cols, f16)
					check(t, name+" (same activation codes)", got, cpu.MatMul(wt.Dequantize(), N, K, xq, cols), 1e-9)
					check(t, name+" (float activations)", got, cpu.MatMul(wt.Dequantize(), N, K, x, cols), 5e-4)
					if N < 1<<16 { // MatVecAdd: the same sums, added to what y holds
						y0 := randn(r, cols*N, 1)
						ya := e.f32("ya", y0)
						e.o.MatVecAdd(e.c, w, xa, ya, N)
						e.run()
						check(t, name+" added", e.get(ya, cols*N), cpu.Add(y0, got), 0)
					}
				}
			}
		}
	}
}

func TestMatMul(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(3))
	wgs := []uint32{256}
	if e.o.CoopMat {
		wgs = []uint32{256, 512} // the tensor-core tile of 128 or 256 rows
	}
	e.o.CoopWGMinRows = 0 // the larger tile for these few rows too
	for _, f := range []quant.Format{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4} {
		for si, sh := range [][3]int{{5, 37, 96}, {67, 70, 160}, {130, 129, 64}, {40, 140, 32}, {300, 20, 96}} {
			for fi, f16 := range []bool{false, true} {
				M, N, K := sh[0], sh[1], sh[2]
				if !f.Blocked() && sh[0] == 5 {
					K = 77 // odd K for float weights
				}
				wt, _ := quant.Quantize(f, N, K, randn(r, N*K, 0.05))
				w, err := e.o.UploadWeight(e.a, "w", wt)
				if err != nil {
					t.Fatal(err)
				}
				x := randn(r, M*K, 1)
				if f16 {
					for i, v := range x {
						x[i] = quant.RoundF16(v)
					}
				}
				xr, wr := x, wt.Dequantize()
				tl := 1e-10
				if e.o.CoopMat {
					xr, wr = RoundF16All(xr), RoundF16All(wr)
					// The GPU dequantizes with FMA before rounding to f16, so a weight
					// may land on the other side of an f16 rounding boundary.
					tl = 1e-6
				}
				want := cpu.MatMul(wr, N, K, xr, M)
				for _, wg := range wgs {
					y := e.out("y", M*N)
					// Tensor cores: both K steps on several shapes, the 64 step on half-filled steps too.
					e.o.CoopBK, e.o.CoopWG = []uint32{32, 64}[(si+fi)%2], wg
					xa := e.act("x", x, M, K, f16)
					e.o.MatMul(e.c, w, xa, y, N)
					e.run()
					tw, tk := e.o.coopTile(xa)
					check(t, fmt.Sprintf("matmul %s M%d N%d K%d f16act %v coopmat %v (workgroup %d, K step %d)", f, M, N, K, f16, e.o.CoopMat, tw, tk),
						e.get(y, M*N), want, tl)
				}
			}
		}
	}
}

// Row splitting (weights larger than one binding) gives the same results.
func TestSplitRows(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(4))
	N, K := 300, 128
	for _, f := range []quant.Format{quant.F16, quant.Q4} {
		wt, _ := quant.Quantize(f, N, K, randn(r, N*K, 0.05))
		e.o.MaxBinding = uint64(64 * f.PartRowBytes(K)[0]) // 64 rows per chunk
		w, _ := e.o.UploadWeight(e.a, "w", wt)
		if len(w.Chunks) != 5 {
			t.Fatalf("%d chunks, want 5", len(w.Chunks))
		}
		x := randn(r, 2*K, 1)
		xa := e.act("x", x, 2, K, false)
		xa.Q, _ = NewQAct(e.a, "xq", 2, K)
		y1, y2, y3 := e.out("y1", 2*N), e.out("y2", 2*N), e.out("y3", 2*3*K)
		e.o.QuantizeAct(e.c, xa)
		e.c.Barrier()
		e.o.MatVec(e.c, w, xa, y1, N)
		e.o.MatMul(e.c, w, xa, y2, N)
		ids := []int32{299, 0, 170}
		ib, _ := Upload(e.d, e.a, "ids", I32Bytes(ids))
		e.o.Embed(e.c, w, ib.All(), 3, y3)
		e.run()
		e.o.MaxBinding = e.d.Caps.MaxStorageBufferRange
		want := cpu.MatMul(wt.Dequantize(), N, K, x, 2)
		tl := 1e-10
		if f.Blocked() {
			tl = 1e-4
		}
		check(t, "split matvec "+f.String(), e.get(y1, 2*N), want, tl)
		tm := 1e-10
		if e.o.CoopMat {
			tm = 1e-5
		}
		check(t, "split matmul "+f.String(), e.get(y2, 2*N), want, tm)
		check(t, "split embed "+f.String(), e.get(y3, 3*K), cpu.Embed(wt.Dequantize(), K, ids), 1e-12) // FMA contraction may differ
	}
}

func TestEmbed(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(5))
	V, D := 41, 96
	ids := []int32{40, 0, 7, 7, 39}
	for _, f := range []quant.Format{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4} {
		wt, _ := quant.Quantize(f, V, D, randn(r, V*D, 1))
		w, _ := e.o.UploadWeight(e.a, "w", wt)
		ib, _ := Upload(e.d, e.a, "ids", I32Bytes(ids))
		y := e.out("y", len(ids)*D)
		e.o.Embed(e.c, w, ib.All(), len(ids), y)
		e.run()
		check(t, "embed "+f.String(), e.get(y, len(ids)*D), cpu.Embed(wt.Dequantize(), D, ids), 1e-12) // FMA contraction may differ
	}
}

func TestRowKernels(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(6))
	rows, D := 7, 333
	x := randn(r, rows*D, 2)
	w := randn(r, D, 1)
	y := e.out("y", rows*D)
	e.o.RMSNorm(e.c, e.f32("x", x), e.f32("w", w), y, rows, D, 1e-5)
	e.run()
	check(t, "rmsnorm", e.get(y, rows*D), cpu.RMSNorm(x, w, rows, D, 1e-5), 1e-11)
	y16 := e.out("y16", rows*D/2+1)
	e.o.RMSNormF16(e.c, e.f32("x", x), e.f32("w", w), y16, rows, D, 1e-5)
	e.run()
	check(t, "rmsnorm to f16", e.getF16(y16, rows*D), RoundF16All(cpu.RMSNorm(x, w, rows, D, 1e-5)), 1e-8)
	// The residual forms: x += res is written back and the norm is of the sum.
	res := randn(r, rows*D, 1)
	sum := cpu.Add(x, res)
	for _, f16 := range []bool{false, true} {
		xr := e.f32("xr", x)
		e.o.AddRMSNorm(e.c, xr, e.f32("res", res), e.f32("w", w), y, rows, D, 1e-5, f16)
		e.run()
		check(t, fmt.Sprintf("add_rmsnorm (f16 %v) sum", f16), e.get(xr, rows*D), sum, 0)
		if f16 {
			check(t, "add_rmsnorm to f16", e.getF16(y, rows*D), RoundF16All(cpu.RMSNorm(sum, w, rows, D, 1e-5)), 1e-8)
		} else {
			check(t, "add_rmsnorm", e.get(y, rows*D), cpu.RMSNorm(sum, w, rows, D, 1e-5), 1e-11)
		}
	}

	sm := e.f32("s", x)
	e.o.Softmax(e.c, sm, rows, D, 0.7)
	e.run()
	check(t, "softmax", e.get(sm, rows*D), cpu.Softmax(x, rows, D, 0.7), 1e-11)

	T, H, hd := 5, 3, 128
	q := randn(r, T*H*hd, 1)
	pos := []int32{0, 1, 17, 4000, 32767}
	qb := e.f32("q", q)
	pb, _ := Upload(e.d, e.a, "pos", I32Bytes(pos))
	e.o.RoPE(e.c, qb, pb.All(), T, H, hd, 1e6)
	e.run()
	check(t, "rope", e.get(qb, T*H*hd), cpu.RoPE(q, pos, T, H, hd, 1e6), 1e-7)

	n := 1001
	a, b := randn(r, n, 3), randn(r, n, 1)
	ya, ys := e.out("ya", n), e.out("ys", n)
	ab, bb := e.f32("a", a), e.f32("b", b)
	e.o.Add(e.c, ab, bb, ya, n)
	e.o.SiluMul(e.c, ab, bb, ys, n)
	e.run()
	check(t, "add", e.get(ya, n), cpu.Add(a, b), 0)
	check(t, "silu_mul", e.get(ys, n), cpu.SiluMul(a, b), 1e-12)
}

// GPU quantizers produce the CPU quantizers' bytes; the q4 fit compares float
// sums, so a few blocks may pick another candidate of equal error (FMA
// contraction differs), which is tolerated as long as the error is the same.
func TestQuantizeWeightGPU(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(7))
	N, K := 67, 320
	x := randn(r, N*K, 0.03)
	for _, f := range []quant.Format{quant.Q8_0, quant.Q4} {
		for _, bf := range []bool{false, true} {
			src := F32Bytes(x)
			xin := x
			if bf {
				bt, _ := quant.Quantize(quant.BF16, N, K, x)
				src = bt.Parts[0]
				xin = bt.Dequantize()
			}
			sb, _ := Upload(e.d, e.a, "src", src)
			w, err := e.o.NewWeight(e.a, "w", f, N, K)
			if err != nil {
				t.Fatal(err)
			}
			e.o.QuantizeWeight(e.c, sb.All(), bf, w)
			e.run()
			want, _ := quant.Quantize(f, N, K, xin)
			got := &quant.Tensor{Format: f, Rows: N, K: K}
			same, total := 0, 0
			for i, p := range w.Chunks[0].Parts {
				b := make([]byte, len(want.Parts[i]))
				if err := e.d.Download(p, b); err != nil {
					t.Fatal(err)
				}
				got.Parts = append(got.Parts, b)
				for j := range b {
					total++
					if b[j] == want.Parts[i][j] {
						same++
					}
				}
			}
			eg, ew := cpu.NMSE(got.Dequantize(), xin), cpu.NMSE(want.Dequantize(), xin)
			t.Logf("%s from bf16=%v: %.4f%% bytes equal, NMSE gpu %.4g cpu %.4g", f, bf, 100*float64(same)/float64(total), eg, ew)
			if float64(same) < 0.97*float64(total) || eg > ew*1.01 {
				t.Errorf("%s: GPU quantizer differs from the CPU one", f)
			}
		}
	}
}

func TestDispatchChecks(t *testing.T) {
	e := newEnv(t)
	defer func() {
		if recover() == nil {
			t.Fatal("a dispatch with the wrong number of buffers did not panic")
		}
	}()
	y := e.out("y", 4)
	e.c.Dispatch(e.o.pipe("add_f32", 64), [3]uint32{1, 1, 1}, struct{ N uint32 }{4}, y, y)
}

// Check (used by emu35 bench before timing) accepts every variant and its
// error is tiny.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	for _, f := range []quant.Format{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4} {
		for _, mm := range []bool{false, true} {
			nm, err := e.o.Check(f, true, 33, 96, 2, mm, 1)
			if err != nil || nm > 1e-9 {
				t.Errorf("%s matmul=%v: NMSE %g, %v", f, mm, nm, err)
			}
		}
	}
}

// A view of rows [64, 150) gives those rows of the product; UploadRows and
// QuantizeRows fill row ranges across chunk boundaries.
func TestViewAndRowRanges(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(11))
	N, K := 200, 64
	x := randn(r, K, 1)
	wv := randn(r, N*K, 0.1)
	e.o.MaxBinding = uint64(64 * 4 * K) // 64 f32 rows per chunk
	defer func() { e.o.MaxBinding = e.d.Caps.MaxStorageBufferRange }()
	bt, _ := quant.Quantize(quant.BF16, N, K, wv)
	wb, _ := e.o.NewWeight(e.a, "wb", quant.BF16, N, K)
	for _, rr := range [][2]int{{0, 50}, {50, 100}, {150, 50}} { // straddles chunks
		if err := e.o.UploadRows(wb, rr[0], rr[1], [][]byte{bt.Parts[0][rr[0]*2*K : (rr[0]+rr[1])*2*K]}); err != nil {
			t.Fatal(err)
		}
	}
	wq, _ := e.o.NewWeight(e.a, "wq", quant.Q8_0, N, K)
	src, _ := Upload(e.d, e.a, "src", bt.Parts[0])
	e.o.QuantizeRows(e.c, src.Slice(0, uint64(128*2*K)), true, wq, 0, 128)
	e.o.QuantizeRows(e.c, src.Slice(uint64(128*2*K), uint64(72*2*K)), true, wq, 128, 72)
	e.c.Barrier()
	y1, y2 := e.out("y1", N), e.out("y2", N)
	xa := e.act("x", x, 1, K, false)
	xa.Q, _ = NewQAct(e.a, "xq", 1, K)
	e.o.QuantizeAct(e.c, xa)
	e.c.Barrier()
	e.o.MatVec(e.c, wb.View(64, 150), xa, y1.Sub(64*4, uint64((N-64)*4)), N)
	e.o.MatVec(e.c, wq, xa, y2, N)
	e.run()
	want := cpu.MatMul(bt.Dequantize(), N, K, x, 1)
	check(t, "view", e.get(y1, N)[64:150], want[64:150], 1e-10)
	qt, _ := quant.Quantize(quant.Q8_0, N, K, bt.Dequantize())
	check(t, "quantized row ranges", e.get(y2, N), cpu.MatMul(qt.Dequantize(), N, K, x, 1), 1e-4)
}

// The decode steps' norms leave x·w and the rows' sums of squares: RMSNormQ8
// as q8_1 blocks, RMSNormParts as floats. A mat-vec reading them with Act.RMS
// equals the mat-vec of RMSNorm(x)·w.
func TestRMSNormShares(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(12))
	for i, f := range []quant.Format{quant.Q8_0, quant.Q4, quant.F16, quant.BF16} {
		for _, D := range []int{96, 5120} {
			e.o.NormWG = []uint32{8, 64, 128, 24}[i] // a row in 1 to 160 parts
			name := fmt.Sprintf("%s D=%d, %d quads a workgroup", f, D, e.o.NormWG)
			rows, N := 3, 37
			x, w := randn(r, rows*D, 2), randn(r, D, 1)
			wt, _ := quant.Quantize(f, N, D, randn(r, N*D, 0.05))
			W, err := e.o.UploadWeight(e.a, "w", wt)
			if err != nil {
				t.Fatal(err)
			}
			q, _ := NewQAct(e.a, "q", rows, D)
			h := e.out("h", rows*D)
			shares := e.out("shares", int(NormSharesBytes(rows, D)/4))
			norm := func(x vk.Range, n int) *RMS {
				if f.Blocked() {
					return e.o.RMSNormQ8(e.c, x, e.f32("nw", w), q, shares, n, D, 1e-6)
				}
				return e.o.RMSNormParts(e.c, x, e.f32("nw", w), h, shares, n, D, 1e-6)
			}
			// Two norms in one submission on one scratch: of one row (of other
			// values), then of all rows.
			norm(e.f32("x1", randn(r, D, 3)), 1)
			e.c.Barrier()
			rms := norm(e.f32("x", x), rows)
			e.c.Barrier()
			y := e.out("y", rows*N)
			e.o.MatVec(e.c, W, Act{R: h, Cols: rows, K: D, Stride: D, Q: q, RMS: rms}, y, N)
			e.run()
			xw := make([]float32, rows*D)
			for i := range xw {
				xw[i] = x[i] * w[i%D]
			}
			if f.Blocked() {
				xw = e.checkQ8_1(q, xw, rows, D)
			} else {
				check(t, name+": x·w", e.get(h, rows*D), xw, 0)
			}
			// Exactly: the GPU's x·w over each row's RMS from its shares.
			sh := e.get(shares, rows*rms.NW)
			for i := 0; i < rows; i++ {
				var ss float32
				for _, v := range sh[i*rms.NW : (i+1)*rms.NW] {
					ss += v
				}
				var want float64
				for _, v := range x[i*D : (i+1)*D] {
					want += float64(v) * float64(v)
				}
				if math.Abs(float64(ss)-want) > 1e-5*want {
					t.Fatalf("%s: row %d's shares sum to %g, want %g", name, i, ss, want)
				}
				inv := float32(1 / math.Sqrt(float64(ss/float32(D)+1e-6)))
				for j := range xw[i*D : (i+1)*D] {
					xw[i*D+j] *= inv
				}
			}
			got := e.get(y, rows*N)
			check(t, name+": mat-vec (same x·w)", got, cpu.MatMul(wt.Dequantize(), N, D, xw, rows), 1e-9)
			check(t, name+": mat-vec", got, cpu.MatMul(wt.Dequantize(), N, D, cpu.RMSNorm(x, w, rows, D, 1e-6), rows), 5e-4)
		}
	}
}

// Touch reads its ranges (any number, any size: eight a dispatch) and writes
// nothing, neither the ranges nor its scratch.
func TestTouch(t *testing.T) {
	e := newEnv(t)
	sizes := []int{4, 1 << 20, 3<<20 + 4, 16, 5 << 20, 64, 4096, 1<<21 + 8, 12, 8 << 20}
	var rs []vk.Range
	for i, n := range sizes {
		r := e.out(fmt.Sprint("r", i), n/4)
		e.o.Fill(e.c, r, uint32(i), 0xFFFFFFFF, 0)
		rs = append(rs, r)
	}
	out := e.out("touch", 8)
	e.o.Fill(e.c, out, 0, 0, 0x9E3779B9) // the word its never-taken store compares with
	e.run()
	before := make([][]float32, len(rs))
	for i, r := range rs {
		before[i] = e.get(r, sizes[i]/4)
	}
	n0 := e.c.Dispatches
	e.o.Touch(e.c, out, rs)
	if d := e.c.Dispatches - n0; d != 2 {
		t.Errorf("%d ranges took %d dispatches, want 2", len(rs), d)
	}
	e.run()
	for i, w := range e.get(out, 8) {
		if math.Float32bits(w) != 0x9E3779B9 {
			t.Fatalf("touch wrote its scratch word %d: %#x", i, math.Float32bits(w))
		}
	}
	for i, r := range rs {
		for j, v := range e.get(r, sizes[i]/4) {
			if math.Float32bits(v) != math.Float32bits(before[i][j]) {
				t.Fatalf("touch changed word %d of range %d", j, i)
			}
		}
	}
}

// A device opened for pipeline statistics reports some for every pipeline a
// product used, and a device that cannot says so when opened, naming the
// extension it lacks.
func TestPipelineStats(t *testing.T) {
	probe := vktest.Device(t)
	can := probe.Caps.PipelineStats
	d, err := vk.Open(vk.Options{Device: probe.Index, PipelineCache: "-", PipelineStats: true})
	if !can {
		if err == nil || !strings.Contains(err.Error(), "VK_KHR_pipeline_executable_properties") {
			t.Fatalf("device without pipeline statistics opened for them: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := New(d).Check(quant.Q4, true, 33, 96, 2, false, 1); err != nil {
		t.Fatal(err)
	}
	ps := d.Pipelines()
	if len(ps) == 0 {
		t.Fatal("no pipelines listed after a product")
	}
	for _, p := range ps {
		st, err := d.PipelineStats(p)
		if err != nil || len(st) == 0 {
			t.Errorf("%s %v: %d statistics, %v", p.Name, p.Spec, len(st), err)
		}
	}
	if _, err := probe.PipelineStats(ps[0]); err == nil {
		t.Error("a device opened without statistics reported some")
	}
}

// The tensor-core GEMM takes the 512-invocation tile (and its K step of 32) for
// products of many rows of f16 activations only, and never when the knob asks
// for 256.
func TestCoopTile(t *testing.T) {
	o := &Ops{CoopWG: 512, CoopWGMinRows: 2048, CoopBK: 64}
	for _, c := range []struct {
		wg           uint32
		rows         int
		f16          bool
		wantWG, want uint32
	}{{512, 132, true, 256, 64}, {512, 2047, true, 256, 64}, {512, 2048, true, 512, 32}, {512, 8192, true, 512, 32}, {512, 8192, false, 256, 64}, {256, 8192, true, 256, 64}} {
		o.CoopWG = c.wg
		if wg, bk := o.coopTile(Act{Cols: c.rows, F16: c.f16}); wg != c.wantWG || bk != c.want {
			t.Errorf("CoopWG %d, %d rows (f16 %v): workgroup %d, K step %d; want %d, %d", c.wg, c.rows, c.f16, wg, bk, c.wantWG, c.want)
		}
	}
}

// A matrix of at most NarrowRows rows takes its format's narrow shape, or its
// deep one when K exceeds DeepK; float weights take one row of blocks a step
// whatever the table says.
func TestMatVecShapeWidth(t *testing.T) {
	type shapeCase struct {
		f       quant.Format
		rows, k int
		want    MatVecShape
	}
	o := &Ops{}
	check := func(cases []shapeCase) {
		for _, c := range cases {
			if got := o.matVecShape(&Weight{Format: c.f, Rows: c.rows, K: c.k}); got != c.want {
				t.Errorf("%s [%d, %d]: %v, want %v", c.f, c.rows, c.k, got, c.want)
			}
		}
	}
	o.MatVecShapes = DefaultMatVec()
	o.MatVecShapes[quant.BF16] = [NumWidths]MatVecShape{{WG: 32, Rows: 4, BPT: 3}, {WG: 64, Rows: 2, BPT: 3}, {WG: 256, Rows: 1, BPT: 3}}
	check([]shapeCase{
		{quant.BF16, NarrowRows, DeepK, MatVecShape{WG: 64, Rows: 2, BPT: 1}},
		{quant.BF16, NarrowRows, DeepK + 32, MatVecShape{WG: 256, Rows: 1, BPT: 1}},
		{quant.BF16, NarrowRows + 1, DeepK + 32, MatVecShape{WG: 32, Rows: 4, BPT: 1}},
		{quant.Q4, 5120, 25600, MatVecShape{WG: 128, Rows: 2, BPT: 1}},
		{quant.Q4, 5120, 8192, MatVecShape{WG: 64, Rows: 2, BPT: 1}},
		{quant.Q4, 10240, 5120, MatVecShape{WG: 32, Rows: 2, BPT: 1}},
	})
	// A short row narrows the workgroup to its steps (8 floats or BPT blocks
	// an invocation), down to 32 invocations.
	o.MatVecShapes = DefaultMatVec()
	o.MatVecShapes[quant.Q8_0][Wide] = MatVecShape{WG: 256, Rows: 2, BPT: 2}
	check([]shapeCase{
		{quant.BF16, 282926, 64, MatVecShape{WG: 32, Rows: 2, BPT: 1}},
		{quant.BF16, 282926, 1024, MatVecShape{WG: 128, Rows: 2, BPT: 1}},
		{quant.BF16, 282926, 5120, MatVecShape{WG: 256, Rows: 2, BPT: 1}},
		{quant.Q4, 5120, 25600, MatVecShape{WG: 128, Rows: 2, BPT: 1}},
		{quant.Q4, 5120, 1024, MatVecShape{WG: 32, Rows: 2, BPT: 1}},
		{quant.Q8_0, 10240, 4096, MatVecShape{WG: 64, Rows: 2, BPT: 2}},
	})
	// Devices measured apart: an H200's own shapes (bf16's wide ones, q4's
	// deep one), every other device the H100's.
	h200 := DefaultMatVec()
	h200[quant.BF16][Wide], h200[quant.Q4][Deep] = MatVecShape{WG: 128, Rows: 2, BPT: 1}, MatVecShape{WG: 64, Rows: 2, BPT: 1}
	for dev, want := range map[string][NumFormats][NumWidths]MatVecShape{"NVIDIA H200": h200, "NVIDIA H200 NVL": h200, "NVIDIA H100 80GB HBM3": DefaultMatVec(), "llvmpipe (LLVM 15.0.6, 256 bits)": DefaultMatVec()} {
		if got := DefaultMatVecFor(dev); got != want {
			t.Errorf("%s: shapes %v, want %v", dev, got, want)
		}
	}
}
