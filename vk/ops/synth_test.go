package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/emu35/emu35/model/quant"
)

// peakHalf is half h of coopmat_peak's shared X (w false) or W tile as the
// shader fills it: 16-byte word i = h/8 holds pairs (c·(i mod p), c).
func peakHalf(w bool, h int) float64 {
	c, p := 1e-3, 7
	if w {
		c, p = 2e-3, 5
	}
	v := c
	if h%2 == 0 {
		v = c * float64(h/8%p)
	}
	return float64(quant.RoundF16(float32(v)))
}

// CoopMatPeak's accumulators are iters products of the fragments it says it
// loads: each subgroup's own rows of X and W, at the k offsets and in the W
// layout of its mode.
func TestCoopMatPeak(t *testing.T) {
	e := newEnv(t)
	if !e.o.CoopMat {
		t.Skip("the device has no 16×16×16 f16 cooperative matrices (lavapipe has none)")
	}
	const groups = 3
	for _, s := range []PeakShape{{256, 0, 4, 2, false}, {256, 3, 4, 2, false}, {512, 7, 4, 2, false}, {256, 7, 4, 4, false}, {512, 1, 4, 2, false},
		{256, 2, 4, 4, false}, {256, 11, 4, 2, false}, {512, 15, 4, 2, false}, {256, 0, 4, 2, true}, {256, 7, 4, 2, true}, {512, 11, 4, 2, true},
		{256, 0, 8, 1, false}, {256, 15, 8, 1, false}, {512, 7, 8, 1, true}, {256, 19, 4, 2, false}, {512, 23, 4, 2, false}, {256, 17, 4, 2, false}, {256, 30, 4, 2, true}} {
		for _, iters := range []int{1, 2, 6} {
			if s.Mode&16 != 0 && iters%2 != 0 {
				continue
			}
			t.Run(fmt.Sprintf("%+v/%d", s, iters), func(t *testing.T) {
				y := e.out("peak", groups*s.PeakOutputs())
				e.o.CoopMatPeak(e.c, y, s, groups, iters)
				e.run()
				got := e.get(y, groups*s.PeakOutputs())
				nsg, ldn, tn := s.WG/32, 64*s.NF+8, s.TileN()
				nb := 16 * s.NF / tn
				for g := 0; g < groups; g++ {
					for sg := 0; sg < nsg; sg++ {
						wm, wn := sg/4, sg%4
						for i := 0; i < s.MA; i++ {
							for j := 0; j < nb; j++ {
								tile := got[((g*nsg+sg)*s.MA*nb+i*nb+j)*16*tn:][:16*tn]
								for m := 0; m < 16; m++ {
									for n := 0; n < tn; n++ {
										r, c := wm*16*s.MA+i*16+m, wn*16*s.NF+j*tn+n
										want := 0.0
										for it := 0; it < iters; it++ {
											kx, kw := 0, 0
											if s.Mode&1 != 0 {
												kx = it % 2 * 16
											}
											if s.Mode&2 != 0 {
												kw = it % 2 * 16
											}
											for k := 0; k < 16; k++ {
												hw := c*40 + kw + k
												if s.Mode&8 != 0 {
													hw = (kw+k)*ldn + c
												}
												want += peakHalf(false, r*40+kx+k) * peakHalf(true, hw)
											}
										}
										if v := float64(tile[m*tn+n]); math.Abs(v-want) > 1e-4*math.Abs(want)+1e-9 {
											t.Fatalf("group %d subgroup %d tile (%d, %d) [%d][%d] = %g, want %g", g, sg, i, j, m, n, v, want)
										}
									}
								}
							}
						}
					}
				}
			})
		}
	}
}
