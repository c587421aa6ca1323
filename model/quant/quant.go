// Package quant defines emu35's weight formats on the CPU: f32, f16, bf16, q8_0
// and q4, their conversions, quantizers and dequantizers. The GPU kernels
// (shaders/include/weights.glsl) read exactly these layouts.
//
// A tensor W [rows, K] is stored as one to three parts, each row-major so that a
// contiguous range of rows is a contiguous range of every part:
//
//	f32, f16, bf16: values                       [rows, K]
//	q8_0:  qs int8 [rows, K]; d f16 [rows, K/32]  w = d·q, d = amax/127 per block of 32
//	q4:    qs [rows, K/32] × 16 bytes; sm u16 [rows, K/32]; rd (f32 d, f32 dmin) [rows]
//
// q4 is emu35's own 4-bit format (4.5 bits per weight plus 8 bytes per row): each
// block of 32 has an asymmetric range, w = (d·sc)·u − dmin·mn with 4-bit codes u,
// 8-bit block scale sc and 8-bit block min mn relative to a per-row f32 pair
// (d, dmin). Against q4_0 (symmetric, one f16 scale per 32) the block min follows
// skewed blocks and the codes use all 16 levels; each block's step and min are
// fitted by least squares over 21 candidate code sets, which gives a third less
// squared error than q4_0 on Gaussian weights (TestQ4BeatsQ4_0). Word i of a block's 16 bytes
// holds elements 8i..8i+3 in its low nibbles and 8i+4..8i+7 in its high ones, so
// a shader masks a word into four int8 lanes in element order and feeds them
// straight to a packed int8 dot product against q8_1 activations; the min term
// needs only each activation block's sum.
package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Format is a weight storage format.
type Format int

const (
	F32 Format = iota
	F16
	BF16
	Q8_0
	Q4
)

var names = []string{"f32", "f16", "bf16", "q8_0", "q4"}

func (f Format) String() string {
	if int(f) < len(names) {
		return names[f]
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// Parse reads a format name; "q8" means q8_0.
func Parse(s string) (Format, error) {
	if s == "q8" {
		return Q8_0, nil
	}
	for i, n := range names {
		if n == s {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("unknown weight format %q (want f32, f16, bf16, q8 or q4)", s)
}

// Blocked reports whether f is a block format (needs K % 32 == 0).
func (f Format) Blocked() bool { return f == Q8_0 || f == Q4 }

// CheckShape says whether a [rows, K] matrix can be stored as f.
func (f Format) CheckShape(rows, k int) error {
	if rows <= 0 || k <= 0 {
		return fmt.Errorf("shape [%d, %d] is empty", rows, k)
	}
	if f.Blocked() && k%32 != 0 {
		return fmt.Errorf("%s needs rows whose length is a multiple of 32, got %d", f, k)
	}
	return nil
}

// PartRowBytes is the bytes per row of each part.
func (f Format) PartRowBytes(k int) []int {
	switch f {
	case F32:
		return []int{4 * k}
	case F16, BF16:
		return []int{2 * k}
	case Q8_0:
		return []int{k, 2 * (k / 32)}
	case Q4:
		return []int{16 * (k / 32), 2 * (k / 32), 8}
	}
	panic("quant: bad format")
}

// Bytes is the total size of a [rows, K] tensor.
func (f Format) Bytes(rows, k int) int64 {
	var s int64
	for _, b := range f.PartRowBytes(k) {
		s += int64(b) * int64(rows)
	}
	return s
}

// Tensor is a weight matrix [Rows, K] on the CPU in format Format.
type Tensor struct {
	Format  Format
	Rows, K int
	Parts   [][]byte
}

// F32ToF16 rounds to the nearest f16 (ties to even), saturating to ±Inf.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b >> 23) & 0xff)
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - e)
		h := man >> shift
		rem := man & ((1 << shift) - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}

// F16ToF32 widens an f16.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0:
		for man&0x400 == 0 {
			man <<= 1
			exp--
		}
		exp++
		man &= 0x3ff
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// F32ToBF16 rounds to the nearest bf16 (ties to even).
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// BF16ToF32 widens a bf16.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// RoundF16 and RoundBF16 round a float32 through the narrow type.
func RoundF16(f float32) float32  { return F16ToF32(F32ToF16(f)) }
func RoundBF16(f float32) float32 { return BF16ToF32(F32ToBF16(f)) }

// Quantize stores src [rows, k] in format f.
func Quantize(f Format, rows, k int, src []float32) (*Tensor, error) {
	if err := f.CheckShape(rows, k); err != nil {
		return nil, err
	}
	if len(src) != rows*k {
		return nil, fmt.Errorf("quantize: %d values for a [%d, %d] matrix", len(src), rows, k)
	}
	t := &Tensor{Format: f, Rows: rows, K: k}
	for _, b := range f.PartRowBytes(k) {
		t.Parts = append(t.Parts, make([]byte, b*rows))
	}
	le := binary.LittleEndian
	switch f {
	case F32:
		for i, v := range src {
			le.PutUint32(t.Parts[0][4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			le.PutUint16(t.Parts[0][2*i:], F32ToF16(v))
		}
	case BF16:
		for i, v := range src {
			le.PutUint16(t.Parts[0][2*i:], F32ToBF16(v))
		}
	case Q8_0:
		for b := 0; b < rows*k/32; b++ {
			x := src[32*b : 32*b+32]
			var amax float32
			for _, v := range x {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			d16 := F32ToF16(amax / 127)
			d := F16ToF32(d16)
			var id float32
			if d > 0 {
				id = 1 / d
			}
			for i, v := range x {
				q := max(-127, min(127, int(roundHalfAway(v*id))))
				t.Parts[0][32*b+i] = byte(int8(q))
			}
			le.PutUint16(t.Parts[1][2*b:], d16)
		}
	case Q4:
		nb := k / 32
		for r := 0; r < rows; r++ {
			row := src[r*k : (r+1)*k]
			var smax, mmax float32
			for b := 0; b < nb; b++ {
				s, m := fitBlock(row[32*b : 32*b+32])
				smax = max(smax, s)
				mmax = max(mmax, m)
			}
			d, dmin := smax/255, mmax/255
			le.PutUint32(t.Parts[2][8*r:], math.Float32bits(d))
			le.PutUint32(t.Parts[2][8*r+4:], math.Float32bits(dmin))
			for b := 0; b < nb; b++ {
				x := row[32*b : 32*b+32]
				bs, bm := fitBlock(x)
				var sc, mn uint32
				if d > 0 {
					sc = uint32(clampf(roundHalfAway(bs/d), 0, 255))
				}
				if dmin > 0 {
					mn = uint32(clampf(roundHalfAway(bm/dmin), 0, 255))
				}
				s, m := d*float32(sc), dmin*float32(mn)
				var is float32
				if s > 0 {
					is = 1 / s
				}
				gb := r*nb + b
				blk := t.Parts[0][16*gb : 16*gb+16]
				for w := 0; w < 4; w++ {
					var word uint32
					for e := 0; e < 8; e++ {
						u := uint32(clampf(roundHalfAway((x[8*w+e]+m)*is), 0, 15))
						word |= u << (8*(e&3) + 4*(e>>2))
					}
					le.PutUint32(blk[4*w:], word)
				}
				le.PutUint16(t.Parts[1][2*gb:], uint16(sc|mn<<8))
			}
		}
	}
	return t, nil
}

// roundHalfAway matches GLSL round() on both drivers for our inputs (ties away from zero).
func roundHalfAway(v float32) float32 { return float32(math.Round(float64(v))) }

func clampf(v, lo, hi float32) float32 { return max(lo, min(hi, v)) }

// fitBlock chooses a block's step s and min m (x ≈ s·u − m, u in 0..15, m ≥ 0):
// it tries 21 candidate steps around (max−min)/15, fits s and m to each set of
// codes by least squares, and keeps the fit with the smallest squared error.
// shaders/quantize.comp does the same in the same order.
func fitBlock(x []float32) (s, m float32) {
	lo, hi := blockRange(x)
	if hi <= lo {
		return 0, -lo
	}
	s, m = (hi-lo)/15, -lo
	best := blockErrCodes(x, s, m, 1/s, lo)
	var sumX float32
	for _, v := range x {
		sumX += v
	}
	for step := 0; step <= 20; step++ {
		is := (14 + 0.1*float32(step)) / (hi - lo)
		var sl, sl2, sxl float32
		for _, v := range x {
			l := clampf(roundHalfAway(is*(v-lo)), 0, 15)
			sl += l
			sl2 += l * l
			sxl += v * l
		}
		det := 32*sl2 - sl*sl
		if det <= 0 {
			continue
		}
		ts := (32*sxl - sumX*sl) / det
		tm := (sl2*sumX - sl*sxl) / det
		if tm > 0 {
			tm, ts = 0, sxl/sl2
		}
		if ts <= 0 {
			continue
		}
		if e := blockErrCodes(x, ts, -tm, is, lo); e < best {
			best, s, m = e, ts, -tm
		}
	}
	return s, m
}

// blockErrCodes is the squared error of the codes chosen with inverse step is
// from lo, reconstructed with step s and min m.
func blockErrCodes(x []float32, s, m, is, lo float32) float32 {
	var e float32
	for _, v := range x {
		l := clampf(roundHalfAway(is*(v-lo)), 0, 15)
		d := s*l - m - v
		e += d * d
	}
	return e
}

func blockRange(x []float32) (lo, hi float32) {
	lo, hi = 0, float32(math.Inf(-1))
	for _, v := range x {
		lo = min(lo, v)
		hi = max(hi, v)
	}
	return lo, hi
}

// Row dequantizes row r into dst (len K).
func (t *Tensor) Row(r int, dst []float32) {
	le := binary.LittleEndian
	k := t.K
	switch t.Format {
	case F32:
		for i := range dst[:k] {
			dst[i] = math.Float32frombits(le.Uint32(t.Parts[0][4*(r*k+i):]))
		}
	case F16:
		for i := range dst[:k] {
			dst[i] = F16ToF32(le.Uint16(t.Parts[0][2*(r*k+i):]))
		}
	case BF16:
		for i := range dst[:k] {
			dst[i] = BF16ToF32(le.Uint16(t.Parts[0][2*(r*k+i):]))
		}
	case Q8_0:
		for i := range dst[:k] {
			g := r*k + i
			dst[i] = F16ToF32(le.Uint16(t.Parts[1][2*(g/32):])) * float32(int8(t.Parts[0][g]))
		}
	case Q4:
		nb := k / 32
		d := math.Float32frombits(le.Uint32(t.Parts[2][8*r:]))
		dmin := math.Float32frombits(le.Uint32(t.Parts[2][8*r+4:]))
		for b := 0; b < nb; b++ {
			gb := r*nb + b
			sm := le.Uint16(t.Parts[1][2*gb:])
			s, m := d*float32(sm&255), dmin*float32(sm>>8)
			for j := 0; j < 32; j++ {
				word := le.Uint32(t.Parts[0][16*gb+4*(j/8):])
				u := (word >> (8*(j&3) + 4*((j>>2)&1))) & 15
				dst[32*b+j] = s*float32(u) - m
			}
		}
	}
}

// Dequantize returns all values [Rows, K].
func (t *Tensor) Dequantize() []float32 {
	out := make([]float32, t.Rows*t.K)
	for r := 0; r < t.Rows; r++ {
		t.Row(r, out[r*t.K:(r+1)*t.K])
	}
	return out
}

// QuantizeQ8_1 quantizes activations x [cols, k] the way the GPU does before an
// integer-dot mat-vec: per block of 32, int8 codes with d = amax/127, and d·Σcodes.
// It returns the codes and (d, d·sum) pairs; used by tests as the exact oracle.
func QuantizeQ8_1(x []float32, cols, k int) ([]int8, []float32) {
	q := make([]int8, cols*k)
	ds := make([]float32, 2*cols*k/32)
	for b := 0; b < cols*k/32; b++ {
		var amax float32
		for _, v := range x[32*b : 32*b+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d > 0 {
			id = 1 / d
		}
		sum := 0
		for i, v := range x[32*b : 32*b+32] {
			c := int(roundHalfAway(v * id))
			q[32*b+i] = int8(c)
			sum += c
		}
		ds[2*b], ds[2*b+1] = d, d*float32(sum)
	}
	return q, ds
}
