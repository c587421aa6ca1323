package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/emu35/emu35/vk"
)

// TopK is the device side of sampling a visual token from the classifier-free
// guidance of a pair's logits (cfg_hist.comp, topk_select.comp, topk_draw.comp):
// the same scores, threshold and survivors as model/gen's fused host sampler,
// and the same draw among them for the uniform the host passes, so one token
// id crosses to the host instead of two rows of logits.
type TopK struct {
	N int // scores: the columns [lo, lo+N) of the logits
	// Scores [N] f32, Hist [4097] u32, the survivors Surv (TopKSurvBytes: the
	// count, N indices and N values) and the draw's scratch W live on the device
	// (Hist is zero when made, and each run leaves it zero). Params holds s and
	// 1 − s as f64, k as u32 and the uniform r as f64 (TopKParams), written by
	// the host before each run. Out, which the host reads, receives the count
	// and the drawn survivor's index (ReadDraw).
	Scores, Hist, Surv, W, Params, Out vk.Range
	// Sel holds topk_select's threshold and NaN flag, then topk_compact's
	// count of survivors in each tile of scores.
	Sel vk.Range
}

// TopKParamBytes is the size of TopK.Params.
const TopKParamBytes = 32

// TopKOutBytes is the size of TopK.Out.
const TopKOutBytes = 8

// TopKSurvBytes is the size of TopK.Surv for n scores.
func TopKSurvBytes(n int) uint64 { return uint64(4 * (1 + 2*n)) }

// NewTopK allocates the device buffers of a TopK over n scores in a; params
// and out are the caller's (host-visible memory, usually).
func NewTopK(d *vk.Device, a *vk.Arena, n int, params, out vk.Range) (*TopK, error) {
	if params.Size < TopKParamBytes || out.Size < TopKOutBytes {
		return nil, fmt.Errorf("ops: top-k buffers of %d and %d bytes for %d scores", params.Size, out.Size, n)
	}
	al := &vk.Allocs{A: a}
	t := &TopK{N: n, Params: params, Out: out}
	t.Scores, t.Surv, t.W = al.F32("topk_scores", ceil(n, 4)*4), al.F32("topk_survivors", 1+2*n), al.F32("topk_weights", 2*(n+n/64+1))
	t.Sel = al.F32("topk_sel", 2+ceil(n, 8*topkTileWG))
	if al.Err != nil {
		return nil, al.Err
	}
	hist, err := Upload(d, a, "topk_hist", make([]byte, 4*4097))
	if err != nil {
		return nil, err
	}
	t.Hist = hist.All()
	return t, nil
}

// topkTileWG is the workgroup of topk_compact, which takes 8·topkTileWG
// scores a workgroup.
const topkTileWG = 256

// TopKParams encodes the guidance scale s, k and the draw's uniform r in
// [0, 1) for TopK.Params.
func TopKParams(dst []byte, s float64, k int, r float64) {
	binary.LittleEndian.PutUint64(dst[0:], math.Float64bits(s))
	binary.LittleEndian.PutUint64(dst[8:], math.Float64bits(1-s))
	binary.LittleEndian.PutUint32(dst[16:], uint32(k))
	binary.LittleEndian.PutUint64(dst[24:], math.Float64bits(r))
}

// TopKSelect records scores = s·logits[0, lo+i] + (1−s)·logits[1, lo+i] for
// i < t.N (logits [2, V]), the survivors of their top k into t.Surv, and the
// draw among them into t.Out. Barriers separate the passes; the caller's
// barrier or copy must follow.
func (o *Ops) TopKSelect(c *vk.Cmd, logits vk.Range, V, lo int, t *TopK) {
	if lo+t.N > V || logits.Size < uint64(4*(V+lo+t.N)) {
		panic(fmt.Sprintf("ops: TopKSelect of columns [%d, %d) of logits [2, %d]", lo, lo+t.N, V))
	}
	const wg = 256
	c.Dispatch(o.pipe("cfg_hist", wg), [3]uint32{uint32(ceil(t.N, 4*wg)), 1, 1},
		struct{ V, Lo, N uint32 }{uint32(V), uint32(lo), uint32(t.N)}, logits, t.Params, t.Scores, t.Hist)
	c.Barrier()
	c.Dispatch(o.pipe("topk_select", min(max(o.TopKWG, 32), o.D.Caps.MaxInvocations)), [3]uint32{1, 1, 1},
		struct{ N uint32 }{uint32(t.N)}, t.Scores, t.Params, t.Hist, t.Sel)
	c.Barrier()
	tiles, n := [3]uint32{uint32(ceil(t.N, 8*topkTileWG)), 1, 1}, struct{ N uint32 }{uint32(t.N)}
	c.Dispatch(o.pipe("topk_count", topkTileWG), tiles, n, t.Scores, t.Sel)
	c.Barrier()
	c.Dispatch(o.pipe("topk_compact", topkTileWG), tiles, n, t.Scores, t.Sel, t.Surv)
	c.Barrier()
	c.Dispatch(o.pipe("topk_draw", min(256, o.D.Caps.MaxInvocations)), [3]uint32{1, 1, 1},
		struct{ N uint32 }{uint32(t.N)}, t.Surv, t.Params, t.W, t.Out)
}

// EmbedDrawn records x[r, :] = table[j, :] for each row r set in the mask rows
// (r < 32), where j is the index drawn into out, an earlier TopK's Out
// (embed_drawn.comp). table [n, h] is the embedding rows of the ids that draw
// picks from, as f32, or as bf16 when bf16 (the memory may be the host's:
// a decode step reads two rows of it). A failed draw takes row 0. x [≥ rows, h].
func (o *Ops) EmbedDrawn(c *vk.Cmd, table vk.Range, bf16 bool, n, h int, out, x vk.Range, rows uint32) {
	esz := 4
	if bf16 {
		esz = 2
	}
	top := bits.Len32(rows) // the last row taken, plus one
	if rows == 0 || table.Size < uint64(n*h*esz) || out.Size < TopKOutBytes || x.Size < uint64(4*top*h) {
		panic(fmt.Sprintf("ops: EmbedDrawn of rows %b [%d] from a table [%d, %d] of %d bytes into %d", rows, h, n, h, table.Size, x.Size))
	}
	const wg = 256
	c.Dispatch(o.pipe("embed_drawn", wg), [3]uint32{uint32(ceil(h, wg)), uint32(top), 1},
		struct{ H, Rows, BF16, N uint32 }{uint32(h), rows, b2u(bf16), uint32(n)}, table, out, x)
}

// ReadDraw decodes TopK.Out: the drawn survivor's index among the N scores,
// and the number of survivors; ok is false when a score was NaN (then the host
// must sample from the logits).
func ReadDraw(out []byte) (j int, survivors int, ok bool) {
	cnt := binary.LittleEndian.Uint32(out)
	if cnt == math.MaxUint32 {
		return -1, 0, false
	}
	if cnt == 0 {
		return -1, 0, true
	}
	return int(binary.LittleEndian.Uint32(out[4:])), int(cnt), true
}

// ReadTopK decodes TopK.Surv (downloaded) for n scores: the survivors' indices (ascending)
// and values, appended to idx and val; ok is false when a score was NaN (then
// the host must sample from the logits).
func ReadTopK(out []byte, n int, idx []int32, val []float32) ([]int32, []float32, bool) {
	cnt := binary.LittleEndian.Uint32(out)
	if cnt == math.MaxUint32 {
		return idx, val, false
	}
	if int(cnt) > n {
		panic(fmt.Sprintf("ops: top-k output says %d survivors of %d", cnt, n))
	}
	i0, v0 := len(idx), len(val)
	idx, val = slices.Grow(idx, int(cnt))[:i0+int(cnt)], slices.Grow(val, int(cnt))[:v0+int(cnt)]
	for j := range int(cnt) {
		idx[i0+j] = int32(binary.LittleEndian.Uint32(out[4*(1+j):]))
		val[v0+j] = math.Float32frombits(binary.LittleEndian.Uint32(out[4*(1+n+j):]))
	}
	return idx, val, true
}
