// Package gen is Emu3.5's generation: prompts for the six tasks, the structure
// rules and classifier-free guidance of the reference's logits processor,
// differential sampling, the generation loop over a language-model session, and
// the parsed, decoded outputs.
package gen

import (
	"fmt"
	"strings"

	"github.com/emu35/emu35/model/tokenizer"
)

// Tasks are the reference's task names.
var Tasks = []string{"t2i", "x2i", "howto", "story", "explore", "vla"}

const (
	system   = "<|extra_203|>You are a helpful assistant"
	assist   = " ASSISTANT: <|extra_100|>"
	imageTag = "<|IMAGE|>"
	howtoExt = " Please generate a response with interleaved text and images."
)

// Templates returns the conditional and unconditional prompt strings of §3.1 for
// task, question and whether reference images are given (their serialised form
// replaces <|IMAGE|> later).
func Templates(task, question string, withImage bool) (cond, uncond string, err error) {
	known := false
	for _, t := range Tasks {
		known = known || t == task
	}
	if !known {
		return "", "", fmt.Errorf("unknown task %q (want one of %s)", task, strings.Join(Tasks, ", "))
	}
	extra := ""
	if task == "howto" || task == "explore" {
		extra = howtoExt
	}
	head := system + " for " + task + " task." + extra + " USER: "
	switch {
	case !withImage:
		return head + question + assist, system + ". USER: " + assist, nil
	case task == "x2i": // the x2i config puts the images before the question
		return head + imageTag + question + assist, system + ". USER: " + imageTag + assist, nil
	default:
		return head + question + imageTag + assist, system + ". USER: " + imageTag + assist, nil
	}
}

// ImageString serialises a code grid [h, w] as §3.3: BOI h*w IMG rows joined by
// EOL, EOI.
func ImageString(codes []int32, h, w int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<|image start|>%d*%d<|image token|>", h, w)
	for r := 0; r < h; r++ {
		if r > 0 {
			b.WriteString("<|extra_200|>")
		}
		for c := 0; c < w; c++ {
			fmt.Fprintf(&b, "<|visual token %06d|>", codes[r*w+c])
		}
	}
	b.WriteString("<|image end|>")
	return b.String()
}

// Prompts tokenises the conditional and unconditional prompts, replacing
// <|IMAGE|> in both by the concatenated reference images.
func Prompts(tk *tokenizer.Tokenizer, task, question string, images []string) (cond, uncond []int32, err error) {
	c, u, err := Templates(task, question, len(images) > 0)
	if err != nil {
		return nil, nil, err
	}
	all := strings.Join(images, "")
	c, u = strings.ReplaceAll(c, imageTag, all), strings.ReplaceAll(u, imageTag, all)
	cond, uncond = tk.Encode(c), tk.Encode(u)
	if len(cond) == 0 || cond[0] != tokenizer.BOS {
		cond = append([]int32{tokenizer.BOS}, cond...)
	}
	return cond, uncond, nil
}

// Ratio is an aspect-ratio preset: the image grid in tokens (rows × columns).
type Ratio struct{ H, W int }

// Ratios are the t2i presets of §3.4 ("auto" leaves the size to the model).
var Ratios = map[string]Ratio{
	"4:3": {55, 73}, "21:9": {41, 97}, "16:9": {47, 85}, "3:2": {52, 78}, "1:1": {64, 64},
	"3:4": {73, 55}, "9:16": {85, 47}, "2:3": {78, 52}, "default": {55, 73},
}

// ParseRatio reads a preset name, "auto", or an explicit "HxW" grid.
func ParseRatio(s string) (Ratio, bool, error) {
	if s == "" || s == "auto" {
		return Ratio{}, false, nil
	}
	if r, ok := Ratios[s]; ok {
		return r, true, nil
	}
	var h, w int
	if n, err := fmt.Sscanf(s, "%dx%d", &h, &w); err == nil && n == 2 && h > 0 && w > 0 && h <= 256 && w <= 256 {
		return Ratio{h, w}, true, nil
	}
	names := make([]string, 0, len(Ratios))
	for k := range Ratios {
		names = append(names, k)
	}
	return Ratio{}, false, fmt.Errorf("--ratio %q: want auto, one of %s, or a grid HxW", s, strings.Join(names, ", "))
}
