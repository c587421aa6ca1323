package gen

import (
	"context"
	"fmt"
	"math/rand/v2"
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
	// OneByOne feeds every token in a pass of its own. By default a token
	// followed by a forced one (a row's last visual token and its EOL) goes in
	// one pass with it, which gives the same logits and saves a step; this is
	// for checking that and timing it.
	OneByOne bool
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
	uncondFed := false
	var pend []int32 // chosen tokens not yet fed, and whether they go to both sequences
	pendU := false
	// feed runs toks through the conditional sequence, and with withU through
	// the unconditional one too, for the logits that next needs.
	feed := func(toks []int32, withU bool, next Next) (*lm.Result, error) {
		lo, hi := logitRange(next, vocab)
		req := lm.Request{Inputs: []lm.Input{{Seq: 0, Tokens: toks}}, Lo: lo, Hi: hi}
		if withU {
			u := toks
			if !uncondFed {
				u = append(append([]int32(nil), uncond...), toks...)
				uncondFed = true
			}
			req.Inputs = append(req.Inputs, lm.Input{Seq: 1, Tokens: u})
			if next.Kind == Visual && o.fusedVisual(hi-lo) && !o.HostSampling {
				// The token's uniform, drawn now as the host would draw it
				// next (nothing else draws in between), for the GPU's draw or,
				// if the pass gives logits after all, the host's.
				u := fixedU(rng.Float64())
				ahead = &u
				req.Select = &lm.Select{CFG: o.CFG, TopK: o.Image.TopK, R: float64(u)}
			}
		}
		t1 := time.Now()
		out, err := s.Forward(ctx, req)
		res.Forward += time.Since(t1)
		if err != nil {
			res.Reason = err.Error()
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
			if _, err := feed(pend, pendU, Next{Kind: Forced}); err != nil {
				return res, err
			}
			pend = pend[:0]
		}
		pend, pendU = append(pend, id), withU
		if next.Kind == Forced && len(pend) < maxPending && !o.OneByOne {
			continue
		}
		res.Paired += len(pend) - 1
		out, err := feed(pend, withU, next)
		pend = pend[:0]
		if err != nil {
			return res, err
		}
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
