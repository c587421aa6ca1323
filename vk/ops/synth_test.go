package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
)

// peakElem is element h of coopmat_peak's shared X (w false) or W tile as the
// shader fills it: 16-byte word i = h/e (e elements a word) holds, in each 32-bit
// lane, f16 pairs (c·(i mod m), c) or int8 codes (i mod m − m/2, 1, −1, 2).
func peakElem(w, i8 bool, h int) float64 {
	c, m := 1e-3, 7
	if w {
		c, m = 2e-3, 5
	}
	if i8 {
		return float64([]int{h/16%m - m/2, 1, -1, 2}[h%4])
	}
	v := c
	if h%2 == 0 {
		v = c * float64(h/8%m)
	}
	return float64(quant.RoundF16(float32(v)))
}

// peakW uploads W's tile as the shader fills its shared copy (peakElem).
func (e *env) peakW(s PeakShape) vk.Range {
	b := make([]byte, s.PeakWBytes())
	for h := 0; h < len(b); h++ {
		if s.I8 {
			b[h] = byte(int8(peakElem(true, true, h)))
		} else if h%2 == 0 {
			binary.LittleEndian.PutUint16(b[h:], quant.F32ToF16(float32(peakElem(true, false, h/2))))
		}
	}
	buf, err := Upload(e.d, e.a, "peak_w", b)
	if err != nil {
		e.t.Fatal(err)
	}
	return buf.All()
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
	var shapes []PeakShape
	for _, sh := range [][6]int{ // workgroup, mode, MA, NF, N8, I8
		{256, 0, 4, 2, 0, 0}, {256, 3, 4, 2, 0, 0}, {512, 7, 4, 2, 0, 0}, {256, 7, 4, 4, 0, 0}, {512, 1, 4, 2, 0, 0}, {256, 2, 4, 4, 0, 0},
		{256, 11, 4, 2, 0, 0}, {512, 15, 4, 2, 0, 0}, {256, 0, 4, 2, 1, 0}, {256, 7, 4, 2, 1, 0}, {512, 11, 4, 2, 1, 0},
		{256, 0, 8, 1, 0, 0}, {256, 15, 8, 1, 0, 0}, {512, 7, 8, 1, 1, 0}, {256, 19, 4, 2, 0, 0}, {512, 23, 4, 2, 0, 0}, {256, 17, 4, 2, 0, 0},
		{256, 30, 4, 2, 1, 0}, {256, 0, 4, 2, 0, 1}, {256, 7, 4, 2, 0, 1}, {512, 19, 4, 2, 0, 1}, {256, 2, 4, 2, 0, 1},
		{256, 34, 4, 2, 0, 0}, {512, 39, 4, 2, 0, 0}, {256, 51, 4, 2, 1, 0}, {256, 35, 4, 2, 0, 1}, {256, 103, 4, 2, 0, 0}, {512, 71, 4, 2, 0, 0},
		{256, 167, 4, 2, 0, 0}, {256, 135, 4, 2, 0, 0}, {512, 162, 4, 2, 1, 0},
		{256, 257, 4, 2, 0, 0}, {256, 258, 4, 2, 0, 0}, {512, 263, 4, 2, 0, 0}, {256, 279, 4, 4, 0, 0}, {256, 263, 8, 1, 0, 0},
		{256, 519, 4, 2, 0, 0}, {512, 775, 4, 2, 0, 0}, {256, 515, 4, 2, 0, 1},
		{256, 1799, 4, 2, 0, 0}, {512, 2823, 4, 2, 0, 0}, {256, 1543, 4, 2, 0, 0},
	} {
		shapes = append(shapes, PeakShape{WG: sh[0], Mode: sh[1], MA: sh[2], NF: sh[3], N8: sh[4] == 1, I8: sh[5] == 1})
	}
	for _, s := range shapes {
		for _, iters := range []int{1, 2, 6} {
			if s.Mode&16 != 0 && iters%2 != 0 {
				continue
			}
			t.Run(fmt.Sprintf("%+v/%d", s, iters), func(t *testing.T) {
				if !e.o.PeakRuns(s) {
					t.Skip("the device has no int8 16×16×32 cooperative matrices")
				}
				y := e.out("peak", groups*s.PeakOutputs())
				e.o.CoopMatPeak(e.c, y, e.peakW(s), s, groups, iters)
				e.run()
				got := e.get(y, groups*s.PeakOutputs())
				// Rows of 64 bytes of k padded to 80: 40 halves or 80 int8 codes.
				nsg, ldn, tn, kp, rs := s.WG/32, 64*s.NF+8, s.TileN(), s.K(), 80*s.K()/32
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
												kx = it % 2 * kp
											}
											if s.Mode&2 != 0 {
												kw = it % 2 * kp
											}
											for k := 0; k < kp; k++ {
												hw := c*rs + kw + k
												if s.Mode&8 != 0 {
													hw = (kw+k)*ldn + c
												}
												want += peakElem(false, s.I8, r*rs+kx+k) * peakElem(true, s.I8, hw)
											}
										}
										v := float64(tile[m*tn+n])
										if s.I8 {
											v = float64(int32(math.Float32bits(tile[m*tn+n])))
										}
										if math.Abs(v-want) > 1e-4*math.Abs(want)+1e-9 {
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
