package ops

import (
	"context"
	"fmt"
	"math"
	"math/rand"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
)

// Check runs one product kernel on random data of shape W [N, K] × x [cols, K]
// and compares it with the CPU oracle. It returns the NMSE against the CPU
// computed with the same inputs the kernel saw (f16-rounded activations, the
// GPU's own q8_1 codes), which must be tiny for a correct kernel; matmul selects
// the many-column kernel instead of the mat-vec.
func (o *Ops) Check(f quant.Format, f16 bool, N, K, cols int, matmul bool, seed int64) (float64, error) {
	a := o.D.NewArena(vk.DeviceMem)
	defer a.Free()
	c, err := o.D.NewCmd()
	if err != nil {
		return 0, err
	}
	defer c.Release()
	r := rand.New(rand.NewSource(seed))
	wv := make([]float32, N*K)
	for i := range wv {
		wv[i] = float32(r.NormFloat64()) * 0.05
	}
	x := make([]float32, cols*K)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		if f16 {
			x[i] = quant.RoundF16(x[i])
		}
	}
	wt, err := quant.Quantize(f, N, K, wv)
	if err != nil {
		return 0, err
	}
	w, err := o.UploadWeight(a, "w", wt)
	if err != nil {
		return 0, err
	}
	xb := F32Bytes(x)
	if f16 {
		xb = F16Bytes(x)
	}
	xbuf, err := Upload(o.D, a, "x", xb)
	if err != nil {
		return 0, err
	}
	ybuf, err := a.Alloc("y", uint64(4*cols*N))
	if err != nil {
		return 0, err
	}
	xa := Act{R: xbuf.All(), F16: f16, Cols: cols, K: K, Stride: K}
	if f.Blocked() && !matmul {
		if xa.Q, err = NewQAct(a, "xq", cols, K); err != nil {
			return 0, err
		}
		o.QuantizeAct(c, xa)
		c.Barrier()
	}
	if matmul {
		o.MatMul(c, w, xa, ybuf.All(), N)
	} else {
		o.MatVec(c, w, xa, ybuf.All(), N)
	}
	if err := c.Submit(context.Background()); err != nil {
		return 0, err
	}
	got, err := DownloadF32(o.D, ybuf.All(), cols*N)
	if err != nil {
		return 0, err
	}
	xin, wdq := x, wt.Dequantize()
	if xa.Q != nil {
		if xin, err = o.downloadQ8_1(xa.Q, x, cols, K); err != nil {
			return 0, err
		}
	}
	if matmul && o.CoopMat { // tensor cores multiply f16-rounded inputs
		xin, wdq = RoundF16All(xin), RoundF16All(wdq)
	}
	return cpu.NMSE(got, cpu.MatMul(wdq, N, K, xin, cols)), nil
}

// downloadQ8_1 reads the GPU's q8_1 activations, checks them against
// model/quant's (GPU division may differ by an ulp, which can move a code on a
// rounding boundary by one; nothing more is allowed) and returns them dequantized.
func (o *Ops) downloadQ8_1(q *QAct, x []float32, cols, k int) ([]float32, error) {
	codes, ds := quant.QuantizeQ8_1(x, cols, k)
	gq := make([]byte, cols*k)
	if err := o.D.Download(q.Q, gq); err != nil {
		return nil, err
	}
	gd, err := DownloadF32(o.D, q.D, 2*cols*k/32)
	if err != nil {
		return nil, err
	}
	xq := make([]float32, len(x))
	for i := range xq {
		if c := int(int8(gq[i])) - int(codes[i]); c < -1 || c > 1 {
			return nil, fmt.Errorf("q8_1 code %d: GPU %d, CPU %d", i, int8(gq[i]), codes[i])
		}
		xq[i] = float32(int8(gq[i])) * gd[2*(i/32)]
	}
	for b := 0; b < cols*k/32; b++ {
		if math.Abs(float64(gd[2*b]-ds[2*b])) > 1e-6*math.Abs(float64(ds[2*b])) {
			return nil, fmt.Errorf("q8_1 scale of block %d: GPU %g, CPU %g", b, gd[2*b], ds[2*b])
		}
	}
	return xq, nil
}

// RoundF16All rounds every value through f16 (what the tensor-core kernels see).
func RoundF16All(x []float32) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = quant.RoundF16(v)
	}
	return y
}
