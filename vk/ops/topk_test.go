package ops

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/vk"
)

// TopKSelect finds exactly the survivors a sort on the host finds: the same
// float scores (double arithmetic rounded once), every score at or above the
// k-th largest but −inf, in index order; ties at the threshold, −inf scores,
// k at the ends. A NaN score is reported, not sampled around. Its draw weighs
// each survivor as the host's rule does, bit for bit, and draws the token the
// host draws for the same uniform (cpu.Draw; model/gen's
// TestGPUSelectMatchesHost checks whole images drawn either way).
func TestTopKSelect(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(11))
	V, lo, n := 5000, 700, 4000
	host := e.d.NewArena(vk.ReadbackMem)
	defer host.Free()
	pb, _ := host.Alloc("params", TopKParamBytes)
	ob, _ := host.Alloc("out", TopKOutBytes)
	tk, err := NewTopK(e.d, e.a, n, pb.All(), ob.All())
	if err != nil {
		t.Fatal(err)
	}
	for trial, k := range []int{1, 7, 100, 1000, n - 1, 2500} {
		logits := randn(r, 2*V, 3)
		for i := range logits {
			switch r.Intn(30) {
			case 0:
				logits[i] = 1.25 // ties
			case 1:
				if i < V { // −inf in cond only (−inf in both makes NaN)
					logits[i] = float32(math.Inf(-1))
				}
			}
		}
		s := 1 + 9*r.Float64()
		nan := trial == 5
		if nan {
			logits[lo+123] = float32(math.NaN())
		}
		lb := e.f32("logits", logits)
		u := []float64{0, 0.73, 0.3125, 0.999999, 0.5, 0.05}[trial]
		TopKParams(pb.Mapped(), s, k, u)
		e.o.TopKSelect(e.c, lb, V, lo, tk)
		e.run()
		drawn, cnt, okDraw := ReadDraw(ob.Mapped())
		if nan {
			if okDraw {
				t.Fatal("a NaN score was not reported")
			}
			continue
		}
		idx, val, ok := ReadTopK(F32View(e.get(tk.Surv, 1+2*n)), n, nil, nil)
		if !ok {
			t.Fatalf("k %d: NaN reported without one", k)
		}
		scores := make([]float32, n)
		for i := range scores {
			scores[i] = float32(s*float64(logits[lo+i]) + (1-s)*float64(logits[V+lo+i]))
		}
		sorted := slices.Clone(scores)
		slices.Sort(sorted)
		th := sorted[n-k]
		var want []int32
		for i, v := range scores {
			if v >= th && v > float32(math.Inf(-1)) {
				want = append(want, int32(i))
			}
		}
		if !slices.Equal(idx, want) {
			t.Fatalf("k %d: %d survivors, want %d (first %v, want %v)", k, len(idx), len(want), idx[:min(5, len(idx))], want[:min(5, len(want))])
		}
		for j, i := range idx {
			if math.Float32bits(val[j]) != math.Float32bits(scores[i]) {
				t.Fatalf("k %d: score %d is %g, want %g", k, i, val[j], scores[i])
			}
		}
		// The draw: each survivor's weight bit for bit, and the token, as the
		// host's rule (cpu.Draw) has them.
		mf := float32(math.Inf(-1))
		for _, v := range val {
			mf = max(mf, v)
		}
		wf := e.get(tk.W, 2*len(idx))
		for j, v := range val {
			got := math.Float64frombits(uint64(math.Float32bits(wf[2*j])) | uint64(math.Float32bits(wf[2*j+1]))<<32)
			if want := cpu.ExpW(float64(v) - float64(mf)); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("k %d: survivor %d weighs %v on the GPU, %v on the host", k, j, got, want)
			}
		}
		if want := cpu.Draw(idx, val, u); !okDraw || cnt != len(idx) || drawn != want {
			t.Fatalf("k %d, uniform %g: drew %d of %d survivors (ok %v), want %d of %d", k, u, drawn, cnt, okDraw, want, len(idx))
		}
	}
}
