package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/emu35/emu35/vk"
)

// TopK is the device side of sampling a visual token from the classifier-free
// guidance of a pair's logits (cfg_hist.comp, topk_select.comp): the same
// scores, threshold and survivors as model/gen's fused host sampler, so only
// the survivors (a few thousand) cross to the host instead of two rows of
// logits, and the host's work is the final draw.
type TopK struct {
	N int // scores: the columns [lo, lo+N) of the logits
	// Scores [N] f32 and Hist [4097] u32 live on the device (Hist is zero when
	// made, and each run leaves it zero). Params holds s and 1 − s as f64 and
	// k as u32 (TopKParams), written by the host before each run. Out, which the
	// host reads, receives the count, N indices and N values (TopKOutBytes).
	Scores, Hist, Params, Out vk.Range
}

// TopKParamBytes is the size of TopK.Params.
const TopKParamBytes = 20

// TopKOutBytes is the size of TopK.Out for n scores.
func TopKOutBytes(n int) uint64 { return uint64(4 * (1 + 2*n)) }

// NewTopK allocates the device buffers of a TopK over n scores in a; params
// and out are the caller's (host-visible memory, usually).
func NewTopK(d *vk.Device, a *vk.Arena, n int, params, out vk.Range) (*TopK, error) {
	if params.Size < TopKParamBytes || out.Size < TopKOutBytes(n) {
		return nil, fmt.Errorf("ops: top-k buffers of %d and %d bytes for %d scores", params.Size, out.Size, n)
	}
	scores, err := a.Alloc("topk_scores", uint64(4*n))
	if err != nil {
		return nil, err
	}
	hist, err := Upload(d, a, "topk_hist", make([]byte, 4*4097))
	if err != nil {
		return nil, err
	}
	return &TopK{N: n, Scores: scores.All(), Hist: hist.All(), Params: params, Out: out}, nil
}

// TopKParams encodes the guidance scale s and k for TopK.Params.
func TopKParams(dst []byte, s float64, k int) {
	binary.LittleEndian.PutUint64(dst[0:], math.Float64bits(s))
	binary.LittleEndian.PutUint64(dst[8:], math.Float64bits(1-s))
	binary.LittleEndian.PutUint32(dst[16:], uint32(k))
}

// TopKSelect records scores = s·logits[0, lo+i] + (1−s)·logits[1, lo+i] for
// i < t.N (logits [2, V]), then the survivors of their top k into t.Out. A
// barrier separates the passes; the caller's barrier or copy must follow.
func (o *Ops) TopKSelect(c *vk.Cmd, logits vk.Range, V, lo int, t *TopK) {
	if lo+t.N > V || logits.Size < uint64(4*(V+lo+t.N)) {
		panic(fmt.Sprintf("ops: TopKSelect of columns [%d, %d) of logits [2, %d]", lo, lo+t.N, V))
	}
	const wg = 256
	c.Dispatch(o.pipe("cfg_hist", wg), [3]uint32{uint32(ceil(t.N, 4*wg)), 1, 1},
		struct{ V, Lo, N uint32 }{uint32(V), uint32(lo), uint32(t.N)}, logits, t.Params, t.Scores, t.Hist)
	c.Barrier()
	c.Dispatch(o.pipe("topk_select", min(512, o.D.Caps.MaxInvocations)), [3]uint32{1, 1, 1},
		struct{ N uint32 }{uint32(t.N)}, t.Scores, t.Params, t.Hist, t.Out)
}

// ReadTopK decodes TopK.Out for n scores: the survivors' indices (ascending)
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
