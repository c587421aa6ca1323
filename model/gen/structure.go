package gen

import (
	"strconv"

	tk "github.com/emu35/emu35/model/tokenizer"
)

// Digit ids: '0'..'9' are 15..24, '*' is 9 (reference-spec §2.1).
const (
	digit0 = 15
	star   = 9
)

// Kind is what the next token choice needs.
type Kind int

const (
	// Text: sample from the conditional logits of ids below BOV, text parameters.
	Text Kind = iota
	// Visual: a visual token by CFG of both branches' visual logits, image parameters.
	Visual
	// Size: a size digit or '*' ("auto" size) from the raw conditional logits of
	// the Allowed ids, image parameters.
	Size
	// Forced: the token is Forced (EOL, EOI, IMG or a preset size digit).
	Forced
)

// Next describes the next choice.
type Next struct {
	Kind    Kind
	Forced  int32
	Allowed []int32 // for Size
}

// Structure is the reference's structure + CFG processor state (§5.3): where the
// conditional sequence is inside an image, and the image grid.
type Structure struct {
	H, W         int  // grid of images being generated (0: not known yet)
	Preset       bool // H and W were given (aspect-ratio preset)
	ForceSame    bool // later images repeat the first one's size
	inImage      bool
	inVisual     bool
	firstInImage bool
	sizeIDs      []int32 // ids between BOI and IMG of the current image
	afterIMG     int     // tokens after IMG so far
	// RowsDone counts the finished rows of the current image (for previews).
	RowsDone int
}

// NewStructure starts the state for a generation with an optional preset grid
// and the unconditional prompt (whose last reference image, if any, fixes the
// grid, as the reference does).
func NewStructure(preset *Ratio, uncond []int32) *Structure {
	s := &Structure{ForceSame: true, firstInImage: true}
	if preset != nil {
		s.H, s.W, s.Preset = preset.H, preset.W, true
	}
	lastBOI, lastIMG := -1, -1
	for i, id := range uncond {
		switch id {
		case tk.BOI:
			lastBOI = i
		case tk.IMG:
			lastIMG = i
		}
	}
	if lastIMG > lastBOI && lastBOI >= 0 {
		if h, w, ok := parseSize(uncond[lastBOI+1 : lastIMG]); ok {
			if !(s.Preset && s.ForceSame) {
				s.H, s.W = h, w
			}
			s.firstInImage = false
		}
	}
	return s
}

// parseSize reads "h*w" from digit and '*' ids.
func parseSize(ids []int32) (int, int, bool) {
	var b []byte
	for _, id := range ids {
		switch {
		case id == star:
			b = append(b, '*')
		case id >= digit0 && id <= digit0+9:
			b = append(b, byte('0'+id-digit0))
		default:
			return 0, 0, false
		}
	}
	hs, ws, ok := cut(string(b), '*')
	h, err1 := strconv.Atoi(hs)
	w, err2 := strconv.Atoi(ws)
	if !ok || err1 != nil || err2 != nil || h <= 0 || w <= 0 {
		return 0, 0, false
	}
	return h, w, true
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// sizeIDsOf is the token form of "h*w".
func sizeIDsOf(h, w int) []int32 {
	var ids []int32
	for _, c := range strconv.Itoa(h) + "*" + strconv.Itoa(w) {
		if c == '*' {
			ids = append(ids, star)
		} else {
			ids = append(ids, digit0+int32(c-'0'))
		}
	}
	return ids
}

// InImage reports whether the conditional sequence is between BOI and EOI.
func (s *Structure) InImage() bool { return s.inImage }

// InVisual reports whether it is after the current image's IMG.
func (s *Structure) InVisual() bool { return s.inVisual }

// Observe updates the state with the token just appended to the conditional sequence.
func (s *Structure) Observe(id int32) {
	switch {
	case id == tk.BOI && !s.inImage:
		s.inImage, s.inVisual, s.sizeIDs, s.afterIMG, s.RowsDone = true, false, nil, 0, 0
	case id == tk.EOI:
		if s.inVisual {
			s.RowsDone++
		}
		s.inImage, s.inVisual = false, false
	case s.inImage && !s.inVisual:
		if id == tk.IMG {
			s.inVisual, s.afterIMG = true, 0
			if s.firstInImage || !s.ForceSame {
				if s.H == 0 || s.W == 0 {
					if h, w, ok := parseSize(s.sizeIDs); ok {
						s.H, s.W = h, w
					}
				}
				s.firstInImage = false
			}
		} else {
			s.sizeIDs = append(s.sizeIDs, id)
		}
	case s.inVisual:
		s.afterIMG++
		if id == tk.EOL {
			s.RowsDone++
		}
	}
}

// Next says what the next token choice needs.
func (s *Structure) Next() Next {
	if !s.inImage {
		return Next{Kind: Text}
	}
	if s.inVisual {
		v := s.afterIMG + 1 // 1-based index after IMG of the token being chosen
		switch {
		case v == s.H*(s.W+1):
			return Next{Kind: Forced, Forced: tk.EOI}
		case v%(s.W+1) == 0:
			return Next{Kind: Forced, Forced: tk.EOL}
		}
		return Next{Kind: Visual}
	}
	j := len(s.sizeIDs) + 1 // 1-based position after BOI
	if s.H > 0 && s.W > 0 {
		hw := sizeIDsOf(s.H, s.W)
		if j <= len(hw) {
			return Next{Kind: Forced, Forced: hw[j-1]}
		}
		return Next{Kind: Forced, Forced: tk.IMG}
	}
	digits := func(from int32) []int32 {
		var ids []int32
		for d := from; d <= digit0+9; d++ {
			ids = append(ids, d)
		}
		return ids
	}
	switch j {
	case 1, 4:
		return Next{Kind: Size, Allowed: digits(digit0 + 1)}
	case 2, 5:
		return Next{Kind: Size, Allowed: digits(digit0)}
	case 3:
		return Next{Kind: Forced, Forced: star}
	}
	return Next{Kind: Forced, Forced: tk.IMG}
}
