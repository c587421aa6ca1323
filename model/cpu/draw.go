package cpu

import "math"

// The draw of a token from its candidates (model/gen), one rule for the host
// and the GPU (topk_draw.comp, whose CPU reference this is): the same IEEE-754
// additions, subtractions and multiplications in the same order, none of them
// fused, so for the same uniform r both choose the same token.
//
// Candidate j weighs w_j = ExpW(v_j − max v), computed in float64. The weights
// are summed in blocks of DrawBlock (each block left to right, then the block
// sums left to right), u = r·total, and u walks down the block sums and then
// the chosen block's weights until it falls below zero.

// DrawBlock is the candidates a block sum covers.
const DrawBlock = 64

// expCoef are 1/i! for i = 13 down to 0: e^r's Taylor polynomial, which on
// |r| ≤ ln2/2 is within 4e-18 of it.
var expCoef = func() []float64 {
	c := make([]float64, 14)
	f := 1.0
	for i := 1; i <= 13; i++ {
		f *= float64(i)
		c[13-i] = 1 / f
	}
	c[13] = 1
	return c
}()

// The constants of ExpW: log2(e), and ln 2 split into a high part with 21
// trailing zero bits (k·expLn2Hi is exact) and the rest (fdlibm's split).
const (
	expLog2e = 1.44269504088896338700e+00
	expLn2Hi = 6.93147180369123816490e-01
	expLn2Lo = 1.90821492927058770002e-10
)

// ExpW is e^x for x ≤ 0 (x < −708: 0, which also keeps every result a normal
// number), within a few ulps of math.Exp: x = k·ln2 + r with k = x·log2(e)
// rounded to even, e^r by its Taylor polynomial (Horner), times 2^k. Products
// are converted to float64 before each addition so that no compiler fuses them.
func ExpW(x float64) float64 {
	if !(x >= -708) {
		return 0
	}
	k := math.RoundToEven(float64(x * expLog2e))
	r := x - float64(k*expLn2Hi)
	r -= float64(k * expLn2Lo)
	p := expCoef[0]
	for _, c := range expCoef[1:] {
		p = float64(p*r) + c
	}
	return p * math.Float64frombits(uint64(1023+int64(k))<<52)
}

// Draw chooses among idx (scores val) for the uniform r in [0, 1), by the
// rule above (−1 when idx is empty).
func Draw(idx []int32, val []float32, r float64) int {
	n := len(idx)
	if n == 0 {
		return -1
	}
	mf := float32(math.Inf(-1))
	for _, v := range val {
		mf = max(mf, v)
	}
	m := float64(mf)
	w := make([]float64, n)
	for j, v := range val {
		w[j] = ExpW(float64(v) - m)
	}
	nb := (n + DrawBlock - 1) / DrawBlock
	sums := make([]float64, nb)
	total := 0.0
	for b := range sums {
		s := 0.0
		for _, x := range w[b*DrawBlock : min(n, (b+1)*DrawBlock)] {
			s += x
		}
		sums[b] = s
		total += s
	}
	u := r * total
	for b, s := range sums {
		if u >= s {
			u -= s
			continue
		}
		hi := min(n, (b+1)*DrawBlock)
		for j := b * DrawBlock; j < hi; j++ {
			if u -= w[j]; u < 0 {
				return int(idx[j])
			}
		}
		return int(idx[hi-1])
	}
	return int(idx[n-1])
}
