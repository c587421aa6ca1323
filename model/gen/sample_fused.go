package gen

import "math/rand/v2"

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
	for i, v := range scores {
		if !(v < th) && v > negInf { // Warp drops only v < th
			idx = append(idx, int32(i))
		}
	}
	return drawAmong(scores, idx, rng)
}
