package gen

import (
	"math"
	"slices"
	"sort"

	"github.com/emu35/emu35/model/cpu"
)

// Sampling is one parameter set of differential sampling (text or image).
type Sampling struct {
	TopK        int     `yaml:"top_k"`
	TopP        float64 `yaml:"top_p"`
	Temperature float64 `yaml:"temperature"`
}

var negInf = float32(math.Inf(-1))

// Warp applies temperature, top-k (entries strictly below the k-th largest are
// removed, ties survive) and top-p (the smallest set whose probability passes p,
// the crossing entry kept) to scores in place, as §5.2.
func (s Sampling) Warp(scores []float32) {
	if s.scales() {
		inv := float32(1 / s.Temperature)
		for i := range scores {
			scores[i] *= inv
		}
	}
	if s.TopK > 0 && s.TopK < len(scores) {
		th := kthLargest(scores, s.TopK)
		for i, v := range scores {
			if v < th {
				scores[i] = negInf
			}
		}
	}
	if s.nucleus() {
		idx := make([]int, 0, len(scores))
		for i, v := range scores {
			if v > negInf {
				idx = append(idx, i)
			}
		}
		sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
		p := softmaxOf(scores, idx)
		cum := 0.0
		for j, i := range idx {
			if cum > s.TopP { // the entry before already crossed p: drop the rest
				scores[i] = negInf
			}
			cum += p[j]
		}
	}
}

// scales says whether Warp divides by the temperature.
func (s Sampling) scales() bool { return s.Temperature > 0 && s.Temperature != 1 }

// nucleus says whether Warp applies top-p.
func (s Sampling) nucleus() bool { return s.TopP > 0 && s.TopP < 1 }

// softmaxOf returns softmax(scores[idx]) in float64.
func softmaxOf(scores []float32, idx []int) []float64 {
	m := math.Inf(-1)
	for _, i := range idx {
		m = math.Max(m, float64(scores[i]))
	}
	p := make([]float64, len(idx))
	var sum float64
	for j, i := range idx {
		p[j] = math.Exp(float64(scores[i]) - m)
		sum += p[j]
	}
	for j := range p {
		p[j] /= sum
	}
	return p
}

// kthLargest returns the k-th largest value (1-based) exactly, by a radix
// select: floats become order-preserving 32-bit keys, one pass counts them by
// their top 12 bits, and only the values in the bucket holding the k-th largest
// are sorted.
func kthLargest(x []float32, k int) float32 {
	return histOf(x).kth(x, k)
}

// radixHist counts values by the top 12 bits of their radixKey.
type radixHist [4096]int32

// histOf counts x by bucket. Four interleaved tables keep the increments
// independent: the logits crowd into a few buckets, and one table would make
// each count wait for the last.
func histOf(x []float32) *radixHist {
	var t [4]radixHist
	i := 0
	for ; i+4 <= len(x); i += 4 {
		t[0][radixKey(x[i])>>20]++
		t[1][radixKey(x[i+1])>>20]++
		t[2][radixKey(x[i+2])>>20]++
		t[3][radixKey(x[i+3])>>20]++
	}
	for ; i < len(x); i++ {
		t[0][radixKey(x[i])>>20]++
	}
	for b := range t[0] {
		t[0][b] += t[1][b] + t[2][b] + t[3][b]
	}
	return &t[0]
}

// radixKey maps a float to a uint32 of the same order: negative floats are
// inverted, positive ones get the top bit.
func radixKey(v float32) uint32 {
	u := math.Float32bits(v)
	return u ^ (uint32(int32(u)>>31) | 0x80000000)
}

// kth returns the k-th largest of x, whose values h counts: it sorts only the
// bucket that holds it.
func (h *radixHist) kth(x []float32, k int) float32 {
	b, above := h.bucketOf(k)
	bucket := make([]float32, 0, h[b])
	for _, v := range x {
		if int(radixKey(v)>>20) == b {
			bucket = append(bucket, v)
		}
	}
	slices.Sort(bucket)
	return bucket[len(bucket)-(k-above)]
}

// bucketOf is the bucket holding the k-th largest counted value, and how many
// values the buckets above it hold.
func (h *radixHist) bucketOf(k int) (b, above int) {
	b = 4095
	for ; b > 0 && above+int(h[b]) < k; b-- {
		above += int(h[b])
	}
	return b, above
}

// Uniform is a source of uniforms in [0, 1): a *rand.Rand, or a uniform drawn
// ahead for the GPU's draw (fixedU).
type Uniform interface{ Float64() float64 }

// fixedU is a uniform drawn ahead (for a step that was to draw on the GPU and
// left the draw to the host instead).
type fixedU float64

func (u fixedU) Float64() float64 { return float64(u) }

// Draw samples an index from softmax(scores) (−inf and NaN entries never chosen).
func Draw(scores []float32, rng Uniform) int {
	var idx []int32
	for i, v := range scores {
		if v > negInf {
			idx = append(idx, int32(i))
		}
	}
	return drawAmong(scores, idx, rng)
}

// drawAmong samples one of the indices idx (ascending) with probability
// proportional to exp(scores[i] − max), with one uniform from rng (drawn even
// when idx is empty), by cpu.Draw: the rule the GPU's draw shares (−1 when idx
// is empty).
func drawAmong(scores []float32, idx []int32, rng Uniform) int {
	val := make([]float32, len(idx))
	for j, i := range idx {
		val[j] = scores[i]
	}
	return cpu.Draw(idx, val, rng.Float64())
}

// Argmax is greedy decoding (the first index on ties).
func Argmax(scores []float32) int {
	best := 0
	for i, v := range scores {
		if v > scores[best] {
			best = i
		}
	}
	return best
}

// LogSoftmax returns x − logsumexp(x).
func LogSoftmax(x []float32) []float32 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(s)
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(float64(v) - lse)
	}
	return y
}

// CFG is the reference's guidance over the full vocabulary (§5.4, "no_text"):
// lu + s·(lc − lu) with lc, lu the log-softmax of the two branches.
func CFG(cond, uncond []float32, s float64) []float32 {
	lc, lu := LogSoftmax(cond), LogSoftmax(uncond)
	out := make([]float32, len(cond))
	for i := range out {
		out[i] = float32(float64(lu[i]) + s*(float64(lc[i])-float64(lu[i])))
	}
	return out
}

// CFGSubset is CFG restricted to a subset of ids (the visual tokens): s·c +
// (1−s)·u. It differs from CFG on that subset only by a constant (the two
// log-sum-exps), which softmax, top-k, top-p and temperature ignore, so sampling
// from it equals sampling from CFG masked to the subset, and needs only the
// subset's logits.
func CFGSubset(cond, uncond []float32, s float64) []float32 {
	out := make([]float32, len(cond))
	for i := range out {
		out[i] = float32(s*float64(cond[i]) + (1-s)*float64(uncond[i]))
	}
	return out
}
