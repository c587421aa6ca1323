package gen

import (
	"math"
	"math/rand/v2"
)

// sampleCFGTopK is CFGSubset, Sampling.Warp and Draw fused for the visual
// tokens' usual settings (temperature 1, top-p off, 0 < k < len): four passes
// over the logits instead of eight, and each survivor's exponential computed
// once. For the same rng state it returns exactly what the unfused path does
// (same values, same summation order; TestSampleCFGTopKMatches).
//
//	cond, uncond [n] logits of the visual ids
func sampleCFGTopK(cond, uncond []float32, s float64, k int, rng *rand.Rand) int {
	scores := make([]float32, len(cond))
	for i := range scores {
		scores[i] = float32(s*float64(cond[i]) + (1-s)*float64(uncond[i]))
	}
	th := histOf(scores).kth(scores, k)
	// The survivors of top-k that Draw would weigh (−inf and NaN never are).
	idx := make([]int32, 0, k+64)
	mf := negInf
	for i, v := range scores {
		if !(v < th) && v > negInf { // Warp drops only v < th; Draw skips −inf and NaN
			idx = append(idx, int32(i))
			mf = max(mf, v)
		}
	}
	m := float64(mf)
	w := make([]float64, len(idx))
	var sum float64
	for j, i := range idx {
		w[j] = math.Exp(float64(scores[i]) - m)
		sum += w[j]
	}
	u := rng.Float64() * sum
	for j := range idx {
		u -= w[j]
		if u < 0 {
			return int(idx[j])
		}
	}
	if len(idx) == 0 {
		return -1
	}
	return int(idx[len(idx)-1])
}
