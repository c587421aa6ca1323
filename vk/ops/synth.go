package ops

import (
	"fmt"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
)

// Fill records writing pseudo-random words (hash & mask) | bits over r.
func (o *Ops) Fill(c *vk.Cmd, r vk.Range, seed, mask, bits uint32) {
	lim := o.MaxBinding &^ 255
	for off := uint64(0); off < r.Size; off += lim {
		sub := r.Sub(off, min(lim, r.Size-off))
		n := int(sub.Size / 4)
		c.Dispatch(o.pipe("fill_u32", o.WG), o.grid1(n, o.WG),
			struct{ N, Seed, Mask, Bits uint32 }{uint32(n), seed + uint32(off>>8), mask, bits}, sub)
	}
}

// partMasks gives, per part of a format, a mask and fixed bits that make random
// words into sane weights: magnitudes of 2^-7..2^-6 for float weights and
// scales (so activations of a synthetic model stay finite), any bits for codes.
func partMasks(f quant.Format) [][2]uint32 {
	switch f {
	case quant.F32:
		return [][2]uint32{{0x807FFFFF, 0x3C000000}}
	case quant.F16:
		return [][2]uint32{{0x83FF83FF, 0x20002000}}
	case quant.BF16:
		return [][2]uint32{{0x807F807F, 0x3C003C00}}
	case quant.Q8_0:
		return [][2]uint32{{0xFFFFFFFF, 0}, {0x03FF03FF, 0x20002000}}
	case quant.Q4:
		return [][2]uint32{{0xFFFFFFFF, 0}, {0xFFFFFFFF, 0}, {0x007FFFFF, 0x3C000000}}
	}
	panic("ops: bad format")
}

// RandomWeight records filling w with random values valid for its format (for
// benchmarks and the synthetic full-size model; no CPU copy exists).
func (o *Ops) RandomWeight(c *vk.Cmd, w *Weight, seed uint32) {
	for j, ch := range w.Chunks {
		for i, m := range partMasks(w.Format) {
			o.Fill(c, ch.Parts[i], seed*7919+uint32(16*j+i), m[0], m[1])
		}
	}
}

// StreamRead records reading all of x (16-byte vectors) into a tiny y:
// the streaming-read yardstick. y needs 4 bytes per subgroup of the grid.
func (o *Ops) StreamRead(c *vk.Cmd, x, y vk.Range, groups int) {
	lim := o.MaxBinding &^ 255
	for off := uint64(0); off < x.Size; off += lim {
		sub := x.Sub(off, min(lim, x.Size-off))
		c.Dispatch(o.pipe("stream_read", 256), [3]uint32{uint32(groups), 1, 1}, struct{ N uint32 }{uint32(sub.Size / 16)}, sub, y)
	}
}

// PeakShape is a tensor-core peak measurement's setting (see CoopMatPeak).
type PeakShape struct {
	WG   int // invocations a workgroup: 256 or 512 (8 or 16 subgroups)
	Mode int // bits: 1 X fragments from shared memory, 2 W fragments, 4 the tile loop's barriers, 8 W stored [k][n], 16 two iterations' fragments loaded before their multiplies, 32 W's fragments from device memory, 64 barriers ordering shared memory only, 128 W's fragments loaded an iteration ahead, 256 (f16 16×16×16) the fragments of 1 and 2 held in fragment order and set element by element, 512 global loads in flight during the multiplies, issued (1024) after the fragments' loads or (2048) after the multiplies (0: the multiplies alone)
	// A subgroup computes 16·MA × 16·NF outputs: MA 4 and NF 2 (the GEMM
	// tile's), 4 and 4, or 8 and 1.
	MA, NF int
	N8     bool // 16×8×16 products (W fragments of 8 columns) instead of 16×16×16
	I8     bool // int8 16×16×32 products into int32 (twice the work a product)
}

// TileN is the columns of a product's W fragment and output tile.
func (s PeakShape) TileN() int {
	if s.N8 {
		return 8
	}
	return 16
}

// PeakFLOPs is the work of CoopMatPeak over groups workgroups.
func (s PeakShape) PeakFLOPs(groups, iters int) float64 {
	return float64(groups*s.WG/32*s.MA*s.NF*iters) * 2 * 16 * 16 * float64(s.K())
}

// K is the k of one product: 16, or 32 for int8.
func (s PeakShape) K() int {
	if s.I8 {
		return 32
	}
	return 16
}

// PeakWBytes is the size of CoopMatPeak's w: W's tile (64·NF rows of 80
// bytes), or for mode 512 the 32 MiB its global loads stream over.
func (s PeakShape) PeakWBytes() int {
	if s.Mode&512 != 0 {
		return 32 << 20
	}
	return 64 * s.NF * 80
}

// modeValid reports whether s.Mode's bits go together (see PeakShape.Mode).
func (s PeakShape) modeValid() bool {
	m := s.Mode
	switch {
	case m < 0 || m > 4095:
		return false
	case m&144 == 144: // paired and w-ahead are two different loops
		return false
	case s.I8 && m&8 != 0: // W stored [k][n]: f16 only
		return false
	case m&256 != 0 && (s.I8 || s.N8 || m&40 != 0): // fragment order: f16 16×16×16, W from shared memory in [n][k]
		return false
	case m&512 != 0 && m&144 != 0: // global loads: the plain loop only
		return false
	case m&3072 != 0 && (m&512 == 0 || m&3072 == 3072): // where mode 512's loads go: one place, with 512
		return false
	}
	return true
}

// PeakOutputs is the floats CoopMatPeak writes to y a workgroup.
func (s PeakShape) PeakOutputs() int { return s.WG / 32 * s.MA * s.NF * 256 }

// peakVariants names coopmat_peak's compiled forms by their MA, NF, N8 and I8.
var peakVariants = map[[4]int]string{
	{4, 2, 0, 0}: "coopmat_peak", {4, 4, 0, 0}: "coopmat_peak_nf4", {4, 2, 1, 0}: "coopmat_peak_n8", {8, 1, 0, 0}: "coopmat_peak_ma8",
	{8, 1, 1, 0}: "coopmat_peak_ma8_n8", {4, 2, 0, 1}: "coopmat_peak_i8",
}

// PeakRuns reports whether the device runs CoopMatPeak on s: tensor cores,
// and int8 ones for I8.
func (o *Ops) PeakRuns(s PeakShape) bool {
	return o.CoopMat && (!s.I8 || o.D.Caps.HasCoopMat(16, 16, 32, "s8", "s32"))
}

// CoopMatPeak records the tensor-core rate yardstick (coopmat_peak.comp): each
// subgroup of groups workgroups multiplies MA × (16·NF/TileN) fragment pairs
// (f16, or int8 with I8) into f32 (int32) accumulators iters times and writes
// them to y, [group][subgroup][i][j] 16×TileN tiles (PeakOutputs words a group).
// w is W's tile in device memory for mode 32 (PeakWBytes, laid out as the
// shader's shared copy), what mode 512's global loads read, and bound but
// unread otherwise. Needs PeakRuns(s).
func (o *Ops) CoopMatPeak(c *vk.Cmd, y, w vk.Range, s PeakShape, groups, iters int) {
	name, ok := peakVariants[[4]int{s.MA, s.NF, int(b2u(s.N8)), int(b2u(s.I8))}]
	if !o.PeakRuns(s) || !ok || !s.modeValid() || s.WG%128 != 0 {
		panic(fmt.Sprintf("ops: CoopMatPeak %+v (tensor cores %v)", s, o.CoopMat))
	}
	c.Dispatch(o.pipe(name, uint32(s.WG), uint32(s.Mode)), [3]uint32{uint32(groups), 1, 1}, struct{ Iters uint32 }{uint32(iters)}, y, w)
}

// DefaultTouchStride is the distance between the words Touch reads
// (Ops.TouchStride): 1 MiB, half the 2 MiB page size large allocations are
// taken to get (the arena's block size made no difference on an H100). With
// the range's last word, every such page of a range is read whatever its
// offset. Measured on an H100 (q4 steps at 1k / 4k on the GPU): 2 MiB
// 10.00 / 10.83 ms, 1.5 MiB 9.98 / 10.79, 1 MiB 9.86 / 10.65, 768 KiB
// 9.92 / 10.69, 512 KiB 10.09 / 10.85, 256 KiB 10.35 / 11.08, 4 MiB 10.11 / 10.94.
const DefaultTouchStride = 1 << 20

// Touch records reading one word of every page of each range (and nothing
// else), so their address translations are cached before a kernel streams
// them; out (eight words) is where the kernel would store the words it read if
// its stride were zero, which it never is, so the loads cannot be optimised
// away. It needs no barrier: nothing depends on it.
func (o *Ops) Touch(c *vk.Cmd, out vk.Range, rs []vk.Range) {
	stride := int(max(o.TouchStride, 4))
	for i := 0; i < len(rs); i += 8 {
		n := min(8, len(rs)-i)
		bufs := make([]vk.Range, 0, 9)
		most := 1 // an invocation a touch: their loads are in flight at once
		for j := 0; j < 8; j++ {
			r := rs[i+min(j, n-1)]
			bufs = append(bufs, r)
			most = max(most, ceil(int(r.Size), stride))
		}
		bufs = append(bufs, out)
		c.Dispatch(o.pipe("touch", 64), [3]uint32{uint32(ceil(most, 64)), uint32(n), 1}, struct{ Stride, N uint32 }{uint32(stride / 4), uint32(n)}, bufs...)
	}
}
