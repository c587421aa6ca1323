package lm

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// Chained steps draw the tokens that steps waited for one at a time draw: a
// step started before the one before it ends, feeding its draw as Drawn (a
// token alone, and with a forced token after it), with the checkpoint's bf16
// rows in the draw table. A failed draw in the chain is reported
// (ErrDrawFailed), and after rewinding both steps the pass runs again with
// the logits a plain step gives.
func TestChainedSteps(t *testing.T) {
	ctx := context.Background()
	s := tinySession(t, 2, 64)
	const lo, hi, k, forced = 1000, 2048, 50, 17
	prompt := []int32{3, 9, 27, 81, 243}
	// NaN at step 6: the draw fails and the host takes the argmax of the
	// conditional logits (a rule of this test's).
	cfgAt := func(i int) float64 {
		if i == 6 {
			return math.NaN()
		}
		return 2.5
	}
	// toks is step i's tokens for token t: every third step pairs it with a
	// forced token.
	toks := func(i int, t int32) []int32 {
		if i%3 == 2 {
			return []int32{t, forced}
		}
		return []int32{t}
	}
	pair := func(i int, t int32) Request {
		return Request{Inputs: []Input{{0, toks(i, t)}, {1, toks(i, t)}}, Lo: lo, Hi: hi,
			Select: &Select{CFG: cfgAt(i), TopK: k, R: float64(i%7) / 7}}
	}
	token := func(r *Result) int32 {
		if r.Top != nil {
			return int32(lo + r.Top.Drawn)
		}
		return int32(lo) + argmax(r.Logits[0][0])
	}
	const steps = 12
	begin := func() {
		t.Helper()
		s.Reset()
		if _, err := s.Forward(ctx, Request{Inputs: []Input{{0, prompt}, {1, prompt}}, Logits: LogitsNone}); err != nil {
			t.Fatal(err)
		}
	}
	// One step at a time.
	begin()
	plain := []int32{7}
	var nanLogits []float32
	for i := 0; i < steps; i++ {
		r, err := s.Forward(ctx, pair(i, plain[i]))
		if err != nil {
			t.Fatal(err)
		}
		if i == 6 {
			if r.Top != nil {
				t.Fatal("a NaN guidance scale drew a token")
			}
			nanLogits = r.Logits[0][0]
		}
		plain = append(plain, token(r))
	}
	// Chained: step i+1 starts before step i is waited for.
	s.PrepareDraws(lo, hi)
	if err := s.WaitDraws(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.m.draws.bf16 {
		t.Fatal("the bf16 checkpoint's draw table is not bf16")
	}
	begin()
	got := []int32{7}
	cur, err := s.Start(ctx, pair(0, 7))
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := 0; i < steps; i++ {
		var next *Pending
		if i+1 < steps {
			if next, err = s.Start(ctx, pair(i+1, Drawn)); err != nil {
				t.Fatal(err)
			}
		}
		r, err := cur.Wait(ctx)
		if errors.Is(err, ErrDrawFailed) && next != nil {
			failed++
			if _, err := next.Wait(ctx); err != nil && !errors.Is(err, ErrDrawFailed) {
				t.Fatal(err)
			}
			if err := s.Rewind(next); err != nil {
				t.Fatal(err)
			}
			if err := s.Rewind(cur); err != nil {
				t.Fatal(err)
			}
			if r, err = s.Forward(ctx, pair(i, got[i])); err != nil {
				t.Fatal(err)
			}
			if r.Top != nil || !slices.Equal(r.Logits[0][0], nanLogits) {
				t.Fatalf("step %d run again: Top %v, logits equal to a plain step's: %v", i, r.Top, slices.Equal(r.Logits[0][0], nanLogits))
			}
			if i+1 < steps {
				if next, err = s.Start(ctx, pair(i+1, token(r))); err != nil {
					t.Fatal(err)
				}
			}
		} else if err != nil {
			t.Fatal(err)
		}
		got = append(got, token(r))
		cur = next
	}
	if failed != 1 || !slices.Equal(got, plain) {
		t.Fatalf("chained steps drew %v (%d failed draws), one at a time %v", got, failed, plain)
	}
	if s.Lens[0] != len(prompt)+steps+steps/3 || len(s.inflight) != 0 {
		t.Fatalf("sequence length %d, %d steps in flight", s.Lens[0], len(s.inflight))
	}
}

// Start refuses what it cannot chain: a Drawn token with no draw before it,
// a third step in flight, a step without Select; Wait and Rewind keep order.
func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	s := tinySession(t, 2, 64)
	sel := &Select{CFG: 2, TopK: 5, R: 0.5}
	req := func(t0, t1 int32) Request {
		return Request{Inputs: []Input{{0, []int32{t0}}, {1, []int32{t1}}}, Lo: 1000, Hi: 2048, Select: sel}
	}
	if _, err := s.Start(ctx, req(Drawn, Drawn)); err == nil {
		t.Fatal("a Drawn token with no step before it started")
	}
	if _, err := s.Start(ctx, Request{Inputs: []Input{{0, []int32{4}}, {1, []int32{4}}}}); err == nil {
		t.Fatal("a step without Select started")
	}
	a, err := s.Start(ctx, req(4, 4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, req(Drawn, Drawn)); err == nil {
		t.Fatal("a Drawn token started without the draw table")
	}
	s.PrepareDraws(1000, 2048)
	if err := s.WaitDraws(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := s.Start(ctx, req(Drawn, Drawn))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, req(5, 5)); err == nil {
		t.Fatal("a third step started")
	}
	if _, err := s.Forward(ctx, req(5, 5)); err == nil {
		t.Fatal("Forward ran with steps in flight")
	}
	if _, err := b.Wait(ctx); err == nil {
		t.Fatal("the second step was waited for before the first")
	}
	if err := s.Rewind(a); err == nil {
		t.Fatal("a step in flight was rewound")
	}
	if _, err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Rewind(a); err == nil {
		t.Fatal("the older step was rewound first")
	}
	if _, err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(ctx); err == nil {
		t.Fatal("a step was waited for twice")
	}
}

// The draw table is the model's: a second session finds it ready, and when
// one session asks for another range (and then the first again), a session
// whose chained steps read the old table records them again and draws what
// plain steps draw.
func TestDrawTableShared(t *testing.T) {
	ctx := context.Background()
	a := tinySession(t, 2, 64)
	b, err := a.m.NewSession(2, 64, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// draws runs n steps of s over [lo, 2048), chained or one at a time, and
	// returns the tokens drawn.
	draws := func(s *Session, lo, n int, chained bool) []int32 {
		t.Helper()
		s.Reset()
		req := func(tok int32) Request {
			return Request{Inputs: []Input{{0, []int32{tok}}, {1, []int32{tok}}}, Lo: lo, Hi: 2048, Select: &Select{CFG: 2, TopK: 40, R: 0.3}}
		}
		r, err := s.Forward(ctx, req(11))
		if err != nil {
			t.Fatal(err)
		}
		got := []int32{int32(lo + r.Top.Drawn)}
		var ps []*Pending
		for i := 1; i < n; i++ {
			if !chained {
				if r, err = s.Forward(ctx, req(got[i-1])); err != nil {
					t.Fatal(err)
				}
				got = append(got, int32(lo+r.Top.Drawn))
				continue
			}
			p, err := s.Start(ctx, req(Drawn))
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
			if len(ps) == 2 {
				r, err := ps[0].Wait(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got, ps = append(got, int32(lo+r.Top.Drawn)), ps[1:]
			}
		}
		for _, p := range ps {
			r, err := p.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, int32(lo+r.Top.Drawn))
		}
		return got
	}
	a.PrepareDraws(1000, 2048)
	if err := a.WaitDraws(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.DrawsReady(1000, 2048) || b.DrawTableBytes() == 0 {
		t.Fatal("a second session of the model does not find its draw table")
	}
	want1000 := draws(a, 1000, 8, false)
	if got := draws(a, 1000, 8, true); !slices.Equal(got, want1000) {
		t.Fatalf("chained %v, one at a time %v", got, want1000)
	}
	b.PrepareDraws(1500, 2048)
	if err := b.WaitDraws(ctx); err != nil {
		t.Fatal(err)
	}
	want := draws(b, 1500, 8, false)
	if got := draws(b, 1500, 8, true); !slices.Equal(got, want) {
		t.Fatalf("the second range: chained %v, one at a time %v", got, want)
	}
	if got := draws(a, 1500, 8, true); !slices.Equal(got, want) {
		t.Fatalf("the first session on the replaced table: chained %v, one at a time %v", got, want)
	}
	// Back to the first range, in a new table: the first session's steps
	// recorded for the old one are recorded again.
	b.PrepareDraws(1000, 2048)
	if err := b.WaitDraws(ctx); err != nil {
		t.Fatal(err)
	}
	if got := draws(a, 1000, 8, true); !slices.Equal(got, want1000) {
		t.Fatalf("the first range again: chained %v, one at a time %v", got, want1000)
	}
	if a.chainTable != a.m.draws { // (a freed table's memory may still hold the rows)
		t.Fatal("the first session's chained steps read a released table")
	}
}

// A table that cannot be made (here: larger than the device's storage
// binding) leaves chained steps off with the reason, and plain steps work.
func TestDrawTableError(t *testing.T) {
	ctx := context.Background()
	s := tinySession(t, 2, 64)
	caps := s.m.D.Caps
	limit := caps.MaxStorageBufferRange
	caps.MaxStorageBufferRange = 1 << 10
	s.PrepareDraws(1000, 2048)
	err := s.WaitDraws(ctx)
	caps.MaxStorageBufferRange = limit
	if err == nil || !strings.Contains(err.Error(), "storage binding") || s.DrawsErr() == nil || s.DrawsReady(1000, 2048) {
		t.Fatalf("a table over the binding limit: %v (DrawsErr %v)", err, s.DrawsErr())
	}
	req := func(tok int32) Request {
		return Request{Inputs: []Input{{0, []int32{tok}}, {1, []int32{tok}}}, Lo: 1000, Hi: 2048, Select: &Select{CFG: 2, TopK: 40, R: 0.3}}
	}
	if _, err := s.Forward(ctx, req(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(ctx, req(Drawn)); err == nil {
		t.Fatal("a chained step started without its table")
	}
	// Asked again, the table is made anew.
	s.PrepareDraws(1000, 2048)
	if err := s.WaitDraws(ctx); err != nil || s.DrawsErr() != nil {
		t.Fatalf("the table asked for again: %v", err)
	}
}
