package tokenizer

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Synthetic builds a byte-level tokenizer with Emu3.5's id layout (for the
// demo, which must run without the real vocabulary files): the 256 byte tokens
// in the real files' order (printable ASCII 33..126 first, so digits are ids
// 15..24 and '*' is 9), filler BPE entries up to id 151642 that no text can
// produce, then the real special and visual tokens. Text round-trips byte by byte.
func Synthetic() *Tokenizer {
	var b strings.Builder
	rank := 0
	line := func(tok []byte) {
		fmt.Fprintf(&b, "%s %d\n", base64.StdEncoding.EncodeToString(tok), rank)
		rank++
	}
	for c := 33; c <= 126; c++ {
		line([]byte{byte(c)})
	}
	for c := 0; c < 256; c++ {
		if c < 33 || c > 126 {
			line([]byte{byte(c)})
		}
	}
	for rank < 151643 {
		// Invalid UTF-8 pairs with a marker: no NFC text contains them.
		line([]byte{0xFF, 0xFE, byte(rank >> 16), byte(rank >> 8), byte(rank)})
	}
	var v strings.Builder
	v.WriteString("<|image token|>\n<|image start|>\n<|image end|>\n")
	for k := 0; k < 131072; k++ {
		fmt.Fprintf(&v, "<|visual token %06d|>\n", k)
	}
	t, err := Parse([]byte(b.String()), []byte(v.String()))
	if err != nil {
		panic(err) // the generated files are well-formed by construction
	}
	return t
}
