package gen

import (
	"image"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/emu35/emu35/model/fixtures"
	tk "github.com/emu35/emu35/model/tokenizer"
)

// drive feeds tokens through a Structure, choosing vis for every Visual and the
// given digits for Size steps, and returns the sequence after BOI.
func drive(t *testing.T, s *Structure, sizeDigits []int32) []int32 {
	t.Helper()
	var out []int32
	s.Observe(tk.BOI)
	for n := 0; n < 100000; n++ {
		nx := s.Next()
		var id int32
		switch nx.Kind {
		case Forced:
			id = nx.Forced
		case Visual:
			id = tk.BOV + 7
		case Size:
			if len(sizeDigits) == 0 {
				t.Fatal("unexpected size choice")
			}
			id, sizeDigits = sizeDigits[0], sizeDigits[1:]
			ok := false
			for _, a := range nx.Allowed {
				ok = ok || a == id
			}
			if !ok {
				t.Fatalf("digit %d not allowed at this position (%v)", id, nx.Allowed)
			}
		case Text:
			return out
		}
		out = append(out, id)
		s.Observe(id)
	}
	t.Fatal("no end")
	return nil
}

// layout checks §3.3's layout of an image (after BOI).
func layout(t *testing.T, seq []int32, h, w int) {
	t.Helper()
	want := sizeIDsOf(h, w)
	for i, id := range want {
		if seq[i] != id {
			t.Fatalf("size tokens %v, want %v", seq[:len(want)], want)
		}
	}
	body := seq[len(want):]
	if body[0] != tk.IMG || len(body) != 1+h*(w+1) || body[len(body)-1] != tk.EOI {
		t.Fatalf("image of %d tokens after the size, want IMG + %d", len(body), h*(w+1))
	}
	for r := 0; r < h; r++ {
		for c := 0; c <= w; c++ {
			id := body[1+r*(w+1)+c]
			switch {
			case c < w && id < tk.BOV:
				t.Fatalf("row %d col %d: %d is not visual", r, c, id)
			case c == w && r < h-1 && id != tk.EOL:
				t.Fatalf("row %d ends with %d, not EOL", r, id)
			}
		}
	}
}

func TestStructurePresetAndSameSize(t *testing.T) {
	s := NewStructure(&Ratio{55, 73}, nil)
	layout(t, drive(t, s, nil), 55, 73)
	// A second image is forced to the same grid.
	layout(t, drive(t, s, nil), 55, 73)
	if s.InImage() || s.Next().Kind != Text {
		t.Fatal("text mode expected after EOI")
	}
}

func TestStructureAuto(t *testing.T) {
	s := NewStructure(nil, nil)
	// "auto": two digits × two digits, sampled within the allowed sets.
	seq := drive(t, s, []int32{digit0 + 1, digit0 + 2, digit0 + 3, digit0 + 0})
	layout(t, seq, 12, 30)
	// The second image repeats 12×30 (forced digits).
	layout(t, drive(t, s, nil), 12, 30)
}

func TestStructureReferenceImage(t *testing.T) {
	tok := []int32{tk.BOS, 5, tk.BOI}
	tok = append(tok, sizeIDsOf(3, 107)...)
	tok = append(tok, tk.IMG, tk.BOV, tk.EOI, 99)
	s := NewStructure(nil, tok)
	if s.H != 3 || s.W != 107 {
		t.Fatalf("reference grid %dx%d", s.H, s.W)
	}
	layout(t, drive(t, s, nil), 3, 107) // 3-digit widths work
	// A preset given with a reference image wins (force_same_image_size).
	s = NewStructure(&Ratio{4, 5}, tok)
	layout(t, drive(t, s, nil), 4, 5)
}

func TestStructureRows(t *testing.T) {
	s := NewStructure(&Ratio{2, 3}, nil)
	s.Observe(tk.BOI)
	for _, id := range []int32{digit0 + 2, star, digit0 + 3, tk.IMG, tk.BOV, tk.BOV, tk.BOV, tk.EOL} {
		s.Observe(id)
	}
	if s.RowsDone != 1 || !s.InVisual() {
		t.Fatalf("rows %d", s.RowsDone)
	}
}

// CFG against hand-computed values, and the subset form's equivalence.
func TestCFG(t *testing.T) {
	c := []float32{0, float32(math.Log(3))} // probabilities 1/4, 3/4
	u := []float32{0, 0}                    // 1/2, 1/2
	g := CFG(c, u, 2)
	// lu + 2(lc − lu): log(1/2) + 2(log(1/4) − log(1/2)) = log(1/8); log(1/2) + 2 log(3/2) = log(9/8)
	if math.Abs(float64(g[0])-math.Log(1.0/8)) > 1e-6 || math.Abs(float64(g[1])-math.Log(9.0/8)) > 1e-6 {
		t.Fatalf("CFG %v", g)
	}
	r := rand.New(rand.NewPCG(1, 2))
	cv, uv := make([]float32, 50), make([]float32, 50)
	for i := range cv {
		cv[i], uv[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	a, b := CFG(cv, uv, 3), CFGSubset(cv, uv, 3)
	pa, pb := softmaxOf(a, seq(50)), softmaxOf(b, seq(50))
	for i := range pa {
		if math.Abs(pa[i]-pb[i]) > 1e-6 {
			t.Fatalf("subset CFG changes probabilities: %g vs %g", pa[i], pb[i])
		}
	}
}

func seq(n int) []int {
	x := make([]int, n)
	for i := range x {
		x[i] = i
	}
	return x
}

func TestWarp(t *testing.T) {
	x := []float32{1, 5, 3, 5, 2}
	y := append([]float32(nil), x...)
	Sampling{TopK: 2, TopP: 1, Temperature: 1}.Warp(y)
	if y[1] != 5 || y[3] != 5 || y[0] > negInf || y[2] > negInf || y[4] > negInf {
		t.Fatalf("top-k 2 with a tie: %v", y)
	}
	// top-p 0.5 on probabilities ≈ (0.0098, 0.53, 0.072, 0.53...) keeps the entries up to the crossing one.
	z := []float32{0, float32(math.Log(6)), float32(math.Log(3)), float32(math.Log(1))}
	Sampling{TopP: 0.55, Temperature: 1}.Warp(z) // probs 1/11, 6/11, 3/11, 1/11
	if z[1] == negInf || z[2] == negInf || z[0] != negInf || z[3] != negInf {
		t.Fatalf("top-p: %v", z)
	}
	w := []float32{2, 4}
	Sampling{Temperature: 2}.Warp(w)
	if w[0] != 1 || w[1] != 2 {
		t.Fatalf("temperature: %v", w)
	}
	r := rand.New(rand.NewPCG(3, 4))
	counts := [3]int{}
	for i := 0; i < 20000; i++ {
		counts[Draw([]float32{0, float32(math.Log(3)), negInf}, r)]++
	}
	if counts[2] != 0 || math.Abs(float64(counts[1])/20000-0.75) > 0.02 {
		t.Fatalf("draw counts %v", counts)
	}
	if kthLargest([]float32{3, 1, 4, 1, 5, 9, 2, 6}, 3) != 5 || kthLargest([]float32{-1, -3, negInf, -2}, 4) != negInf {
		t.Fatal("kthLargest")
	}
	// Against sorting, on random data with ties and negatives.
	big := make([]float32, 20000)
	for i := range big {
		big[i] = float32(r.IntN(3000)-1500) / 7
	}
	sorted := append([]float32(nil), big...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] > sorted[j] })
	for _, k := range []int{1, 2, 100, 5120, 19999, 20000} {
		if got := kthLargest(big, k); got != sorted[k-1] {
			t.Fatalf("k=%d: %g, want %g", k, got, sorted[k-1])
		}
	}
}

func TestTemplates(t *testing.T) {
	c, u, _ := Templates("t2i", "A red apple on a wooden table.", false)
	if c != "<|extra_203|>You are a helpful assistant for t2i task. USER: A red apple on a wooden table. ASSISTANT: <|extra_100|>" ||
		u != "<|extra_203|>You are a helpful assistant. USER:  ASSISTANT: <|extra_100|>" {
		t.Fatalf("%q\n%q", c, u)
	}
	c, _, _ = Templates("x2i", "Q", true)
	if c != "<|extra_203|>You are a helpful assistant for x2i task. USER: <|IMAGE|>Q ASSISTANT: <|extra_100|>" {
		t.Fatalf("x2i %q", c)
	}
	c, _, _ = Templates("howto", "How to cook Shrimp, Celery, and Pork Dumplings.", false)
	if c != "<|extra_203|>You are a helpful assistant for howto task. Please generate a response with interleaved text and images. USER: How to cook Shrimp, Celery, and Pork Dumplings. ASSISTANT: <|extra_100|>" {
		t.Fatalf("howto %q", c)
	}
	if _, _, err := Templates("paint", "x", false); err == nil {
		t.Fatal("unknown task accepted")
	}
	if s := ImageString([]int32{0, 131071, 5, 6}, 2, 2); s != "<|image start|>2*2<|image token|><|visual token 000000|><|visual token 131071|><|extra_200|><|visual token 000005|><|visual token 000006|><|image end|>" {
		t.Fatalf("image string %q", s)
	}
	for _, r := range []string{"auto", "4:3", "1:1", "8x9"} {
		if _, _, err := ParseRatio(r); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	if _, _, err := ParseRatio("5:4"); err == nil {
		t.Error("5:4 accepted")
	}
}

func fixturesDir(t *testing.T) string { return fixtures.Dir(t, "tokenizer") }

// Parse and Story follow §5.7 and §7.2: ESS/EOS dropped, global and per-image
// chains of thought, text clips, images joined to their pending CoT entry.
func TestParseAndStory(t *testing.T) {
	tok := tk.Synthetic()
	var ids []int32
	ids = append(ids, tk.BOG)
	ids = append(ids, tok.Encode("plan")...)
	ids = append(ids, tk.EOG)
	ids = append(ids, tok.Encode("Step one.")...)
	ids = append(ids, tk.BOC)
	ids = append(ids, tok.Encode("a bowl")...)
	ids = append(ids, tk.EOC, tk.BOI)
	ids = append(ids, sizeIDsOf(2, 2)...)
	ids = append(ids, tk.IMG, tk.BOV+1, tk.BOV+2, tk.EOL, tk.BOV+3, tk.BOV+4, tk.EOI)
	ids = append(ids, tok.Encode("  ")...) // whitespace-only text is dropped
	ids = append(ids, tk.ESS, tk.EOS)
	items, err := Parse(tok, ids)
	if err != nil {
		t.Fatal(err)
	}
	kinds := ""
	for _, it := range items {
		kinds += it.Kind + " "
	}
	if kinds != "global_cot text image_cot image " || items[3].H != 2 || items[3].W != 2 || items[3].Codes[3] != 4 {
		t.Fatalf("items: %s %+v", kinds, items)
	}
	dec := make([]Decoded, len(items))
	for i, it := range items {
		dec[i] = Decoded{Item: it}
		if it.Kind == "image" {
			dec[i].Image = image.NewRGBA(image.Rect(0, 0, 32, 32))
		}
	}
	st, err := Story("q", nil, dec)
	if err != nil {
		t.Fatal(err)
	}
	if st.Summary != "plan" || len(st.Clips) != 1 || st.Clips[0].Segments[0].Asr != "Step one." {
		t.Fatalf("story %v", st)
	}
	imgs := st.Clips[0].Segments[0].Images
	if len(imgs) != 1 || imgs[0].ChainOfThought != "a bowl" || imgs[0].Image.Width != 32 {
		t.Fatalf("the image did not fill its chain-of-thought entry: %v", imgs)
	}
	// An unfinished image keeps its finished rows.
	items, _ = Parse(tok, []int32{tk.BOI, digit0 + 3, star, digit0 + 2, tk.IMG, tk.BOV, tk.BOV, tk.EOL, tk.BOV})
	if len(items) != 1 || !items[0].Partial || items[0].H != 1 {
		t.Fatalf("partial %+v", items)
	}
	// Rows of different lengths: the reference fails to decode and skips the image.
	items, _ = Parse(tok, []int32{tk.BOI, tk.IMG, tk.BOV, tk.BOV, tk.EOL, tk.BOV, tk.EOI})
	if len(items) != 0 {
		t.Fatalf("ragged image kept: %+v", items)
	}
}
