package gen

import (
	"runtime"
	"slices"
	"sync"
)

// sampleCFGTopK is CFGSubset, Sampling.Warp and Draw fused for the visual
// tokens' usual settings (temperature 1, top-p off, 0 < k < len): two passes
// over the logits instead of eight, split across cores, and each survivor's
// exponential computed once. The parallel parts only compute, count and
// collect (in index order), so for the same rng state it returns exactly what
// the unfused path does (same values, same summation order;
// TestSampleCFGTopKMatches).
//
//	cond, uncond [n] logits of the visual ids
func sampleCFGTopK(cond, uncond []float32, s float64, k int, rng Uniform) int {
	n := len(cond)
	sc := scratchPool.Get().(*fusedScratch)
	defer scratchPool.Put(sc)
	scores := slices.Grow(sc.scores[:0], n)[:n]
	sc.scores = scores
	parts := min(runtime.GOMAXPROCS(0), 8, max(1, n/8192))
	for len(sc.parts) < parts {
		sc.parts = append(sc.parts, &fusedPart{})
	}
	span := (n + parts - 1) / parts
	each := func(f func(p *fusedPart, lo, hi int)) {
		var wg sync.WaitGroup
		for i := 0; i < parts; i++ {
			lo, hi := min(n, i*span), min(n, (i+1)*span)
			wg.Add(1)
			go func() {
				defer wg.Done()
				f(sc.parts[i], lo, hi)
			}()
		}
		wg.Wait()
	}
	// Pass 1: the guided scores and a histogram of their top 12 bits.
	each(func(p *fusedPart, lo, hi int) {
		for i := lo; i < hi; i++ {
			scores[i] = float32(s*float64(cond[i]) + (1-s)*float64(uncond[i]))
		}
		p.hist = *histOf(scores[lo:hi])
	})
	var h radixHist
	for _, p := range sc.parts[:parts] {
		for b := range h {
			h[b] += p.hist[b]
		}
	}
	b, above := h.bucketOf(k)
	// Pass 2: the bucket holding the k-th largest (to sort), and in index
	// order every index whose bucket is at or above it (the survivors' superset).
	each(func(p *fusedPart, lo, hi int) {
		p.bucket, p.idx = p.bucket[:0], p.idx[:0]
		for i := lo; i < hi; i++ {
			switch kb := int(radixKey(scores[i]) >> 20); {
			case kb == b:
				p.bucket = append(p.bucket, scores[i])
				p.idx = append(p.idx, int32(i))
			case kb > b:
				p.idx = append(p.idx, int32(i))
			}
		}
	})
	bucket, cand := sc.bucket[:0], sc.idx[:0]
	for _, p := range sc.parts[:parts] {
		bucket = append(bucket, p.bucket...)
		cand = append(cand, p.idx...)
	}
	slices.Sort(bucket)
	th := bucket[len(bucket)-(k-above)]
	// The survivors of top-k that Draw would weigh (−inf and NaN never are).
	// Warp drops only v < th: with a NaN threshold (NaN logits ranked among
	// the top k) nothing is dropped, and every index is a candidate.
	if th != th {
		cand = cand[:0]
		for i := range scores {
			cand = append(cand, int32(i))
		}
	}
	idx := cand[:0]
	for _, i := range cand {
		if v := scores[i]; !(v < th) && v > negInf {
			idx = append(idx, i)
		}
	}
	sc.bucket, sc.idx = bucket, idx
	return drawAmong(scores, idx, rng)
}

// fusedScratch is sampleCFGTopK's memory, reused across tokens.
type fusedScratch struct {
	scores, bucket []float32
	idx            []int32
	parts          []*fusedPart
}

// fusedPart is one core's share of a pass.
type fusedPart struct {
	hist   radixHist
	bucket []float32
	idx    []int32
}

var scratchPool = sync.Pool{New: func() any { return &fusedScratch{} }}
