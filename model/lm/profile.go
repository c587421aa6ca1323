package lm

import (
	"context"
	"fmt"

	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

// OpTime is the GPU time one kind of op took in a profiled pass.
type OpTime = vk.OpTime

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
		segs[i] = passSeg{segment: segment{seq: i, rowOff: i, T: 1, past: s.Lens[i]}}
		pos[i] = int32(s.Lens[i])
		if s.Lens[i] >= s.MaxT {
			return nil, fmt.Errorf("sequence %d is full", i)
		}
	}
	band := s.keyBand(segs) // as the recorded step plans it
	for i := range segs {
		segs[i].maxKV = band
	}
	if err := s.uploadRows(ids, pos); err != nil {
		return nil, err
	}
	var t *topkSet // the pair's draw on the GPU, as an image's steps end
	if n == 2 && m.D.Caps.Float64 && hi-lo > 1 {
		var err error
		if t, err = s.topkFor(hi-lo, 0); err != nil {
			return nil, err
		}
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
	if t != nil {
		ops.TopKParams(t.par.Mapped(), 3, min(5120, hi-lo-1), 0.5)
		o.TopKSelect(cmd, s.logits, c.VocabSize, lo, t.TopK)
		cmd.Barrier()
		cmd.Timestamp("topk_select_draw")
	}
	return submitTimed(ctx, cmd)
}

// ProfilePrefill runs a prefill of T random tokens in each of the first n
// sequences, in one pass, with a GPU timestamp after every op, and returns the
// time per kind of op, largest first. The session is reset before and after.
func (s *Session) ProfilePrefill(ctx context.Context, n, T int) ([]OpTime, error) {
	if n > s.Seqs || n*T > s.MaxRows || T > s.MaxT || T < 1 {
		return nil, fmt.Errorf("profiling a prefill of %d×%d tokens in a session of %d×%d positions and %d rows", n, T, s.Seqs, s.MaxT, s.MaxRows)
	}
	s.Reset()
	defer s.Reset()
	segs := make([]passSeg, n)
	ids, pos := make([]int32, n*T), make([]int32, n*T)
	for i := range segs {
		segs[i] = passSeg{segment: segment{seq: i, rowOff: i * T, T: T}, maxKV: T}
		for t := 0; t < T; t++ {
			ids[i*T+t] = int32((i*T + t) * 7919 % s.m.Cfg.VocabSize)
			pos[i*T+t] = int32(t)
		}
	}
	if err := s.uploadRows(ids, pos); err != nil {
		return nil, err
	}
	cmd := s.cmd
	cmd.Timestamp("start")
	s.recordLayersTimed(cmd, segs, n*T, false, cmd.Timestamp)
	return submitTimed(ctx, cmd)
}

// submitTimed runs cmd and sums its timestamps' intervals by label, largest first.
func submitTimed(ctx context.Context, cmd *vk.Cmd) ([]OpTime, error) {
	if err := cmd.Submit(ctx); err != nil {
		return nil, err
	}
	acc := map[string]*OpTime{}
	vk.AddTimings(acc, cmd.Timings())
	return vk.SortedTimes(acc), nil
}

// StepBytes is the memory a decode step of the first n sequences (one token
// each, at their current lengths, logits [lo, hi)) must read, by the op names
// of ProfileDecode: the weights of each projection over all layers, the head's
// rows, and the KV cache attention reads. Ops not listed read little.
func (s *Session) StepBytes(n, lo, hi int) map[string]int64 {
	m, c := s.m, s.m.Cfg
	if hi == 0 {
		hi = c.VocabSize
	}
	out := map[string]int64{"lm_head": m.head.Format.Bytes(hi-lo, c.HiddenSize)}
	for _, l := range m.layers {
		out["qkv_proj"] += l.qkv.Bytes()
		out["o_proj"] += l.o.Bytes()
		out["gate_up_proj"] += l.gateUp.Bytes()
		out["down_proj"] += l.down.Bytes()
	}
	for i := 0; i < n && i < len(s.Lens); i++ {
		out["attention"] += int64(c.Layers) * ops.KVBytes(m.KVQ8, 1, c.KVHeads, s.Lens[i]+1, c.HeadDim)
	}
	return out
}
