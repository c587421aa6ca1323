package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ExpW is within 2 ulps of math.Exp over the range of weights, exactly 1 at 0,
// and 0 below −708; the draw picks the first candidate of some weight for the
// uniform 0,
// follows the weights (a candidate of weight 3 comes three times as often as
// one of weight 1), and never picks one of zero weight.
func TestExpWAndDraw(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	if ExpW(0) != 1 || ExpW(-708.5) != 0 || ExpW(math.Inf(-1)) != 0 {
		t.Fatalf("ExpW(0) %g, ExpW(-708.5) %g, ExpW(-inf) %g", ExpW(0), ExpW(-708.5), ExpW(math.Inf(-1)))
	}
	for i := 0; i < 200000; i++ {
		x := -708 * r.Float64() * r.Float64()
		got, want := ExpW(x), math.Exp(x)
		if ulps := math.Abs(got-want) / (math.Nextafter(want, 2*want) - want); ulps > 2 {
			t.Fatalf("ExpW(%g) = %g, math.Exp %g: %.1f ulps apart", x, got, want, ulps)
		}
	}
	idx := make([]int32, 300) // three blocks and a part
	val := make([]float32, len(idx))
	for j := range idx {
		idx[j] = int32(10 + j)
		val[j] = float32(math.Inf(-1))
	}
	val[5], val[200] = 0, float32(math.Log(3))
	if j := Draw(idx, val, 0); j != 15 {
		t.Fatalf("the uniform 0 drew %d, want the first candidate of some weight, 15", j)
	}
	var counts [2]int
	for i := 0; i < 40000; i++ {
		switch j := Draw(idx, val, r.Float64()); j {
		case 15:
			counts[0]++
		case 210:
			counts[1]++
		default:
			t.Fatalf("drew %d, a candidate of weight 0", j)
		}
	}
	if ratio := float64(counts[1]) / float64(counts[0]); math.Abs(ratio-3) > 0.15 {
		t.Fatalf("weights 1 : 3 drawn %d : %d", counts[0], counts[1])
	}
	if Draw(nil, nil, 0.5) != -1 {
		t.Fatal("an empty draw did not say so")
	}
}
