// Package tokenizer is Emu3.5's text tokenizer, byte-identical to the reference's
// tiktoken setup: BPE ranks from emu3.tiktoken, the Qwen pre-tokenization pattern
// (hand-written: Go's regexp lacks its lookahead), special tokens from id 151643
// (<|endoftext|>, <|im_start|>, <|im_end|>, <|extra_0..204|>, then the lines of
// emu3_vision_tokens.txt) recognised anywhere in the text.
package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer encodes and decodes text.
type Tokenizer struct {
	ranks   map[string]int32 // token bytes → id
	tokens  [][]byte         // id → bytes (BPE) or the special string
	special map[string]int32
	NBPE    int // ids below are BPE tokens
}

// Well-known ids (reference-spec §2.2).
const (
	PAD = 151643
	BOS = 151849
	EOS = 151850
	EOL = 151846
	IMG = 151851
	BOI = 151852
	EOI = 151853
	BOV = 151854 // first visual token
	BSS = 151746
	ESS = 151747
	BOG = 151706
	EOG = 151707
	BOC = 151696
	EOC = 151697
)

// Files are the two vocabulary files the model directories ship.
var Files = []string{"emu3.tiktoken", "emu3_vision_tokens.txt"}

// Load reads emu3.tiktoken and emu3_vision_tokens.txt from dir.
func Load(dir string) (*Tokenizer, error) {
	for _, f := range Files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, fmt.Errorf("tokenizer: %s not found in %s (the Emu3.5 model directory ships it; or pass --tokenizer DIR)", f, dir)
		}
	}
	bpe, err := os.ReadFile(filepath.Join(dir, Files[0]))
	if err != nil {
		return nil, err
	}
	vis, err := os.ReadFile(filepath.Join(dir, Files[1]))
	if err != nil {
		return nil, err
	}
	return Parse(bpe, vis)
}

// Parse builds a tokenizer from the contents of the two files.
func Parse(tiktoken, visionTokens []byte) (*Tokenizer, error) {
	t := &Tokenizer{ranks: map[string]int32{}, special: map[string]int32{}}
	sc := bufio.NewScanner(bytes.NewReader(tiktoken))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		b64, r, ok := strings.Cut(s, " ")
		tok, err1 := base64.StdEncoding.DecodeString(b64)
		rank, err2 := strconv.Atoi(r)
		if !ok || err1 != nil || err2 != nil || rank != len(t.tokens) {
			return nil, fmt.Errorf("emu3.tiktoken line %d: want \"<base64> <rank %d>\"", line, len(t.tokens))
		}
		t.ranks[string(tok)] = int32(rank)
		t.tokens = append(t.tokens, tok)
	}
	if len(t.tokens) < 256 {
		return nil, fmt.Errorf("emu3.tiktoken has %d tokens; is it the right file?", len(t.tokens))
	}
	t.NBPE = len(t.tokens)
	add := func(s string) {
		t.special[s] = int32(len(t.tokens))
		t.tokens = append(t.tokens, []byte(s))
	}
	add("<|endoftext|>")
	add("<|im_start|>")
	add("<|im_end|>")
	for i := 0; i <= 204; i++ {
		add(fmt.Sprintf("<|extra_%d|>", i))
	}
	for _, l := range strings.Split(string(visionTokens), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if !strings.HasPrefix(l, "<|") || !strings.HasSuffix(l, "|>") {
				return nil, fmt.Errorf("emu3_vision_tokens.txt: %q is not a <|...|> token", l)
			}
			add(l)
		}
	}
	return t, nil
}

// Size is the vocabulary size (282926 for Emu3.5).
func (t *Tokenizer) Size() int { return len(t.tokens) }

// Special returns the id of a special token string.
func (t *Tokenizer) Special(s string) (int32, bool) {
	id, ok := t.special[s]
	return id, ok
}

// Encode tokenizes text: NFC, special tokens anywhere, then per ordinary segment
// the Qwen pre-tokenization and byte-pair merges.
func (t *Tokenizer) Encode(text string) []int32 {
	text = norm.NFC.String(text)
	var ids []int32
	start := 0 // start of the pending ordinary text
	for i := 0; ; {
		k := strings.Index(text[i:], "<|")
		if k < 0 {
			break
		}
		p := i + k
		e := strings.Index(text[p+2:], "|>")
		if e < 0 {
			break
		}
		// Special strings hold no inner "|>", so this is the only candidate at p.
		if id, ok := t.special[text[p:p+2+e+2]]; ok {
			ids = t.encodeOrdinary(text[start:p], ids)
			ids = append(ids, id)
			start = p + 2 + e + 2
			i = start
		} else {
			i = p + 2
		}
	}
	return t.encodeOrdinary(text[start:], ids)
}

func (t *Tokenizer) encodeOrdinary(s string, ids []int32) []int32 {
	for len(s) > 0 {
		n := pieceLen(s)
		ids = t.bpe(s[:n], ids)
		s = s[n:]
	}
	return ids
}

// bpe appends the ranks of piece's byte-pair merges (tiktoken's algorithm).
func (t *Tokenizer) bpe(piece string, ids []int32) []int32 {
	if id, ok := t.ranks[piece]; ok {
		return append(ids, id)
	}
	// parts[i] is the start of part i; merge the adjacent pair of lowest rank.
	parts := make([]int, len(piece)+1)
	for i := range parts {
		parts[i] = i
	}
	const none = int32(1<<31 - 1)
	rank := func(i int) int32 { // rank of parts i and i+1 joined
		if i+2 >= len(parts) {
			return none
		}
		if r, ok := t.ranks[piece[parts[i]:parts[i+2]]]; ok {
			return r
		}
		return none
	}
	for len(parts) > 2 {
		best, at := none, -1
		for i := 0; i+2 < len(parts); i++ {
			if r := rank(i); r < best {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		parts = append(parts[:at+1], parts[at+2:]...)
	}
	for i := 0; i+1 < len(parts); i++ {
		ids = append(ids, t.ranks[piece[parts[i]:parts[i+1]]])
	}
	return ids
}

// pieceLen is the length of the first pre-tokenization piece of s under
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// with leftmost-first alternation.
func pieceLen(s string) int {
	r0, n0 := utf8.DecodeRuneInString(s)
	// 1: contractions.
	if r0 == '\'' {
		for _, suf := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
			if n := foldPrefix(s[1:], suf); n > 0 {
				return 1 + n
			}
		}
	}
	isL, isN, isNL := unicode.IsLetter, unicode.IsNumber, func(r rune) bool { return r == '\r' || r == '\n' }
	// 2: an optional non-letter/number/newline, then letters.
	{
		i := 0
		if !isNL(r0) && !isL(r0) && !isN(r0) {
			i = n0
		}
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if !isL(r) {
				break
			}
			j += n
		}
		if j > i {
			return j
		}
	}
	// 3: one number.
	if isN(r0) {
		return n0
	}
	// 4: an optional space, symbols, trailing newlines.
	{
		i := 0
		if r0 == ' ' {
			i = 1
		}
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if unicode.IsSpace(r) || isL(r) || isN(r) {
				break
			}
			j += n
		}
		if j > i {
			for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			return j
		}
	}
	// 5-7: whitespace.
	end, lastNL := 0, -1
	for end < len(s) {
		r, n := utf8.DecodeRuneInString(s[end:])
		if !unicode.IsSpace(r) {
			break
		}
		if isNL(r) {
			lastNL = end + n
		}
		end += n
	}
	if lastNL > 0 {
		return lastNL
	}
	if end == len(s) {
		return end
	}
	if end > 0 {
		_, last := utf8.DecodeLastRuneInString(s[:end])
		if end-last > 0 {
			return end - last
		}
		return end
	}
	return n0 // not reached: every rune matches one of the alternatives
}

// foldPrefix returns the byte length of the prefix of s that equals suf under
// Unicode simple case folding, or 0.
func foldPrefix(s, suf string) int {
	i := 0
	for _, want := range suf {
		if i >= len(s) {
			return 0
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !strings.EqualFold(string(r), string(want)) {
			return 0
		}
		i += n
	}
	return i
}

// Decode turns ids back into text (special tokens as their strings); invalid
// UTF-8 becomes U+FFFD per maximal invalid subpart, as Python's "replace" does.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	var b []byte
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.tokens) {
			return "", fmt.Errorf("token id %d is outside the vocabulary [0, %d)", id, len(t.tokens))
		}
		b = append(b, t.tokens[id]...)
	}
	return decodeReplace(b), nil
}

// decodeReplace is Python's bytes.decode("utf-8", "replace").
func decodeReplace(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			sb.WriteRune(r)
			i += n
			continue
		}
		// Invalid: skip the maximal subpart (a valid lead byte and the continuation
		// bytes that could still follow it), emitting one replacement.
		sb.WriteRune(utf8.RuneError)
		i += maximalSubpart(b[i:])
	}
	return sb.String()
}

func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}

func normNFC(s string) []byte { return norm.NFC.Bytes([]byte(s)) }
