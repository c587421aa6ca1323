package main

import (
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk/ops"
)

// tuneWidths are the matrix classes autotune searches, in order, by their
// --mv names.
var tuneWidths = []struct {
	name  string
	width ops.MatVecWidth
}{{"wide", ops.Wide}, {"narrow-short", ops.Narrow}, {"narrow-deep", ops.Deep}}

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

// minGain is the least fraction of a step autotune takes for a shape's gain
// rather than the rounds' spread (0.01–0.02 ms in 10–25 ms on an H100).
const minGain = 0.005

// autotune searches m's mat-vec shapes for its weight format, a width at a
// time: it times the decode steps under each candidate shape as --vary does
// (two rounds in ABBA order against the current shapes, timeVaried), keeps
// the fastest candidate that beat the current shape in every round at every
// context by minGain of the step on average, and goes on to the next width
// from there. The chosen shapes go into the --tuning file under this device
// and driver.
func autotune(c *cli.Context, m *lm.Model, maxT int, ctxs []int32, steps stepTimer) error {
	o, f := m.O, m.Format
	var chosen []tuningEntry
	for _, w := range tuneWidths {
		cur := o.MatVecShapes[f][w.width]
		setting := func(s ops.MatVecShape) string { return fmt.Sprintf("%s:%s=%s", f, w.name, s) }
		names := []string{"base"}
		for _, s := range tuneCandidates(f) {
			if s != cur {
				names = append(names, setting(s))
			}
		}
		fmt.Printf("autotune %s: %s against %d shapes\n", w.name, setting(cur), len(names)-1)
		gpu, err := timeVaried(m, maxT, ctxs, names, steps)
		if err != nil {
			return err
		}
		printVaried(os.Stdout, names, ctxs, gpu)
		best, before, after := pickShape(names, gpu)
		if best == "" {
			best = setting(cur)
		} else if err := setShape(o, best); err != nil {
			return err
		}
		fmt.Printf("autotune %s: %s (%.2f → %.2f ms a step on the GPU)\n", w.name, best, before, after)
		ms := func(x float64) float64 { return math.Round(x*1000) / 1000 }
		chosen = append(chosen, tuningEntry{Device: o.D.Caps.Name, Driver: driverOf(o.D.Caps), Setting: best, Before: ms(before), After: ms(after)})
	}
	path := tuningPath(c)
	if path == "" {
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
	fmt.Printf("autotune: recorded in %s for %s (%s); gen, bench and logits apply it on this device and driver\n", path, o.D.Caps.Name, driverOf(o.D.Caps))
	return nil
}

// pickShape picks from timeVaried's medians (names[0] the base) the
// alternative with the least mean GPU time among those faster than the base
// in every round at every context, and by at least minGain of it on average;
// "" if none. before and after are the base's mean and the pick's.
func pickShape(names []string, gpu map[string][][]float64) (best string, before, after float64) {
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
