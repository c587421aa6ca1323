package ops

import (
	"encoding/binary"
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
		e.o.TopKWG = []uint32{512, 1024, 64, 512, 1024, 256}[trial] // (Ops.TopKWG: its workgroup)
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

// EmbedDrawn copies the drawn row of an f32 or bf16 table in host-visible
// memory into the masked rows of x, leaves the other rows alone, and takes row
// 0 for a failed draw (NaN scores or no survivor) or an index past the table.
func TestEmbedDrawn(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(5))
	const n, h = 37, 75 // odd h: bf16 rows straddle words
	host := e.d.NewArena(vk.UploadMem)
	defer host.Free()
	vals := randn(r, n*h, 1)
	for _, bf16 := range []bool{false, true} {
		esz := 4
		if bf16 {
			esz = 2
		}
		tb, err := host.Alloc("table", uint64(n*h*esz))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, n*h) // the table's values as the kernel reads them
		for i, v := range vals {
			bits := math.Float32bits(v)
			if bf16 {
				bits &^= 0xFFFF
				binary.LittleEndian.PutUint16(tb.Mapped()[2*i:], uint16(bits>>16))
			} else {
				binary.LittleEndian.PutUint32(tb.Mapped()[4*i:], bits)
			}
			want[i] = math.Float32frombits(bits)
		}
		ob, err := host.Alloc("out", TopKOutBytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			cnt, j uint32
			rows   uint32
			row    int // the table row the masked rows get
		}{{5, 12, 0b0101, 12}, {1, 36, 0b1111, 36}, {3, 0, 0b0010, 0}, {math.MaxUint32, 9, 0b1000, 0}, {0, 9, 0b0001, 0}, {4, n, 0b0100, 0}} {
			binary.LittleEndian.PutUint32(ob.Mapped(), c.cnt)
			binary.LittleEndian.PutUint32(ob.Mapped()[4:], c.j)
			before := randn(r, 4*h, 1)
			x := e.f32("x", before)
			e.o.EmbedDrawn(e.c, tb.All(), bf16, n, h, ob.All(), x, c.rows)
			e.run()
			got := e.get(x, 4*h)
			for row := 0; row < 4; row++ {
				exp := before[row*h : (row+1)*h]
				if c.rows&(1<<row) != 0 {
					exp = want[c.row*h : (c.row+1)*h]
				}
				if !slices.Equal(got[row*h:(row+1)*h], exp) {
					t.Fatalf("bf16 %v, draw (%d, %d), rows %04b: row %d is not table row %d (or left alone)", bf16, c.cnt, c.j, c.rows, row, c.row)
				}
			}
		}
	}
}
