package gen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/emu35/emu35/model/lm"
	tk "github.com/emu35/emu35/model/tokenizer"
)

// Options are one generation's settings (the presets in configs/ fill them).
type Options struct {
	Preset       *Ratio   // forced image grid, nil for "auto" / a reference image's grid
	CFG          float64  // guidance scale s
	Text, Image  Sampling // differential sampling parameter sets
	MaxNewTokens int
	Seed         uint64
	Greedy       bool // argmax instead of sampling (after the masks)
	// StopAtEOI ends generation at the first image's EOI (what the reference's
	// vLLM path does for t2i/x2i); otherwise only EOS or MaxNewTokens stop it.
	StopAtEOI bool
	// ImageFirst makes the answer begin with an image (BOI is the first token).
	ImageFirst bool
	// HostSampling keeps visual top-k selection on the host (the GPU's gives
	// the same tokens; this is for checking that).
	HostSampling bool
	// NoChain waits for each pass before starting the next, reading the
	// GPU's draw on the host first (the chained passes give the same tokens;
	// this is for checking that and timing it).
	NoChain bool
	// OneByOne feeds every token in a pass of its own. By default a token
	// followed by a forced one (a row's last visual token and its EOL) goes in
	// one pass with it, which gives the same logits and saves a step; this is
	// for checking that and timing it.
	OneByOne bool
	// drawScale, in tests, is the guidance scale the GPU's draw of the
	// answer's token j (0-based) is given instead of CFG: NaN makes it fail,
	// and the host draws with CFG instead.
	drawScale func(j int) float64
}

// Event is sent after each generated token.
type Event struct {
	Token    int32
	N        int // tokens generated so far
	InImage  bool
	H, W     int // current image grid (0 until known)
	RowsDone int // finished rows of the current image
}

// Result is a generation's output ids (the prompt excluded).
type Result struct {
	IDs    []int32
	Reason string // "eos", "eoi", "max_new_tokens", or the error that stopped it
	// Sampling is the host time spent choosing tokens, Forward the time in the
	// model's passes (GPU work, transfers and the waits for them).
	Sampling, Forward time.Duration
	// GPUSelected counts the visual tokens drawn from the GPU's top-k selection.
	GPUSelected int
	// Paired counts the forced tokens fed in one pass with the token before them.
	Paired int
	// Chained counts the passes started before the host had read the token
	// they feed (drawn on the GPU by the pass before them).
	Chained int
}

// maxPending is the most tokens a sequence gets in one generation pass: a
// token and the forced one after it (with the CFG pair, four rows: what a
// recorded decode step takes).
const maxPending = 2

// logitRange is the token ids whose logits the next choice needs.
func logitRange(n Next, vocab int) (int, int) {
	switch n.Kind {
	case Text:
		return 0, tk.BOV
	case Visual:
		return tk.BOV, vocab
	}
	return 0, 64 // size digits ('*' 9, '0'..'9' 15..24); forced tokens need none
}

// Generate runs the reference's generation loop (§5) on session s (two
// sequences: 0 conditional, 1 unconditional) for the tokenised prompts. On a
// cancelled ctx it returns what was generated so far with the error.
func Generate(ctx context.Context, s *lm.Session, cond, uncond []int32, o Options, on func(Event)) (*Result, error) {
	vocab := s.Model().Cfg.VocabSize
	if vocab <= tk.BOV {
		return nil, fmt.Errorf("the model's vocabulary of %d has no visual tokens (Emu3.5's has 282926)", vocab)
	}
	if s.Seqs < 2 {
		return nil, fmt.Errorf("generation needs a session of two sequences")
	}
	if len(cond)+o.MaxNewTokens > s.MaxT || len(uncond)+o.MaxNewTokens > s.MaxT {
		return nil, fmt.Errorf("prompt (%d tokens) + %d new tokens exceed the session's %d positions", len(cond), o.MaxNewTokens, s.MaxT)
	}
	s.Reset()
	st := NewStructure(o.Preset, uncond)
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	res := &Result{}
	lo, hi := logitRange(st.Next(), vocab)
	out, err := s.Forward(ctx, lm.Request{Inputs: []lm.Input{{Seq: 0, Tokens: cond}}, Lo: lo, Hi: hi})
	if err != nil {
		res.Reason = err.Error()
		return res, err
	}
	condL := out.Logits[0][0]
	var uncondL []float32
	var top *lm.Top   // the GPU's draw, instead of condL and uncondL
	var ahead *fixedU // the next visual token's uniform, when drawn for the GPU
	var spare *fixedU // a uniform drawn for a dropped successor, for the pass that replaces it
	uncondFed := false
	var pend []int32 // chosen tokens not yet fed, and whether they go to both sequences
	pendU := false
	// Chained passes (lm.Session.Start): while the GPU draws visual tokens, the
	// pass after the running one is started before the host reads the running
	// one's draw, feeding it as lm.Drawn (plan says what that pass is), so the
	// GPU does not wait for the host between tokens.
	chain := !o.NoChain && !o.HostSampling && o.fusedVisual(vocab-tk.BOV) && s.Model().D.Caps.Float64
	if chain {
		s.PrepareDraws(tk.BOV, vocab)
	}
	var succ *pass // the started pass after the running one
	// request builds the pass feeding toks to the conditional sequence, and
	// with withU to the unconditional one too, for the logits that next needs.
	request := func(toks []int32, withU bool, next Next) *pass {
		lo, hi := logitRange(next, vocab)
		p := &pass{toks: toks, withU: withU, next: next}
		p.req = lm.Request{Inputs: []lm.Input{{Seq: 0, Tokens: toks}}, Lo: lo, Hi: hi}
		if withU {
			u := toks
			if !uncondFed {
				u = append(append([]int32(nil), uncond...), toks...)
				uncondFed = true
			}
			p.req.Inputs = append(p.req.Inputs, lm.Input{Seq: 1, Tokens: u})
			if next.Kind == Visual && o.fusedVisual(hi-lo) && !o.HostSampling {
				// The token's uniform, drawn now as the host would draw it
				// next (nothing else draws in between), for the GPU's draw or,
				// if the pass gives logits after all, the host's.
				u := spare // (a dropped pass's, which the host would draw now)
				if spare = nil; u == nil {
					r := fixedU(rng.Float64())
					u = &r
				}
				p.u = u
				p.req.Select = &lm.Select{CFG: o.CFG, TopK: o.Image.TopK, R: float64(*u)}
				if o.drawScale != nil { // (tests: failed draws)
					j := len(res.IDs) // the token it draws: after toks, chosen already...
					if toks[0] == lm.Drawn {
						j += len(toks) // ...or to come, for a pass started ahead
					}
					p.req.Select.CFG = o.drawScale(j)
				}
			}
		}
		return p
	}
	// drop waits for a started pass whose tokens will not be fed after all and
	// takes them back off the sequences; its uniform goes to the next pass.
	drop := func(p *pass) error {
		if p == nil {
			return nil
		}
		spare = p.u
		if _, err := p.started.Wait(context.Background()); err != nil && !errors.Is(err, lm.ErrDrawFailed) {
			return err
		}
		return s.Rewind(p.started)
	}
	defer func() { drop(succ) }() // (an error or a cancellation with one in flight)
	// feed runs pass p and returns its result; a pass that draws on the GPU is
	// started first, and the pass after it too where plan knows it.
	feed := func(p *pass) (*lm.Result, error) {
		t1 := time.Now()
		defer func() { res.Forward += time.Since(t1) }()
		if !chain || p.req.Select == nil || len(p.req.Inputs[1].Tokens) != len(p.toks) || 2*len(p.toks) > s.MaxRows {
			return s.Forward(ctx, p.req) // (not a decode step of the pair: the unconditional prompt goes first)
		}
		if p.started == nil {
			var err error
			if p.started, err = s.Start(ctx, p.req); err != nil {
				return nil, err
			}
		}
		if toks, next, ok := plan(st, len(res.IDs), o); ok && s.DrawsReady(tk.BOV, vocab) {
			n := request(toks, true, next)
			var err error
			if n.started, err = s.Start(ctx, n.req); err != nil {
				spare = n.u
				p.started.Wait(context.Background()) // (not left in flight)
				return nil, err
			}
			succ = n
		}
		out, err := p.started.Wait(ctx)
		if errors.Is(err, lm.ErrDrawFailed) { // its logits are gone: run it again
			if err = drop(succ); err == nil {
				succ = nil
				if err = s.Rewind(p.started); err == nil {
					req := p.req
					req.Inputs = []lm.Input{{Seq: 0, Tokens: p.toks}, {Seq: 1, Tokens: p.toks}}
					out, err = s.Forward(ctx, req)
				}
			}
		}
		return out, err
	}
	for n := 0; n < o.MaxNewTokens; n++ {
		nx := st.Next()
		var id int32
		t0 := time.Now()
		switch {
		case n == 0 && o.ImageFirst && nx.Kind == Text:
			id = tk.BOI
		case nx.Kind == Forced:
			id = nx.Forced
		case nx.Kind == Text:
			id = int32(o.pick(append([]float32(nil), condL...), o.Text, rng))
		case nx.Kind == Size:
			scores := make([]float32, len(condL))
			for i := range scores {
				scores[i] = negInf
			}
			for _, a := range nx.Allowed {
				scores[a] = condL[a]
			}
			id = int32(o.pick(scores, o.Image, rng))
		case nx.Kind == Visual && top != nil:
			id = tk.BOV + int32(top.Drawn)
			res.GPUSelected++
		case nx.Kind == Visual && ahead != nil: // the GPU was to draw with it
			id = tk.BOV + int32(o.pickVisual(condL, uncondL, ahead))
		case nx.Kind == Visual:
			id = tk.BOV + int32(o.pickVisual(condL, uncondL, rng))
		}
		ahead = nil
		res.Sampling += time.Since(t0)
		res.IDs = append(res.IDs, id)
		st.Observe(id)
		if on != nil {
			on(Event{Token: id, N: len(res.IDs), InImage: st.InImage(), H: st.H, W: st.W, RowsDone: st.RowsDone})
		}
		switch {
		case id == tk.EOS:
			res.Reason = "eos"
			return res, nil
		case id == tk.EOI && o.StopAtEOI:
			res.Reason = "eoi"
			return res, nil
		case n == o.MaxNewTokens-1:
			res.Reason = "max_new_tokens"
			return res, nil
		}
		// Feed the token: to the conditional sequence always, and to the
		// unconditional one inside images and for the EOI that ends them (§5.5).
		// A token whose successor is forced waits for it, and the two go in one
		// pass (its logits are not needed).
		next := st.Next()
		withU := st.InImage() || id == tk.EOI
		if len(pend) > 0 && withU != pendU { // (not seen: both are inside an image)
			if _, err := feed(request(pend, pendU, Next{Kind: Forced})); err != nil {
				res.Reason = err.Error()
				return res, err
			}
			pend = pend[:0]
		}
		pend, pendU = append(pend, id), withU
		if next.Kind == Forced && len(pend) < maxPending && !o.OneByOne {
			continue
		}
		res.Paired += len(pend) - 1
		// The pass started ahead for these tokens, if they are what it fed.
		p := succ
		succ = nil
		if p.feeds(pend, withU, next) {
			res.Chained++
			p.toks = slices.Clone(pend) // (what a run again feeds)
		} else {
			if err := drop(p); err != nil {
				res.Reason = err.Error()
				return res, err
			}
			p = request(slices.Clone(pend), withU, next)
		}
		out, err := feed(p)
		pend = pend[:0]
		if err != nil {
			res.Reason = err.Error()
			return res, err
		}
		ahead = p.u
		if top = out.Top; top == nil {
			condL = out.Logits[0][0]
			if len(out.Logits) > 1 {
				uncondL = out.Logits[1][0]
			}
		}
	}
	res.Reason = "max_new_tokens"
	return res, nil
}

// pass is a forward pass of the generation loop: the tokens it feeds (the
// first may be lm.Drawn), whether to both sequences, what its logits serve,
// its request and the uniform drawn for its GPU draw; started once Start ran.
type pass struct {
	toks    []int32
	withU   bool
	next    Next
	req     lm.Request
	u       *fixedU
	started *lm.Pending
}

// feeds reports whether p, started ahead, feeds the tokens toks (its Drawn
// standing for the first of them) for the same next choice.
func (p *pass) feeds(toks []int32, withU bool, next Next) bool {
	if p == nil || len(p.toks) != len(toks) || p.withU != withU || p.next.Kind != next.Kind || p.next.Forced != next.Forced {
		return false
	}
	for i, t := range p.toks {
		if t != toks[i] && !(i == 0 && t == lm.Drawn) {
			return false
		}
	}
	return true
}

// plan is the pass after the one drawing the answer's visual token j, as the
// loop will make it whatever token is drawn: the drawn token (lm.Drawn), and
// the forced token after it when the loop pairs them; next is what its
// logits serve. ok is false where the loop stops there, or where that pass
// would not draw on the GPU in turn.
func plan(st *Structure, j int, o Options) (toks []int32, next Next, ok bool) {
	if j >= o.MaxNewTokens-1 || !st.InVisual() {
		return nil, Next{}, false
	}
	s := *st
	s.sizeIDs = slices.Clone(st.sizeIDs)
	s.Observe(tk.BOV) // (which visual token does not matter to the structure)
	toks, next = []int32{lm.Drawn}, s.Next()
	if next.Kind == Forced && !o.OneByOne {
		f := next.Forced
		if f == tk.EOS || f == tk.EOI && o.StopAtEOI || j+1 >= o.MaxNewTokens-1 {
			return nil, Next{}, false
		}
		s.Observe(f)
		toks, next = append(toks, f), s.Next()
	}
	return toks, next, next.Kind == Visual && s.InImage()
}

// fusedVisual reports whether visual tokens among n are drawn by the fused
// path (top-k at temperature 1, no top-p), on the host or the GPU.
func (o Options) fusedVisual(n int) bool {
	p := o.Image
	return !o.Greedy && !p.scales() && !p.nucleus() && p.TopK > 0 && p.TopK < n
}

// pickVisual chooses a visual token (0-based) from the CFG of the pair's visual
// logits, by the fused path where the settings allow it.
func (o Options) pickVisual(cond, uncond []float32, rng Uniform) int {
	p := o.Image
	if o.fusedVisual(len(cond)) {
		return sampleCFGTopK(cond, uncond, o.CFG, p.TopK, rng)
	}
	return o.pick(CFGSubset(cond, uncond, o.CFG), p, rng)
}

// pick chooses an index of scores: argmax when greedy, else a draw after warping.
func (o Options) pick(scores []float32, p Sampling, rng Uniform) int {
	if o.Greedy {
		return Argmax(scores)
	}
	p.Warp(scores)
	return Draw(scores, rng)
}
