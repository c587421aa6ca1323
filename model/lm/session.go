package lm

import (
	"context"
	"fmt"
	"math"

	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

// Session is the state of up to Seqs sequences: their KV caches and lengths,
// and the scratch buffers of a forward pass of up to MaxRows tokens.
type Session struct {
	m       *Model
	Seqs    int
	MaxT    int // positions per sequence
	MaxRows int // tokens per forward chunk
	Lens    []int

	arena *vk.Arena
	cmd   *vk.Cmd
	kv    []ops.KVCache

	pos          *vk.Buffer // int32 [MaxRows]
	x, h, tmp    vk.Range   // [MaxRows, H]
	qkv          vk.Range   // [MaxRows, (nq+2nkv)·d]
	attn         vk.Range   // [MaxRows, nq·d]
	gu           vk.Range   // [MaxRows, 2I]
	act          vk.Range   // [MaxRows, I]
	qH, qA, qI   *ops.QAct  // q8_1 activations for ≤ maxVec columns
	normShares   vk.Range   // the decode steps' norms' sums of squares (ops.NormSharesBytes)
	scratch      ops.AttnScratch
	sel, selNorm vk.Range // [MaxRows, H]: rows whose logits are wanted
	logits       vk.Range // [logitRows, V]
	layer0       vk.Range // [MaxRows, H]: the capture after layer 0
	touch        vk.Range // ops.Touch's scratch

	// The recorded decode steps (a token or two for each of their sequences),
	// one per stepKey, replayed with positions and embedding rows written to
	// stepIn.
	steps   map[stepKey]*vk.Cmd
	stepGPU StepTime // GPU time of the replayed decode steps (their timestamps)
	minBand int      // the least key band (keyBand): minBand, or less in tests
	// stepIn, by parity: host-visible positions int32 [maxVec], then rows f32
	// [maxVec, H]. Steps in flight together have different parities, each
	// with its own inputs and top-k buffers (Start).
	stepIn    [2]*vk.Buffer
	stepOut   *vk.Buffer // host-visible: logits [maxVec, V]
	hostArena *vk.Arena
	upArena   *vk.Arena
	// Top-k selection on the GPU (Request.Select), by number of scores and parity.
	topks map[[2]int]*topkSet
	// Chained steps (chain.go): the steps started and not yet waited for,
	// oldest first; the last started step's draw; the drawable rows' table.
	inflight   []*Pending
	lastDraw   *drawRef
	chainTable *drawTable // the model's table the recorded chained steps read
}

// topkSet is a TopK's buffers: params and survivors in host-visible memory,
// the scores and histogram in the session's.
type topkSet struct {
	*ops.TopK
	par, out *vk.Buffer
}

// logitRows is how many rows' logits one head pass computes.
const logitRows = 64

// maxVec is the most rows a forward runs as mat-vecs (the CFG pair is 2).
const maxVec = 4

// NewSession allocates a session for seqs sequences of up to maxT tokens each.
func (m *Model) NewSession(seqs, maxT, maxRows int) (*Session, error) {
	c := m.Cfg
	if seqs < 1 || maxT < 1 || maxRows < 1 {
		return nil, fmt.Errorf("session of %d sequences × %d positions, %d rows a pass", seqs, maxT, maxRows)
	}
	s := &Session{m: m, Seqs: seqs, MaxT: maxT, MaxRows: maxRows, Lens: make([]int, seqs), arena: m.D.NewArena(vk.DeviceMem),
		steps: map[stepKey]*vk.Cmd{}, minBand: minBand}
	H, d, I, V := c.HiddenSize, c.HeadDim, c.IntermediateSize, c.VocabSize
	W := (c.Heads + 2*c.KVHeads) * d
	al := &vk.Allocs{A: s.arena}
	f32 := al.F32
	s.x, s.h, s.tmp = f32("x", maxRows*H), f32("h", maxRows*H), f32("tmp", maxRows*H)
	s.qkv, s.attn = f32("qkv", maxRows*W), f32("attn", maxRows*c.Heads*d)
	s.gu, s.act = f32("gu", maxRows*2*I), f32("act", maxRows*I)
	s.sel, s.selNorm = f32("sel", maxRows*H), f32("sel_norm", maxRows*H)
	s.logits = f32("logits", min(maxRows, logitRows)*V)
	s.layer0 = f32("layer0", maxRows*H)
	s.touch = f32("touch", 8)
	s.scratch = ops.NewAttnScratch(al, maxT, maxRows, maxVec, c.Heads, d) // split attention's partial results
	err := al.Err
	if err == nil {
		s.pos, err = s.arena.Alloc("pos", uint64(4*maxRows))
	}
	if err == nil && m.Format.Blocked() {
		s.qH, err = ops.NewQAct(s.arena, "qh", maxVec, H)
		if err == nil {
			s.qA, err = ops.NewQAct(s.arena, "qa", maxVec, c.Heads*d)
		}
		if err == nil {
			s.qI, err = ops.NewQAct(s.arena, "qi", maxVec, I)
		}
	}
	if err == nil {
		var b *vk.Buffer
		if b, err = s.arena.Alloc("norm_shares", ops.NormSharesBytes(maxVec, H)); err == nil {
			s.normShares = b.All()
		}
	}
	for l := 0; l < c.Layers && err == nil; l++ {
		kv := ops.KVCache{Seqs: seqs, NKV: c.KVHeads, MaxT: maxT, D: d, Q8: m.KVQ8}
		vectors := seqs * c.KVHeads * maxT
		if m.KVQ8 {
			kv.K, kv.V = f32(fmt.Sprintf("k%d", l), int(ops.KVBytesK(seqs, c.KVHeads, maxT, d)/4)), f32(fmt.Sprintf("v%d", l), vectors*d/4)
			kv.KS, kv.VS = f32(fmt.Sprintf("k%d_scale", l), vectors), f32(fmt.Sprintf("v%d_scale", l), vectors)
		} else {
			kv.K, kv.V = f32(fmt.Sprintf("k%d", l), vectors*d/2), f32(fmt.Sprintf("v%d", l), vectors*d/2)
		}
		s.kv = append(s.kv, kv)
	}
	if err == nil {
		s.cmd, err = m.D.NewCmd()
	}
	if err != nil {
		s.Close()
		kv := float64(int64(c.Layers)*ops.KVBytes(m.KVQ8, seqs, c.KVHeads, maxT, d)) / (1 << 30)
		hint := "lower --max-tokens, pick a smaller --weights format or use --kv q8"
		if m.KVQ8 {
			hint = "lower --max-tokens or pick a smaller --weights format"
		}
		return nil, fmt.Errorf("allocating a session (%d sequences × %d positions, %.1f GiB of KV cache): %w; %s", seqs, maxT, kv, err, hint)
	}
	return s, nil
}

// Bytes is the device memory the session holds.
func (s *Session) Bytes() uint64 { return s.arena.Reserved() }

// Model is the model the session runs.
func (s *Session) Model() *Model { return s.m }

// Close frees the session; it may be called again.
func (s *Session) Close() {
	s.settle()
	if s.cmd != nil {
		s.cmd.Release()
		s.cmd = nil
	}
	for k, st := range s.steps {
		st.Release()
		delete(s.steps, k)
	}
	if s.hostArena != nil {
		s.hostArena.Free()
		s.upArena.Free()
		s.hostArena, s.upArena = nil, nil
	}
	s.topks = nil
	s.arena.Free()
}

// Reset forgets every sequence's tokens.
func (s *Session) Reset() {
	s.settle()
	s.lastDraw = nil
	for i := range s.Lens {
		s.Lens[i] = 0
	}
}

// Input is tokens appended to one sequence.
type Input struct {
	Seq    int
	Tokens []int32
}

// Request is one forward pass over several sequences' new tokens.
type Request struct {
	Inputs []Input
	// Logits: for each input, LogitsAll gives a row per token, LogitsLast one
	// row for its last token, LogitsNone none (e.g. a forced token).
	Logits LogitsMode
	// Lo, Hi restrict logits to token ids [Lo, Hi) (Hi == 0: the whole vocabulary).
	Lo, Hi int
	// CaptureLayer0 and CaptureFinalNorm return the residual stream after layer 0
	// and the final norm's output for every row (single-chunk requests only).
	CaptureLayer0, CaptureFinalNorm bool
	// Select, for two inputs, asks for Result.Top instead of logits where the
	// pass is a recorded decode step (elsewhere logits come as usual).
	Select *Select
}

// Select is top-k selection on the GPU over the guided scores
// s·logits(input 0) + (1−s)·logits(input 1) of ids [Lo, Hi) (ops.TopK), and the
// draw among the survivors for the uniform R in [0, 1) (cpu.Draw's rule).
type Select struct {
	CFG  float64
	TopK int
	R    float64
	// Survivors asks for the survivors too (a download of theirs; for checks).
	Survivors bool
}

// Top is what Select returns: the drawn id − Lo (−1 when nothing survived),
// and with Select.Survivors the scores at or above the k-th largest (but
// −inf), with their indices (ids − Lo) in ascending order.
type Top struct {
	Drawn int
	Idx   []int32
	Val   []float32
}

// LogitsMode says which rows get logits.
type LogitsMode int

const (
	LogitsLast LogitsMode = iota
	LogitsAll
	LogitsNone
)

// Result holds the requested outputs.
type Result struct {
	// Logits [input][row] → values for ids [Lo, Hi).
	Logits    [][][]float32
	Layer0    [][]float32 // [row][H]
	FinalNorm [][]float32
	Lo, Hi    int
	Top       *Top // for Select, when the GPU selected (then there are no logits)
}

type segment struct {
	seq, rowOff, T, past int
}

// Forward appends each input's tokens to its sequence and returns the logits asked for.
func (s *Session) Forward(ctx context.Context, req Request) (*Result, error) {
	if len(s.inflight) > 0 {
		return nil, fmt.Errorf("lm: Forward while a started step is not waited for")
	}
	lo, hi, err := s.check(req, false)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, in := range req.Inputs {
		total += len(in.Tokens)
	}
	if (req.CaptureLayer0 || req.CaptureFinalNorm) && total > s.MaxRows {
		return nil, fmt.Errorf("captures need the request to fit one pass of %d rows", s.MaxRows)
	}
	res := &Result{Lo: lo, Hi: hi, Logits: make([][][]float32, len(req.Inputs))}
	// Walk the inputs in chunks of at most MaxRows rows.
	type piece struct {
		input, from, to int
	}
	var chunk []piece
	rows := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := s.pass(ctx, req, chunk2segs(s, req, chunk, func(p piece) (int, int, int) { return p.input, p.from, p.to }), res, lo, hi)
		chunk, rows = nil, 0
		return err
	}
	for i, in := range req.Inputs {
		for from := 0; from < len(in.Tokens); {
			n := min(len(in.Tokens)-from, s.MaxRows-rows)
			chunk = append(chunk, piece{i, from, from + n})
			rows += n
			from += n
			if rows == s.MaxRows {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return res, nil
}

// check validates req's sequences, token ids (Drawn among them where drawn
// allows) and logit range, and returns the range.
func (s *Session) check(req Request, drawn bool) (lo, hi int, err error) {
	c := s.m.Cfg
	lo, hi = req.Lo, req.Hi
	if hi == 0 {
		hi = c.VocabSize
	}
	if lo < 0 || hi > c.VocabSize || lo >= hi {
		return 0, 0, fmt.Errorf("logit range [%d, %d) outside the vocabulary of %d", lo, hi, c.VocabSize)
	}
	if sel := req.Select; sel != nil && (len(req.Inputs) != 2 || sel.TopK <= 0 || sel.TopK >= hi-lo) {
		return 0, 0, fmt.Errorf("selection of the top %d of %d ids needs 0 < k < %d and two inputs, not %d", sel.TopK, hi-lo, hi-lo, len(req.Inputs))
	}
	seen := map[int]bool{}
	for _, in := range req.Inputs {
		if in.Seq < 0 || in.Seq >= s.Seqs || seen[in.Seq] {
			return 0, 0, fmt.Errorf("input for sequence %d: the session has %d sequences and each may appear once", in.Seq, s.Seqs)
		}
		seen[in.Seq] = true
		if s.Lens[in.Seq]+len(in.Tokens) > s.MaxT {
			return 0, 0, fmt.Errorf("sequence %d would reach %d tokens; the session holds %d", in.Seq, s.Lens[in.Seq]+len(in.Tokens), s.MaxT)
		}
		for i, id := range in.Tokens {
			if (id < 0 || int(id) >= c.VocabSize) && !(drawn && id == Drawn) {
				return 0, 0, fmt.Errorf("token %d of sequence %d is id %d, outside the vocabulary [0, %d)", i, in.Seq, id, c.VocabSize)
			}
		}
	}
	return lo, hi, nil
}

// settle waits for the started steps nobody waited for (their results are
// dropped).
func (s *Session) settle() {
	for len(s.inflight) > 0 {
		p := s.inflight[0]
		p.step.Wait(context.Background())
		s.inflight = s.inflight[1:]
	}
}

// piece of an input inside one pass.
type passSeg struct {
	segment
	input, from, to int
	wantRows        []int // token indices within the input whose logits are wanted
	maxKV           int   // bound on the keys its attention plans for
}

func chunk2segs[P any](s *Session, req Request, ps []P, get func(P) (int, int, int)) []passSeg {
	var out []passSeg
	row := 0
	for _, p := range ps {
		i, from, to := get(p)
		in := req.Inputs[i]
		sg := passSeg{segment: segment{seq: in.Seq, rowOff: row, T: to - from, past: s.Lens[in.Seq]}, input: i, from: from, to: to}
		for t := from; t < to; t++ {
			if req.Logits == LogitsAll || (req.Logits == LogitsLast && t == len(in.Tokens)-1) {
				sg.wantRows = append(sg.wantRows, t)
			}
		}
		out = append(out, sg)
		row += to - from
		s.Lens[in.Seq] += to - from // positions advance as the chunk is planned
	}
	return out
}

// pass runs one forward over the rows of segs (at most MaxRows).
func (s *Session) pass(ctx context.Context, req Request, segs []passSeg, res *Result, lo, hi int) error {
	m, o, c, cmd := s.m, s.m.O, s.m.Cfg, s.cmd
	H := c.HiddenSize
	ids, pos := rowsOf(req, segs)
	M := len(ids)
	// A single token per sequence with logits for each: the recorded decode step.
	if s.replayable(req, segs) {
		return s.decode(ctx, req, segs, ids, pos, res, lo, hi)
	}
	s.lastDraw = nil // (a step after this pass has no draw to feed)
	if err := s.uploadRows(ids, pos); err != nil {
		return err
	}
	for i, sg := range segs {
		segs[i].maxKV = sg.past + sg.T
	}
	s.recordLayers(cmd, segs, M, req.CaptureLayer0)
	// The rows whose logits are wanted, gathered and normalised.
	var want [][2]int // (input, token index)
	nsel := 0
	for _, sg := range segs {
		for _, t := range sg.wantRows {
			cmd.Copy(s.sel.Sub(uint64(4*nsel*H), uint64(4*H)), s.x.Sub(uint64(4*(sg.rowOff+t-sg.from)*H), uint64(4*H)))
			want = append(want, [2]int{sg.input, t})
			nsel++
		}
	}
	if req.CaptureFinalNorm {
		o.RMSNorm(cmd, s.x, m.norm, s.h, M, H, float32(c.RMSNormEps))
	}
	cmd.Barrier()
	if nsel > 0 {
		o.RMSNorm(cmd, s.sel, m.norm, s.selNorm, nsel, H, float32(c.RMSNormEps))
		cmd.Barrier()
	}
	if err := cmd.Submit(ctx); err != nil {
		return err
	}
	for g := 0; g < nsel; g += logitRows {
		n := min(logitRows, nsel-g)
		s.recordHead(cmd, s.selNorm.Sub(uint64(4*g*H), uint64(4*n*H)), n, lo, hi)
		if err := cmd.Submit(ctx); err != nil {
			return err
		}
		for i, w := range want[g : g+n] {
			row, err := ops.DownloadF32(m.D, s.logits.Sub(uint64(4*(i*c.VocabSize+lo)), uint64(4*(hi-lo))), hi-lo)
			if err != nil {
				return err
			}
			res.Logits[w[0]] = append(res.Logits[w[0]], row)
		}
	}
	if req.CaptureLayer0 {
		l0, err := ops.DownloadF32(m.D, s.layer0, M*H)
		if err != nil {
			return err
		}
		res.Layer0 = split(l0, H)
	}
	if req.CaptureFinalNorm {
		fn, err := ops.DownloadF32(m.D, s.h, M*H)
		if err != nil {
			return err
		}
		res.FinalNorm = split(fn, H)
	}
	return nil
}

// rowsOf lists the pass's token ids and positions, row by row.
func rowsOf(req Request, segs []passSeg) (ids, pos []int32) {
	for _, sg := range segs {
		ids = append(ids, req.Inputs[sg.input].Tokens[sg.from:sg.to]...)
		for t := 0; t < sg.T; t++ {
			pos = append(pos, int32(sg.past+t))
		}
	}
	return ids, pos
}

// uploadRows writes the embedding rows of ids into the residual stream s.x and
// their positions into s.pos.
func (s *Session) uploadRows(ids, pos []int32) error {
	H := s.m.Cfg.HiddenSize
	x := make([]float32, len(ids)*H)
	embedRowsPar(s.m.embed, ids, x)
	if err := s.m.D.Upload(s.x.Sub(0, uint64(4*len(x))), ops.F32View(x)); err != nil {
		return err
	}
	return s.m.D.Upload(s.pos.Slice(0, uint64(4*len(pos))), ops.I32Bytes(pos))
}

// recordLayers records every decoder layer for the M rows of segs (embedding
// rows already in s.x, positions in s.pos); the residual stream ends in s.x.
func (s *Session) recordLayers(cmd *vk.Cmd, segs []passSeg, M int, captureL0 bool) {
	s.recordLayersTimed(cmd, segs, M, captureL0, func(string) {})
}

// recordLayersTimed is recordLayers calling mark(op) after each op (profiling
// records a GPU timestamp there).
func (s *Session) recordLayersTimed(cmd *vk.Cmd, segs []passSeg, M int, captureL0 bool, mark func(string)) {
	m, o, c := s.m, s.m.O, s.m.Cfg
	H, d, I := c.HiddenSize, c.HeadDim, c.IntermediateSize
	nq, nkv := c.Heads, c.KVHeads
	W := (nq + 2*nkv) * d
	eps := float32(c.RMSNormEps)
	vec := M <= maxVec
	// fused: decode steps with block weights normalise straight into q8_1.
	fused := vec && m.Format.Blocked()
	// f16: passes of many rows hand their matrix products f16 activations.
	f16 := !vec && m.F16Act
	// Decode steps' norms leave x·w undivided by the RMS (rms says by what),
	// and the product reading them divides (ops.RMS).
	var rms *ops.RMS
	// product records y = act · wᵀ for the M rows (in decode steps with add,
	// y += act · wᵀ); normed says act is the last norm's output. Decode steps
	// with block weights read q, which the norm, the attention or SwiGLU wrote.
	// actOf is the M rows of act (of k), in q8_1 as q for block weights;
	// normed takes the last norm's RMS.
	actOf := func(act vk.Range, k int, q *ops.QAct, normed bool) ops.Act {
		a := ops.Act{R: act, F16: f16, Cols: M, K: k, Stride: k, Q: q}
		if normed {
			a.RMS, rms = rms, nil
		}
		return a
	}
	product := func(name string, w *ops.Weight, act vk.Range, k int, q *ops.QAct, y vk.Range, normed, add bool) {
		a := actOf(act, k, q, normed)
		switch {
		case !vec:
			o.MatMul(cmd, w, a, y, w.Rows)
		case add:
			o.MatVecAdd(cmd, w, a, y, w.Rows)
		default:
			o.MatVec(cmd, w, a, y, w.Rows)
		}
		cmd.Barrier()
		mark(name)
	}
	// In passes of many rows the residual add of the previous sub-layer
	// (x += tmp) is done by the next norm; pending says one is owed. (Decode
	// steps' products add to x themselves.)
	pending := false
	norm := func(w vk.Range) {
		switch {
		case fused:
			rms = o.RMSNormQ8(cmd, s.x, w, s.qH, s.normShares, M, H, eps)
		case vec:
			rms = o.RMSNormParts(cmd, s.x, w, s.h, s.normShares, M, H, eps)
		case pending:
			o.AddRMSNorm(cmd, s.x, s.tmp, w, s.h, M, H, eps, f16)
		case f16:
			o.RMSNormF16(cmd, s.x, w, s.h, M, H, eps)
		default:
			o.RMSNorm(cmd, s.x, w, s.h, M, H, eps)
		}
		pending = false
		cmd.Barrier()
		mark("rmsnorm")
	}
	// seqOf is each row's sequence when the rows are few (decode steps).
	var seqOf []int
	if vec {
		seqOf = make([]int, M)
		for _, sg := range segs {
			for t := 0; t < sg.T; t++ {
				seqOf[sg.rowOff+t] = sg.seq
			}
		}
	}
	// heads: decode steps compute a head of q, k or v a workgroup, its norm,
	// rotation and caching after it (ops.QKVHeads).
	heads := vec && len(m.layers) > 0 && o.CanQKVHeads(m.layers[0].qkv, M, d)
	for l, ly := range m.layers {
		norm(ly.attnNorm)
		// The next layer's weights' address translations, cached while this
		// layer's qkv projection or attention runs (see ops.Touch).
		touch := vec && m.TouchWeights && l+1 < len(m.layers)
		if heads { // the projection, then the norm, rotation and caching in one kernel
			o.QKVHeads(cmd, ly.qkv, actOf(s.h, H, s.qH, true), s.qkv, W, ly.qNorm, ly.kNorm, s.pos.All(), seqOf, nq, eps, float32(c.RopeTheta), &s.kv[l])
			if touch && o.TouchAt == 1 {
				o.Touch(cmd, s.touch, m.layers[l+1].parts())
				touch = false
			}
			cmd.Barrier()
			mark("qkv_proj")
		} else {
			product("qkv_proj", ly.qkv, s.h, H, s.qH, s.qkv, true, false)
			if seqOf != nil { // a decode step: one kernel normalises, rotates and caches
				o.QKNormRoPEStore(cmd, s.qkv, ly.qNorm, ly.kNorm, s.pos.All(), seqOf, nq, d, W, eps, float32(c.RopeTheta), &s.kv[l])
				cmd.Barrier()
				mark("qk_norm_rope_kv")
			} else {
				o.QKNormRoPE(cmd, s.qkv, ly.qNorm, ly.kNorm, s.pos.All(), M, nq, nkv, d, W, eps, float32(c.RopeTheta))
				cmd.Barrier()
				mark("qk_norm_rope")
				for _, sg := range segs {
					o.KVStore(cmd, &s.kv[l], s.qkv, s.pos.All(), W, nq, sg.rowOff, sg.T, sg.seq)
				}
				cmd.Barrier()
				mark("kv_store")
			}
		}
		as := make([]ops.Attn, len(segs))
		for i, sg := range segs {
			as[i] = ops.Attn{QKV: s.qkv, Stride: W, RowOff: sg.rowOff, T: sg.T, Pos: s.pos.All(), MaxKV: sg.maxKV,
				Seq: sg.seq, NQ: nq, Scale: float32(1 / math.Sqrt(float64(d))), Out: s.attn, OutF16: f16}
			if fused { // straight to the o projection's q8_1 input
				as[i].Q = s.qA
			}
		}
		if touch {
			o.Touch(cmd, s.touch, m.layers[l+1].parts())
		}
		o.Attention(cmd, &s.kv[l], as, &s.scratch, mark)
		// Decode steps add the o and down projections to x as they go;
		// otherwise the next norm adds them (pending).
		if vec {
			product("o_proj", ly.o, s.attn, nq*d, s.qA, s.x, false, true)
		} else {
			product("o_proj", ly.o, s.attn, nq*d, s.qA, s.tmp, false, false)
			pending = true
		}
		norm(ly.mlpNorm)
		product("gate_up_proj", ly.gateUp, s.h, H, s.qH, s.gu, true, false)
		if fused { // straight to the down projection's q8_1 input
			o.SwiGLUQ8(cmd, s.gu, s.qI, M, I)
		} else if f16 {
			o.SwiGLUF16(cmd, s.gu, s.act, M, I)
		} else {
			o.SwiGLU(cmd, s.gu, s.act, M, I)
		}
		cmd.Barrier()
		mark("swiglu")
		switch {
		case vec:
			product("down_proj", ly.down, s.act, I, s.qI, s.x, false, true)
		case l == len(m.layers)-1 || captureL0 && l == 0:
			// The final norm (or a capture) reads x itself: add now.
			product("down_proj", ly.down, s.act, I, s.qI, s.tmp, false, false)
			o.Add(cmd, s.x, s.tmp, s.x, M*H)
			cmd.Barrier()
			mark("add")
		default:
			product("down_proj", ly.down, s.act, I, s.qI, s.tmp, false, false)
			pending = true
		}
		if l == 0 && captureL0 {
			cmd.Copy(s.layer0.Sub(0, uint64(4*M*H)), s.x.Sub(0, uint64(4*M*H)))
		}
	}
}

// recordHead records logits for token ids [lo, hi) of n ≤ logitRows normalised
// rows x into s.logits ([n, V] layout; other columns are left as they were).
func (s *Session) recordHead(cmd *vk.Cmd, x vk.Range, n, lo, hi int) {
	m, o := s.m, s.m.O
	H, V := m.Cfg.HiddenSize, m.Cfg.VocabSize
	lo64 := lo / 64 * 64
	head := m.head.View(lo64, hi)
	y := s.logits.Sub(uint64(4*lo64), s.logits.Size-uint64(4*lo64))
	a := ops.Act{R: x, Cols: n, K: H, Stride: H}
	if n <= maxVec {
		if head.Format.Blocked() {
			a.Q = s.qH
			o.QuantizeAct(cmd, a)
			cmd.Barrier()
		}
		o.MatVec(cmd, head, a, y, V)
	} else {
		o.MatMul(cmd, head, a, y, V)
	}
}

// SetLens sets the sequences' lengths without running tokens through the model
// (benchmarks time decode steps at a context length this way; the cache holds
// whatever it held).
func (s *Session) SetLens(lens ...int) error {
	for i, n := range lens {
		if i >= s.Seqs || n < 0 || n > s.MaxT {
			return fmt.Errorf("length %d for sequence %d of a %d×%d session", n, i, s.Seqs, s.MaxT)
		}
		s.Lens[i] = n
	}
	return nil
}

func split(x []float32, n int) [][]float32 {
	var out [][]float32
	for i := 0; i+n <= len(x); i += n {
		out = append(out, x[i:i+n])
	}
	return out
}
