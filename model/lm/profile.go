package lm

import (
	"context"
	"fmt"
	"sort"
)

// OpTime is the GPU time one kind of op took in a profiled step.
type OpTime struct {
	Op    string
	Count int
	NS    float64
}

// ProfileDecode runs one decode step of the first n sequences (one token each,
// logits [lo, hi)) with a GPU timestamp after every op and returns the time per
// kind of op, largest first. The sequences' lengths are not advanced.
func (s *Session) ProfileDecode(ctx context.Context, n, lo, hi int) ([]OpTime, error) {
	m, o, c := s.m, s.m.O, s.m.Cfg
	if n > maxVec || n > s.Seqs {
		return nil, fmt.Errorf("profiling %d sequences", n)
	}
	if hi == 0 {
		hi = c.VocabSize
	}
	segs := make([]passSeg, n)
	ids, pos := make([]int32, n), make([]int32, n)
	for i := range segs {
		segs[i] = passSeg{segment: segment{seq: i, rowOff: i, T: 1, past: s.Lens[i]}, maxKV: s.MaxT}
		pos[i] = int32(s.Lens[i])
		if s.Lens[i] >= s.MaxT {
			return nil, fmt.Errorf("sequence %d is full", i)
		}
	}
	if err := s.uploadRows(ids, pos); err != nil {
		return nil, err
	}
	cmd := s.cmd
	cmd.Timestamp("start")
	s.recordLayersTimed(cmd, segs, n, false, cmd.Timestamp)
	o.RMSNorm(cmd, s.x, m.norm, s.selNorm, n, c.HiddenSize, float32(c.RMSNormEps))
	cmd.Barrier()
	cmd.Timestamp("rmsnorm")
	s.recordHead(cmd, s.selNorm, n, lo, hi)
	cmd.Barrier()
	cmd.Timestamp("lm_head")
	if err := cmd.Submit(ctx); err != nil {
		return nil, err
	}
	agg := map[string]*OpTime{}
	for _, t := range cmd.Timings() {
		a := agg[t.Label]
		if a == nil {
			a = &OpTime{Op: t.Label}
			agg[t.Label] = a
		}
		a.Count++
		a.NS += t.NS
	}
	var out []OpTime
	for _, a := range agg {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NS > out[j].NS })
	return out, nil
}
