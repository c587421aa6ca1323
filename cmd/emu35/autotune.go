package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk/ops"
)

// tuneCandidates are the mat-vec shapes autotune tries for weights of format f:
// the shapes the H100 and H200 searches found best or close (docs/performance.md)
// and their neighbours.
func tuneCandidates(f quant.Format) []ops.MatVecShape {
	list := "32x4x1 64x2x1 64x4x1 128x1x1 128x2x1 128x4x1 256x1x1 256x2x1 256x4x1"
	if f.Blocked() {
		list = "32x1x1 32x2x1 32x4x1 64x1x1 64x2x1 64x4x1 128x2x1 32x2x2 64x2x2"
	}
	var out []ops.MatVecShape
	for _, v := range strings.Fields(list) {
		s, _ := parseShape(v) // (valid)
		out = append(out, s)
	}
	return out
}

// tuneKnobs are the ops knobs autotune searches after the shapes, with the
// values it tries (opsKnobs' names and units).
var tuneKnobs = []struct {
	name   string
	values []int
}{
	{"attn-values", []int{8, 16, 24, 32}},
	{"attn-prefetch", []int{4, 8, 16}},
	{"qkv-heads", []int{0, 512, 1024}},
	{"norm-wg", []int{32, 64, 128}},
	{"touch-stride", []int{512, 1024, 2048}},
}

// tuneGroup is one search of autotune: the --vary settings tried against the
// current ones.
type tuneGroup struct {
	name string
	alts []string
}

// tuneGroups are autotune's searches for weights of format f from o's
// current settings, in order: a matrix class's shapes each (mvWidths), then
// each knob's values (the current one left out of each).
func tuneGroups(o *ops.Ops, f quant.Format) []tuneGroup {
	var gs []tuneGroup
	for _, w := range mvWidths {
		g := tuneGroup{name: w.name}
		for _, s := range tuneCandidates(f) {
			if s != o.MatVecShapes[f][w.width] {
				g.alts = append(g.alts, fmt.Sprintf("%s:%s=%s", f, w.name, s))
			}
		}
		gs = append(gs, g)
	}
	for _, k := range tuneKnobs {
		knob := opsKnobs(o)[k.name]
		g := tuneGroup{name: k.name}
		for _, v := range k.values {
			if uint32(v*knob.unit) != *knob.dst {
				g.alts = append(g.alts, k.name+"="+strconv.Itoa(v))
			}
		}
		gs = append(gs, g)
	}
	return gs
}

// minGain is the least fraction of a step autotune takes for a setting's gain
// rather than the rounds' spread (0.01–0.02 ms in 10–25 ms on an H100).
const minGain = 0.005

// autotune searches m's mat-vec shapes for its weight format, a matrix class
// at a time, then the decode step's ops knobs, a knob at a time: it times the
// decode steps under each alternative as --vary does (two rounds in ABBA
// order against the current settings, timeVaried), keeps the fastest
// alternative that beat the current settings in every round at every context
// by minGain of the step on average, and goes on from there. What it changed
// goes into the --tuning file under this device, driver, weight format and
// KV cache.
func autotune(c *cli.Context, m *lm.Model, maxT int, ctxs []int32, steps stepTimer) error {
	o := m.O
	var chosen []tuningEntry
	for _, g := range tuneGroups(o, m.Format) {
		names := append([]string{"base"}, g.alts...)
		fmt.Printf("autotune %s: %d alternatives\n", g.name, len(g.alts))
		gpu, err := timeVaried(m, maxT, ctxs, names, steps)
		if err != nil {
			return err
		}
		printVaried(os.Stdout, names, ctxs, gpu)
		best, before, after := pickSetting(names, gpu)
		if best == "" {
			fmt.Printf("autotune %s: kept (%.2f ms a step on the GPU)\n", g.name, before)
			continue
		}
		if err := setVaried(o, &m.TouchWeights, best); err != nil {
			return err
		}
		fmt.Printf("autotune %s: %s (%.2f → %.2f ms a step on the GPU)\n", g.name, best, before, after)
		ms := func(x float64) float64 { return math.Round(x*1000) / 1000 }
		chosen = append(chosen, tuningEntry{Device: o.D.Caps.Name, Driver: driverOf(o.D.Caps), Model: modelKind(m), Setting: best, Before: ms(before), After: ms(after)})
	}
	path := tuningPath(c)
	switch {
	case len(chosen) == 0:
		fmt.Println("autotune: every setting kept; nothing to record")
		return nil
	case path == "":
		fmt.Println("autotune: not recorded (--tuning -)")
		return nil
	}
	t, err := readTuning(path)
	if err != nil {
		return err
	}
	for _, e := range chosen {
		t.set(e)
	}
	if err := t.write(path); err != nil {
		return fmt.Errorf("writing the tuning file: %w", err)
	}
	fmt.Printf("autotune: recorded in %s for %s (%s), %s; gen, bench and logits apply it there\n", path, o.D.Caps.Name, driverOf(o.D.Caps), modelKind(m))
	return nil
}

// pickSetting picks from timeVaried's medians (names[0] the base) the
// alternative with the least mean GPU time among those faster than the base
// in every round at every context, and by at least minGain of it on average;
// "" if none. before and after are the base's mean and the pick's.
func pickSetting(names []string, gpu map[string][][]float64) (best string, before, after float64) {
	mean := func(name string) float64 {
		var s float64
		var n int
		for _, rounds := range gpu[name] {
			for _, x := range rounds {
				s += x
				n++
			}
		}
		return s / float64(n)
	}
	base := names[0]
	before, after = mean(base), mean(base)
	for _, name := range names[1:] {
		wins := true
		for j, rounds := range gpu[name] {
			for r, x := range rounds {
				wins = wins && x < gpu[base][j][r]
			}
		}
		if m := mean(name); wins && m <= before*(1-minGain) && m < after {
			best, after = name, m
		}
	}
	return best, before, after
}
