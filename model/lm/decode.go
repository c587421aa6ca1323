package lm

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

// replayable reports whether a pass is a decode step the recorded command buffer
// serves: a few tokens (at most maxVec rows in all) for each of several
// distinct sequences, each wanting the logits of its last token only. (Two
// tokens a sequence are a sampled token and the forced one after it, fed in one
// pass: gen.Generate.)
func (s *Session) replayable(req Request, segs []passSeg) bool {
	if len(segs) > maxVec || req.CaptureLayer0 || req.CaptureFinalNorm || req.Logits == LogitsNone {
		return false
	}
	rows := 0
	for _, sg := range segs {
		if sg.rowOff != rows || len(sg.wantRows) != 1 || sg.wantRows[0] != sg.to-1 {
			return false
		}
		rows += sg.T
	}
	return rows <= maxVec
}

// decode runs a decode step through the recorded command buffer: the step is
// recorded once per (sequences, logit range, key band, parity) and then only
// its inputs change. Attention splits are planned for the band's keys, so any
// length within it replays.
func (s *Session) decode(ctx context.Context, req Request, segs []passSeg, ids, pos []int32, res *Result, lo, hi int) error {
	p, err := s.startStep(ctx, req, segs, ids, pos, lo, hi)
	if err != nil {
		return err
	}
	return p.finish(ctx, res)
}

// startStep writes a decode step's inputs into its parity's buffers and
// submits it. Rows whose id is Drawn take the previous step's draw on the GPU.
func (s *Session) startStep(ctx context.Context, req Request, segs []passSeg, ids, pos []int32, lo, hi int) (*Pending, error) {
	m := s.m
	t0 := time.Now()
	// The GPU selects the top k when asked, for the cond/uncond pair in order,
	// on devices with f64 (the scores' arithmetic is the host sampler's).
	sel := req.Select != nil && len(segs) == 2 && segs[0].input == 0 && segs[1].input == 1 && m.D.Caps.Float64
	key := stepKey{n: len(segs), lo: lo, hi: hi, sel: sel, band: s.keyBand(segs)}
	for i, sg := range segs {
		key.seqs[i], key.ts[i] = sg.seq, sg.T
	}
	for i, id := range ids {
		if id == Drawn {
			key.chain |= 1 << i
		}
	}
	if key.chain != 0 && !s.chainsFrom(lo, hi) {
		return nil, fmt.Errorf("lm: a Drawn token without the previous step's draw")
	}
	// The parity: the other one than the step in flight or the draw it reads
	// (a step waited for at once, as Forward's, always takes 0, so that only
	// chained steps are recorded twice).
	if n := len(s.inflight); n > 0 {
		key.parity = 1 - s.inflight[n-1].parity
	} else if key.chain != 0 {
		key.parity = 1 - s.lastDraw.parity
	}
	par := key.parity
	if key.chain != 0 && s.chainTable != m.draws {
		if s.chainTable != nil { // (another session replaced the model's table)
			if len(s.inflight) > 0 {
				return nil, fmt.Errorf("lm: the draw table was replaced while steps were in flight")
			}
			s.dropChained()
		}
		s.chainTable = m.draws
	}
	step := s.steps[key]
	if step == nil {
		var err error
		if step, err = s.recordStep(segs, key); err != nil {
			return nil, err
		}
		s.steps[key] = step
	}
	if sel {
		ops.TopKParams(s.topks[[2]int{hi - lo, par}].par.Mapped(), req.Select.CFG, req.Select.TopK, req.Select.R)
	}
	in := s.stepIn[par].Mapped()
	H := m.Cfg.HiddenSize
	for i, id := range ids {
		binary.LittleEndian.PutUint32(in[4*i:], uint32(pos[i]))
		if id != Drawn { // (the step fetches a drawn row itself)
			m.embed.rows(ids[i:i+1], unsafe.Slice((*float32)(unsafe.Pointer(&in[4*(maxVec+i*H)])), H))
		}
	}
	s.stepGPU.Before += time.Since(t0)
	if err := step.Start(ctx); err != nil {
		return nil, err
	}
	s.lastDraw = nil
	if sel {
		s.lastDraw = &drawRef{lo: lo, hi: hi, parity: par}
	}
	p := &Pending{s: s, step: step, req: req, segs: segs, lo: lo, hi: hi, sel: sel, parity: par}
	s.inflight = append(s.inflight, p)
	return p, nil
}

// finish waits for the step and reads its result into res: the draw, or the
// logits (which only the latest started step still has).
func (p *Pending) finish(ctx context.Context, res *Result) error {
	s := p.s
	if len(s.inflight) == 0 || s.inflight[0] != p {
		return fmt.Errorf("lm: decode steps are waited for once each, in the order they were started")
	}
	err := p.step.Wait(ctx)
	s.inflight = s.inflight[1:]
	if err != nil {
		return err
	}
	t1 := time.Now()
	defer func() { s.stepGPU.After += time.Since(t1) }()
	sub, wait := p.step.RunTimes()
	s.stepGPU.Submit += sub
	s.stepGPU.Wait += wait
	if t := p.step.Timings(); len(t) == 1 {
		s.stepGPU.Steps++
		s.stepGPU.Last = time.Duration(t[0].NS)
		s.stepGPU.Total += s.stepGPU.Last
	}
	later := len(s.inflight) > 0 // a step started after this one has run over its logits
	lo, hi := p.lo, p.hi
	if p.sel {
		t := s.topks[[2]int{hi - lo, p.parity}]
		drawn, _, ok := ops.ReadDraw(t.out.Mapped())
		if later && (!ok || drawn < 0) {
			return ErrDrawFailed
		}
		if ok {
			res.Top = &Top{Drawn: drawn}
			if p.req.Select.Survivors {
				raw := make([]byte, ops.TopKSurvBytes(hi-lo))
				if err := s.m.D.Download(t.Surv, raw); err != nil {
					return err
				}
				res.Top.Idx, res.Top.Val, _ = ops.ReadTopK(raw, hi-lo, nil, nil)
			}
			return nil
		}
		// A NaN score: the logits after all, for the host to sample from.
		if err := s.copyLogits(ctx, len(p.segs), lo, hi); err != nil {
			return err
		}
	}
	V := s.m.Cfg.VocabSize
	out := s.stepOut.Mapped()
	for i, sg := range p.segs {
		// One bulk copy of little-endian floats (every Vulkan host emu35 runs on
		// is little-endian, as the shaders' byte layouts already assume).
		row := make([]float32, hi-lo)
		copy(row, unsafe.Slice((*float32)(unsafe.Pointer(&out[4*(i*V+lo)])), hi-lo))
		res.Logits[sg.input] = append(res.Logits[sg.input], row)
	}
	return nil
}

// StepTime is the GPU time of the replayed decode steps, from timestamps at
// their start and end: what the host's share of a step's wall clock is measured
// against. The host's time in them is split into its phases, summed over the
// steps: Before the submission (the inputs: positions, embedding rows),
// vkQueueSubmit, the Wait for the GPU, and After it (the survivors or logits
// read back).
type StepTime struct {
	Steps                       int
	Last, Total                 time.Duration
	Before, Submit, Wait, After time.Duration
}

// StepGPU reports the GPU time of the decode steps replayed so far.
func (s *Session) StepGPU() StepTime { return s.stepGPU }

// stepKey identifies a recorded decode step: its sequences and their tokens,
// logit range, whether it ends in top-k selection, the keys its attention
// plans for, its parity (which inputs and top-k buffers it uses), and the
// rows that take the previous step's draw (a bit each).
type stepKey struct {
	seqs, ts                [maxVec]int
	n, lo, hi, band, parity int
	sel                     bool
	chain                   uint32
}

// minBand is the fewest keys a recorded step's attention plans for.
const minBand = 1024

// keyBand is the keys a decode step over segs plans its attention for: the
// least of 1024, 2048, 4096... (or the whole cache) that holds their
// sequences after the step. A step recorded for a band replays for every length
// in it; short contexts get fewer key splits, and single-query attention
// spreads a band's fewer splits over more workgroups (ops.Ops.DecodeHeads).
func (s *Session) keyBand(segs []passSeg) int {
	need := 0
	for _, sg := range segs {
		need = max(need, sg.past+sg.T)
	}
	for _, b := range s.KeyBands() {
		if b >= need {
			return b
		}
	}
	return s.MaxT
}

// KeyBands lists the key bands decode steps are recorded for, in order: 1024,
// 2048, 4096... up to the whole cache (keyBand picks the least that holds a
// step's sequences).
func (s *Session) KeyBands() []int {
	var bs []int
	for b := s.minBand; b < s.MaxT; b *= 2 {
		bs = append(bs, b)
	}
	return append(bs, s.MaxT)
}

// hostBuffers makes the host-visible buffers of decode steps, on first use:
// the inputs of both parities and the logits' copy.
func (s *Session) hostBuffers() error {
	if s.hostArena != nil {
		return nil
	}
	m, H, V := s.m, s.m.Cfg.HiddenSize, s.m.Cfg.VocabSize
	s.hostArena, s.upArena = m.D.NewArena(vk.ReadbackMem), m.D.NewArena(vk.UploadMem)
	var err error
	for i := range s.stepIn {
		if s.stepIn[i], err = s.upArena.Alloc("step_in", uint64(4*maxVec*(1+H))); err != nil {
			return err
		}
	}
	s.stepOut, err = s.hostArena.Alloc("step_out", uint64(4*maxVec*V))
	return err
}

// topkFor is the top-k selection's buffers for n scores and a parity, made on
// first use.
func (s *Session) topkFor(n, parity int) (*topkSet, error) {
	if t := s.topks[[2]int{n, parity}]; t != nil {
		return t, nil
	}
	if err := s.hostBuffers(); err != nil {
		return nil, err
	}
	t := &topkSet{}
	var err error
	if t.par, err = s.upArena.Alloc("topk_params", ops.TopKParamBytes); err != nil {
		return nil, err
	}
	if t.out, err = s.hostArena.Alloc("topk_out", ops.TopKOutBytes); err != nil {
		return nil, err
	}
	if t.TopK, err = ops.NewTopK(s.m.D, s.arena, n, t.par.All(), t.out.All()); err != nil {
		return nil, err
	}
	if s.topks == nil {
		s.topks = map[[2]int]*topkSet{}
	}
	s.topks[[2]int{n, parity}] = t
	return t, nil
}

// copyLogits copies the logits of the last step's n rows for ids [lo, hi) into stepOut.
func (s *Session) copyLogits(ctx context.Context, n, lo, hi int) error {
	cmd, err := s.m.D.NewCmd()
	if err != nil {
		return err
	}
	defer cmd.Release()
	s.recordLogitsOut(cmd, n, lo, hi)
	return cmd.Submit(ctx)
}

func (s *Session) recordLogitsOut(cmd *vk.Cmd, n, lo, hi int) {
	V := s.m.Cfg.VocabSize
	for i := 0; i < n; i++ {
		r := s.logits.Sub(uint64(4*(i*V+lo)), uint64(4*(hi-lo)))
		cmd.Copy(s.stepOut.Slice(uint64(4*(i*V+lo)), r.Size), r)
	}
}

// recordStep records the decode step k for segs' sequences (their rows, one or
// a few tokens each) and up to k.band keys; with k.sel it ends in top-k
// selection over the pair's logits instead of copying them out. Logits are
// computed for each sequence's last row only.
func (s *Session) recordStep(segs []passSeg, k stepKey) (*vk.Cmd, error) {
	m, o, c := s.m, s.m.O, s.m.Cfg
	H, V := c.HiddenSize, c.VocabSize
	lo, hi, sel, band, par := k.lo, k.hi, k.sel, k.band, k.parity
	if err := s.hostBuffers(); err != nil {
		return nil, err
	}
	cmd, err := m.D.NewReplay()
	if err != nil {
		return nil, err
	}
	n := len(segs)
	// A row each: the single-query attention kernel serves every row, a
	// sequence's second token seeing the first's key through its position.
	var local []passSeg
	for _, sg := range segs {
		for t := 0; t < sg.T; t++ {
			r := sg
			r.rowOff, r.T, r.past, r.maxKV = sg.rowOff+t, 1, sg.past+t, band
			local = append(local, r)
		}
	}
	M := len(local)
	cmd.Timestamp("begin") // the step's GPU time (StepGPU)
	cmd.Barrier()          // after the step started before it
	in := s.stepIn[par]
	cmd.Copy(s.pos.Slice(0, uint64(4*M)), in.Slice(0, uint64(4*M)))
	cmd.Copy(s.x.Sub(0, uint64(4*M*H)), in.Slice(uint64(4*maxVec), uint64(4*M*H)))
	cmd.Barrier()
	if k.chain != 0 { // the rows of the previous step's draw, over the copied ones
		prev, err := s.topkFor(hi-lo, 1-par)
		if err != nil {
			cmd.Release()
			return nil, err
		}
		t := m.draws
		o.EmbedDrawn(cmd, t.buf.All(), t.bf16, t.hi-t.lo, H, prev.out.All(), s.x, k.chain)
		cmd.Barrier()
	}
	s.recordLayers(cmd, local, M, false)
	last := s.x // each sequence's last row, in order
	if M > n {
		last = s.sel
		for i, sg := range segs {
			cmd.Copy(s.sel.Sub(uint64(4*i*H), uint64(4*H)), s.x.Sub(uint64(4*(sg.rowOff+sg.T-1)*H), uint64(4*H)))
		}
		cmd.Barrier()
	}
	o.RMSNorm(cmd, last, m.norm, s.selNorm, n, H, float32(c.RMSNormEps))
	cmd.Barrier()
	s.recordHead(cmd, s.selNorm, n, lo, hi)
	cmd.Barrier()
	if sel {
		t, err := s.topkFor(hi-lo, par)
		if err != nil {
			cmd.Release()
			return nil, err
		}
		o.TopKSelect(cmd, s.logits, V, lo, t.TopK)
		cmd.Barrier()
	} else {
		s.recordLogitsOut(cmd, n, lo, hi)
	}
	cmd.Timestamp("step")
	if err := cmd.Finish(); err != nil {
		cmd.Release()
		return nil, err
	}
	return cmd, nil
}
