package lm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/emu35/emu35/vk"
)

// Chained decode steps: inside an image the next step's tokens are known
// except for the visual token the GPU is drawing, so that step can be started
// before the host has read the draw (Start, with Drawn standing for it), and
// the GPU goes from one step to the next without waiting for the host. The
// step fetches the drawn token's embedding row itself (ops.EmbedDrawn) from a
// table of the drawable ids' rows in host-visible memory (PrepareDraws).

// Drawn, as a token of a Start request, is the token the previous step drew
// on the GPU (its Select's draw: id Lo + Top.Drawn), fed without the host
// reading it first.
const Drawn int32 = -1

// ErrDrawFailed is Pending.Wait's answer when the step's GPU draw failed (a
// NaN score, or no survivor) while a step started after it had already taken
// that draw as its token and replaced the logits: Rewind both, newest first,
// and run the pass again (Forward), whose logits the host then samples from.
var ErrDrawFailed = errors.New("lm: the GPU's draw failed after the next step took it as its token")

// Pending is a decode step started by Start and not yet waited for.
type Pending struct {
	s      *Session
	step   *vk.Cmd
	req    Request
	segs   []passSeg
	lo, hi int
	sel    bool
	parity int
}

// drawRef is the last started decode step, when it drew on the GPU: what a
// step feeding Drawn reads (the draw in its parity's TopK.Out).
type drawRef struct {
	lo, hi, parity int
}

// Start begins a decode step for req, which must ask for Select (two inputs,
// the cond/uncond pair, a token or two each), and returns without waiting for
// it. Tokens may be Drawn when the step before it drew on the GPU over the
// same [Lo, Hi) and PrepareDraws' table for that range is ready
// (DrawsReady). At most two steps are in flight; Wait for them in the order
// they were started.
func (s *Session) Start(ctx context.Context, req Request) (*Pending, error) {
	if len(s.inflight) >= 2 {
		return nil, fmt.Errorf("lm: two decode steps are in flight; Wait for the first before starting another")
	}
	lo, hi, err := s.check(req, true)
	if err != nil {
		return nil, err
	}
	rows, drawn := 0, false
	for _, in := range req.Inputs {
		rows += len(in.Tokens)
		for _, id := range in.Tokens {
			drawn = drawn || id == Drawn
		}
	}
	if req.Select == nil || !s.m.D.Caps.Float64 || rows > min(maxVec, s.MaxRows) { // (check saw two inputs of distinct sequences)
		return nil, fmt.Errorf("lm: Start takes a decode step that draws on the GPU: Select, two inputs of at most %d rows in all, a device with f64", min(maxVec, s.MaxRows))
	}
	if drawn && !s.chainsFrom(lo, hi) {
		return nil, fmt.Errorf("lm: a Drawn token needs the step before it to draw on the GPU over ids [%d, %d) and the table of their rows (PrepareDraws)", lo, hi)
	}
	type piece struct{ input, from, to int }
	ps := []piece{{0, 0, len(req.Inputs[0].Tokens)}, {1, 0, len(req.Inputs[1].Tokens)}}
	lens := append([]int(nil), s.Lens...)
	segs := chunk2segs(s, req, ps, func(p piece) (int, int, int) { return p.input, p.from, p.to })
	if !s.replayable(req, segs) {
		copy(s.Lens, lens)
		return nil, fmt.Errorf("lm: Start takes a decode step whose logits are those of each input's last token")
	}
	ids, pos := rowsOf(req, segs)
	p, err := s.startStep(ctx, req, segs, ids, pos, lo, hi)
	if err != nil {
		copy(s.Lens, lens)
	}
	return p, err
}

// Wait waits for the step and returns its result (Result.Top, or logits when
// the draw failed and no later step has been started).
func (p *Pending) Wait(ctx context.Context) (*Result, error) {
	res := &Result{Lo: p.lo, Hi: p.hi, Logits: make([][][]float32, len(p.req.Inputs))}
	if err := p.finish(ctx, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Rewind takes a waited step's tokens back off its sequences, as if it had
// not run (their cached keys are overwritten when those positions are fed
// again). Steps are rewound newest first.
func (s *Session) Rewind(p *Pending) error {
	if slices.Contains(s.inflight, p) {
		return fmt.Errorf("lm: Rewind of a step not waited for")
	}
	for _, sg := range p.segs {
		if s.Lens[sg.seq] != sg.past+sg.T {
			return fmt.Errorf("lm: Rewind of sequence %d's tokens [%d, %d), which holds %d: rewind the newest step first", sg.seq, sg.past, sg.past+sg.T, s.Lens[sg.seq])
		}
	}
	for _, sg := range p.segs {
		s.Lens[sg.seq] = sg.past
	}
	s.lastDraw = nil
	return nil
}

// chainsFrom reports whether a step over ids [lo, hi) can feed Drawn: the
// last started step drew over the same ids, and the model's table is ready.
func (s *Session) chainsFrom(lo, hi int) bool {
	return s.lastDraw != nil && s.lastDraw.lo == lo && s.lastDraw.hi == hi && s.DrawsReady(lo, hi)
}

// drawTable is the embedding rows of the ids [lo, hi) a GPU draw picks from,
// in host-visible memory (f32, or the checkpoint's bf16 as they are): 131,072
// rows of 5,120 values for Emu3.5, 1.25 GiB in bf16. The model keeps it for
// every session; it is filled in the background, and done closes when it is
// ready or failed (err).
type drawTable struct {
	lo, hi int
	bf16   bool
	arena  *vk.Arena
	buf    *vk.Buffer
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// PrepareDraws starts filling the table of ids [lo, hi)'s embedding rows that
// chained steps read their drawn token's row from, in the background
// (DrawsReady says when it is done); a table of that range already made, or
// being made, is kept. A table of another range, or one that failed, is
// released first.
func (s *Session) PrepareDraws(lo, hi int) {
	m := s.m
	if t := m.draws; t != nil {
		if t.lo == lo && t.hi == hi && s.DrawsErr() == nil {
			return
		}
		s.dropChained()
		m.closeDraws()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &drawTable{lo: lo, hi: hi, done: make(chan struct{}), cancel: cancel, arena: m.D.NewArena(vk.UploadMem)}
	m.draws = t
	var raw []byte // the checkpoint's bf16 table, copied as it is
	if e, ok := m.embed.(bf16Rows); ok {
		raw = e.bf16()
	}
	t.bf16 = raw != nil
	go func() {
		defer close(t.done)
		t.err = t.fill(ctx, m.embed, raw, m.Cfg.HiddenSize, m.D.Caps.MaxStorageBufferRange)
	}()
}

// finished reports whether the table's filling has ended, and its error.
func (t *drawTable) finished() (bool, error) {
	select {
	case <-t.done:
		return true, t.err
	default:
		return false, nil
	}
}

// DrawsReady reports whether PrepareDraws' table of ids [lo, hi) is ready.
func (s *Session) DrawsReady(lo, hi int) bool {
	t := s.m.draws
	if t == nil || t.lo != lo || t.hi != hi {
		return false
	}
	done, err := t.finished()
	return done && err == nil
}

// DrawsErr is why PrepareDraws' table could not be made (nil while it is
// being filled, when it is ready, or before PrepareDraws): chained steps are
// then off, and decode steps wait for the host as before.
func (s *Session) DrawsErr() error {
	t := s.m.draws
	if t == nil {
		return nil
	}
	if _, err := t.finished(); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// DrawTableBytes is the host memory PrepareDraws' table takes (0 before it).
func (s *Session) DrawTableBytes() uint64 {
	if t := s.m.draws; t != nil {
		return t.arena.Reserved()
	}
	return 0
}

// WaitDraws waits for PrepareDraws' table and reports its error.
func (s *Session) WaitDraws(ctx context.Context) error {
	t := s.m.draws
	if t == nil {
		return fmt.Errorf("lm: WaitDraws before PrepareDraws")
	}
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dropChained releases the session's recorded steps that read the table.
func (s *Session) dropChained() {
	s.settle()
	for k, st := range s.steps {
		if k.chain != 0 {
			st.Release()
			delete(s.steps, k)
		}
	}
	s.chainTable = nil
}

// closeDraws stops and frees the table (sessions must have dropped the steps
// that read it).
func (m *Model) closeDraws() {
	t := m.draws
	if t == nil {
		return
	}
	t.cancel()
	<-t.done
	t.arena.Free()
	m.draws = nil
}

// fill allocates the table (a binding of at most limit bytes) and writes its
// rows, a run of rows at a time: raw's bf16 rows as they are, or e's as f32.
func (t *drawTable) fill(ctx context.Context, e embedder, raw []byte, h int, limit uint64) error {
	n := t.hi - t.lo
	esz := 4
	if t.bf16 {
		esz = 2
	}
	size := uint64(n * h * esz)
	if size > limit {
		return fmt.Errorf("the table of %d embedding rows (%d bytes) exceeds the device's storage binding of %d bytes", n, size, limit)
	}
	var err error
	if t.buf, err = t.arena.Alloc("draw_table", size); err != nil {
		return fmt.Errorf("the table of %d embedding rows in host memory: %w", n, err)
	}
	dst := t.buf.Mapped()
	const run = 4096
	ids := make([]int32, run)
	for from := 0; from < n; from += run {
		if err := ctx.Err(); err != nil {
			return err
		}
		to := min(from+run, n)
		if raw != nil {
			copy(dst[from*h*2:to*h*2], raw[(t.lo+from)*h*2:(t.lo+to)*h*2])
			continue
		}
		for i := range ids[:to-from] {
			ids[i] = int32(t.lo + from + i)
		}
		embedRowsPar(e, ids[:to-from], unsafe.Slice((*float32)(unsafe.Pointer(&dst[4*from*h])), (to-from)*h))
	}
	return nil
}

// bf16Rows is an embedder whose table is bf16 in memory ([V, H], nil if not).
type bf16Rows interface {
	bf16() []byte
}
