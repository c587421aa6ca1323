package lm

import (
	"context"
	"encoding/binary"
	"unsafe"

	"github.com/emu35/emu35/vk"
)

// replayable reports whether a pass is a decode step the recorded command buffer
// serves: one token for each of several distinct sequences, each wanting logits.
func (s *Session) replayable(req Request, segs []passSeg) bool {
	if len(segs) > maxVec || req.CaptureLayer0 || req.CaptureFinalNorm || req.Logits == LogitsNone {
		return false
	}
	for i, sg := range segs {
		if sg.T != 1 || sg.rowOff != i || len(sg.wantRows) != 1 {
			return false
		}
	}
	return true
}

// decode runs a decode step through the recorded command buffer: the step is
// recorded once per (sequences, logit range) and then only its inputs change.
// Attention splits are planned for the whole cache, so any length replays.
func (s *Session) decode(ctx context.Context, req Request, segs []passSeg, ids, pos []int32, res *Result, lo, hi int) error {
	m := s.m
	V := m.Cfg.VocabSize
	key := stepKey{n: len(segs), lo: lo, hi: hi}
	for i, sg := range segs {
		key.seqs[i] = sg.seq
	}
	step := s.steps[key]
	if step == nil {
		var err error
		if step, err = s.recordStep(segs, lo, hi); err != nil {
			return err
		}
		s.steps[key] = step
	}
	in := s.stepIn.Mapped()
	for i := range ids {
		binary.LittleEndian.PutUint32(in[4*i:], uint32(pos[i]))
	}
	H := m.Cfg.HiddenSize
	m.embed.rows(ids, unsafe.Slice((*float32)(unsafe.Pointer(&in[4*maxVec])), len(ids)*H))
	if err := step.Run(ctx); err != nil {
		return err
	}
	out := s.stepOut.Mapped()
	for i, sg := range segs {
		// One bulk copy of little-endian floats (every Vulkan host emu35 runs on
		// is little-endian, as the shaders' byte layouts already assume).
		row := make([]float32, hi-lo)
		copy(row, unsafe.Slice((*float32)(unsafe.Pointer(&out[4*(i*V+lo)])), hi-lo))
		res.Logits[sg.input] = append(res.Logits[sg.input], row)
	}
	return nil
}

// stepKey identifies a recorded decode step: its sequences and logit range.
type stepKey struct {
	seqs      [maxVec]int
	n, lo, hi int
}

// recordStep records the decode step for segs' sequences (one row each).
func (s *Session) recordStep(segs []passSeg, lo, hi int) (*vk.Cmd, error) {
	m, o, c := s.m, s.m.O, s.m.Cfg
	H, V := c.HiddenSize, c.VocabSize
	if s.hostArena == nil {
		s.hostArena = m.D.NewArena(vk.ReadbackMem)
		up := m.D.NewArena(vk.UploadMem)
		var err error
		s.upArena = up
		if s.stepIn, err = up.Alloc("step_in", uint64(4*maxVec*(1+H))); err != nil {
			return nil, err
		}
		if s.stepOut, err = s.hostArena.Alloc("step_out", uint64(4*maxVec*V)); err != nil {
			return nil, err
		}
	}
	cmd, err := m.D.NewReplay()
	if err != nil {
		return nil, err
	}
	n := len(segs)
	local := make([]passSeg, n)
	for i, sg := range segs {
		local[i] = sg
		local[i].maxKV = s.MaxT
	}
	cmd.Copy(s.pos.Slice(0, uint64(4*n)), s.stepIn.Slice(0, uint64(4*n)))
	cmd.Copy(s.x.Sub(0, uint64(4*n*H)), s.stepIn.Slice(uint64(4*maxVec), uint64(4*n*H)))
	cmd.Barrier()
	s.recordLayers(cmd, local, n, false)
	o.RMSNorm(cmd, s.x, m.norm, s.selNorm, n, H, float32(c.RMSNormEps))
	cmd.Barrier()
	s.recordHead(cmd, s.selNorm, n, lo, hi)
	cmd.Barrier()
	for i := 0; i < n; i++ {
		r := s.logits.Sub(uint64(4*(i*V+lo)), uint64(4*(hi-lo)))
		cmd.Copy(s.stepOut.Slice(uint64(4*(i*V+lo)), r.Size), r)
	}
	if err := cmd.Finish(); err != nil {
		cmd.Release()
		return nil, err
	}
	return cmd, nil
}
