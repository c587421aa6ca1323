package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emu35/emu35/model/fixtures"
)

func load(t testing.TB) *Tokenizer {
	tk, err := Load(fixtures.Dir(t, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// Every golden case encodes exactly and round-trips.
func TestGolden(t *testing.T) {
	tk := load(t)
	if tk.Size() != 282926 || tk.NBPE != 151643 {
		t.Fatalf("vocabulary %d (BPE %d)", tk.Size(), tk.NBPE)
	}
	var g struct {
		Cases []struct {
			Text string  `json:"text"`
			IDs  []int32 `json:"ids"`
		} `json:"cases"`
	}
	b, _ := os.ReadFile(filepath.Join(fixtures.Dir(t, "tokenizer"), "golden.json"))
	if err := json.Unmarshal(b, &g); err != nil || len(g.Cases) == 0 {
		t.Fatalf("golden.json: %v", err)
	}
	for _, c := range g.Cases {
		got := tk.Encode(c.Text)
		if len(got) != len(c.IDs) {
			t.Errorf("%q: %v, want %v", c.Text, got, c.IDs)
			continue
		}
		for i := range got {
			if got[i] != c.IDs[i] {
				t.Errorf("%q: %v, want %v", c.Text, got, c.IDs)
				break
			}
		}
		if txt, err := tk.Decode(c.IDs); err != nil || (txt != c.Text && txt != nfc(c.Text)) {
			t.Errorf("decode %v = %q, want %q", c.IDs, txt, c.Text)
		}
	}
	t.Logf("%d golden cases", len(g.Cases))
}

func nfc(s string) string { return string(normNFC(s)) }

// The spec's worked vectors (§2.3).
func TestSpecVectors(t *testing.T) {
	tk := load(t)
	for text, want := range map[string][]int32{
		"55*73":       {20, 20, 9, 22, 18},
		"a\r\n\r\n b": {64, 871, 293},
		"<|image start|>2*3<|image token|><|visual token 000000|><|visual token 131071|><|extra_200|><|visual token 000005|><|visual token 000006|><|image end|>": {151852, 17, 9, 18, 151851, 151854, 282925, 151846, 151859, 151860, 151853},
		"<|extra_203|>You are a helpful assistant. USER:  ASSISTANT: <|extra_100|>":                                                                               {151849, 2610, 525, 264, 10950, 17847, 13, 13872, 25, 220, 35560, 3846, 2821, 25, 220, 151746},
		"x <|notspecial|> <|extra_204|>": nil,
	} {
		got := tk.Encode(text)
		if want == nil {
			if len(got) == 0 || got[len(got)-1] != EOS {
				t.Errorf("%q: %v", text, got)
			}
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%q: %v, want %v", text, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: %v, want %v", text, got, want)
				break
			}
		}
	}
	if _, err := tk.Decode([]int32{282926}); err == nil {
		t.Error("an out-of-range id decoded")
	}
	if s := decodeReplace([]byte{'a', 0xE2, 0x82, 'b', 0xFF, 0xF0, 0x9F}); s != "a\uFFFDb\uFFFD\uFFFD" {
		t.Errorf("replacement: %q", s)
	}
}

// Encoding a 4 KB prompt takes well under a millisecond (measured, not asserted).
func BenchmarkEncode4K(b *testing.B) {
	tk := load(b)
	text := ""
	for len(text) < 4096 {
		text += "A clay astronaut exploring Mars, discovering 3 new continents hidden beneath the red dust. "
	}
	b.SetBytes(int64(len(text)))
	for i := 0; i < b.N; i++ {
		tk.Encode(text)
	}
}

func TestEncodeSpeed(t *testing.T) {
	tk := load(t)
	text := ""
	for len(text) < 4096 {
		text += "A clay astronaut exploring Mars, discovering 3 new continents hidden beneath the red dust. "
	}
	t0 := time.Now()
	for i := 0; i < 20; i++ {
		tk.Encode(text)
	}
	t.Logf("4 KB prompt: %v per encode", time.Since(t0)/20)
}

func TestSynthetic(t *testing.T) {
	s := Synthetic()
	if s.Size() != 282926 {
		t.Fatalf("size %d", s.Size())
	}
	ids := s.Encode("12*34<|image start|>héllo")
	if ids[0] != 16 || ids[2] != 9 || ids[5] != BOI {
		t.Fatalf("%v", ids)
	}
	if txt, _ := s.Decode(ids); txt != "12*34<|image start|>héllo" {
		t.Fatalf("round trip %q", txt)
	}
}
