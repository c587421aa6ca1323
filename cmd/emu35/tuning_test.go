package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

// A tuning file's entries apply only on their own device and driver; a
// later entry of the same format and width replaces an earlier one, and the
// file reads back what was written.
func TestTuningFile(t *testing.T) {
	o := &ops.Ops{D: &vk.Device{Caps: &vk.Caps{Name: "GPU A", DriverName: "drv", DriverInfo: "1.0"}}, MatVecShapes: ops.DefaultMatVec()}
	tf := &tuningFile{}
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 1.0", Setting: "q4:wide=64x2x1"})
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 1.0", Setting: "q4:narrow-deep=64x2x1"})
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 1.0", Setting: "q4:wide=32x4x1", Before: 9, After: 8}) // replaces the first
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 2.0", Setting: "q4:narrow-short=128x2x1"})
	tf.set(tuningEntry{Device: "GPU B", Driver: "drv 1.0", Setting: "bf16:wide=128x2x1"})
	if len(tf.Entries) != 4 {
		t.Fatalf("%d entries, want 4: %+v", len(tf.Entries), tf.Entries)
	}
	path := filepath.Join(t.TempDir(), "sub", "tuning.json")
	if err := tf.write(path); err != nil {
		t.Fatal(err)
	}
	back, err := readTuning(path)
	if err != nil {
		t.Fatal(err)
	}
	done, err := back.apply(o, path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(done, " ") != "q4:wide=32x4x1 q4:narrow-deep=64x2x1" {
		t.Errorf("applied %v", done)
	}
	want := ops.DefaultMatVec()
	want[quant.Q4][ops.Wide] = ops.MatVecShape{WG: 32, Rows: 4, BPT: 1}
	want[quant.Q4][ops.Deep] = ops.MatVecShape{WG: 64, Rows: 2, BPT: 1}
	if o.MatVecShapes != want {
		t.Errorf("shapes %v, want %v", o.MatVecShapes, want)
	}
	// No file is no tuning; a broken one, or a bad entry for this device, an error that says what to do.
	if tf, err := readTuning(filepath.Join(t.TempDir(), "none.json")); err != nil || len(tf.Entries) != 0 {
		t.Errorf("a missing file: %+v, %v", tf, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"entries": [`), 0o644)
	if _, err := readTuning(bad); err == nil || !strings.Contains(err.Error(), "--tuning -") {
		t.Errorf("a broken file: %v", err)
	}
	back.Entries = append(back.Entries, tuningEntry{Device: "GPU A", Driver: "drv 1.0", Setting: "q4:wide=33x2x1"})
	if _, err := back.apply(o, path); err == nil || !strings.Contains(err.Error(), "33x2x1") {
		t.Errorf("a bad entry: %v", err)
	}
}

// autotune keeps the fastest shape that beat the base in every round at
// every context by enough, or none.
func TestPickShape(t *testing.T) {
	names := []string{"base", "a", "b", "c"}
	gpu := map[string][][]float64{
		"base": {{10, 10}, {20, 20}},
		"a":    {{9.9, 9.9}, {19.9, 19.8}}, // faster, but by 0.7 %: kept only as the least
		"b":    {{9.0, 10.1}, {18, 18}},    // slower in one round
		"c":    {{9.5, 9.6}, {19.5, 19.4}}, // faster everywhere
	}
	best, before, after := pickShape(names, gpu)
	if best != "c" || before != 15 || after != 14.5 {
		t.Errorf("picked %q (%.3f → %.3f), want c (15 → 14.5)", best, before, after)
	}
	gpu["c"] = [][]float64{{9.99, 9.99}, {19.99, 19.99}} // within minGain
	gpu["a"] = [][]float64{{10.1, 9.9}, {19.9, 19.8}}
	if best, _, _ := pickShape(names, gpu); best != "" {
		t.Errorf("picked %q, want none", best)
	}
}

// bench --autotune searches every width of the format's mat-vec shapes,
// records its choice in the --tuning file under this device, and a later run
// applies it.
func TestAutotune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tuning.json")
	args := []string{"bench", "--model", "synthetic:tiny", "--weights", "q4", "--ctx", "10", "--steps", "3", "--tuning", path}
	requireVulkan(t, run(t, append(args, "--autotune")...))
	tf, err := readTuning(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tf.Entries) != 3 {
		t.Fatalf("%d entries, want one a width: %+v", len(tf.Entries), tf.Entries)
	}
	for i, e := range tf.Entries {
		o := &ops.Ops{}
		if !strings.HasPrefix(e.Setting, "q4:"+tuneWidths[i].name+"=") || setShape(o, e.Setting) != nil ||
			e.Device == "" || e.After > e.Before || e.After <= 0 {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	if err := run(t, append(args, "--autotune", "--vary", "attn-heads=1")...); err == nil || !strings.Contains(err.Error(), "--vary") {
		t.Errorf("--autotune with --vary: %v", err)
	}
	// A broken file stops the run, before the model loads, with what to do.
	os.WriteFile(path, []byte("{"), 0o644)
	if err := run(t, append(args, "--prefill", "0")...); err == nil || !strings.Contains(err.Error(), "--tuning -") {
		t.Errorf("a broken tuning file: %v", err)
	}
}
