package gen

import (
	"strings"

	tk "github.com/emu35/emu35/model/tokenizer"
)

// Item is one parsed piece of a generation (§5.7).
type Item struct {
	Kind  string // "text", "global_cot", "image_cot", "image"
	Text  string
	Codes []int32 // image: [H, W] row-major
	H, W  int
	// Partial marks an image cut short (generation stopped inside it): only its
	// finished rows are kept.
	Partial bool
}

// Parse splits generated ids into text, chains of thought and images as the
// reference's multimodal_decode does (ESS and EOS removed; BOG…EOG, BOC…EOC,
// BOI…EOI segments; whitespace-only text dropped). An unfinished image keeps its
// finished rows and is marked Partial (the reference drops it).
func Parse(t *tk.Tokenizer, ids []int32) ([]Item, error) {
	var clean []int32
	for _, id := range ids {
		if id != tk.ESS && id != tk.EOS {
			clean = append(clean, id)
		}
	}
	var items []Item
	var text []int32
	flush := func() error {
		if len(text) == 0 {
			return nil
		}
		s, err := t.Decode(text)
		text = nil
		if err != nil {
			return err
		}
		if strings.TrimSpace(s) != "" {
			items = append(items, Item{Kind: "text", Text: s})
		}
		return nil
	}
	find := func(from int, id int32) int {
		for i := from; i < len(clean); i++ {
			if clean[i] == id {
				return i
			}
		}
		return -1
	}
	for i := 0; i < len(clean); i++ {
		id := clean[i]
		var end int32
		kind := ""
		switch id {
		case tk.BOG:
			end, kind = tk.EOG, "global_cot"
		case tk.BOC:
			end, kind = tk.EOC, "image_cot"
		case tk.BOI:
			end, kind = tk.EOI, "image"
		}
		if kind == "" {
			text = append(text, id)
			continue
		}
		j := find(i+1, end)
		if j < 0 && kind != "image" {
			text = append(text, id) // an unclosed marker stays text
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		if kind == "image" {
			stop := j
			if j < 0 {
				stop = len(clean)
			}
			if it, ok := imageItem(clean[i+1:stop], j < 0); ok {
				items = append(items, it)
			}
			if j < 0 {
				return items, nil
			}
			i = j
			continue
		}
		s, err := t.Decode(clean[i+1 : j])
		if err != nil {
			return nil, err
		}
		items = append(items, Item{Kind: kind, Text: s})
		i = j
	}
	return items, flush()
}

// imageItem reads the rows of an image body (the ids between BOI and EOI):
// rows of visual tokens split by EOL, all of one length (the size text and IMG
// are ignored, as the reference does).
func imageItem(body []int32, partial bool) (Item, bool) {
	var rows [][]int32
	var row []int32
	for _, id := range body {
		switch {
		case id == tk.EOL:
			if len(row) > 0 {
				rows = append(rows, row)
			}
			row = nil
		case id >= tk.BOV:
			row = append(row, id-tk.BOV)
		}
	}
	if len(row) > 0 && (!partial || (len(rows) > 0 && len(row) == len(rows[0]))) {
		rows = append(rows, row) // an unfinished last row is dropped
	}
	if len(rows) == 0 {
		return Item{}, false
	}
	w := len(rows[0])
	var codes []int32
	for _, r := range rows {
		if len(r) != w {
			return Item{}, false // "decode image failed" in the reference
		}
		codes = append(codes, r...)
	}
	return Item{Kind: "image", Codes: codes, H: len(rows), W: w, Partial: partial}, true
}
