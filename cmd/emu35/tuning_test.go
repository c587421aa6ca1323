package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

// A tuning file's entries apply only on their own device and driver, to
// their own weight format and KV cache; a later entry of the same setting key
// replaces an earlier one, and the file reads back what was written.
func TestTuningFile(t *testing.T) {
	o := &ops.Ops{D: &vk.Device{Caps: &vk.Caps{Name: "GPU A", DriverName: "drv", DriverInfo: "1.0"}}, MatVecShapes: ops.DefaultMatVec(), DecodeValueBatch: 0}
	m := &lm.Model{O: o, Format: quant.Q4, KVQ8: true}
	kind := modelKind(m)
	tf := &tuningFile{}
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 1.0", Model: kind, Setting: "q4:wide=64x2x1"})
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 1.0", Model: kind, Setting: "q4:narrow-deep=64x2x1"})
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 1.0", Model: kind, Setting: "q4:wide=32x4x1", Before: 9, After: 8}) // replaces the first
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 1.0", Model: kind, Setting: "attn-values=16"})
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 1.0", Model: "q4 weights, f16 KV cache", Setting: "attn-values=32"})
	tf.set(tuningEntry{Device: "GPU A", Driver: "drv 2.0", Model: kind, Setting: "q4:narrow-short=128x2x1"})
	tf.set(tuningEntry{Device: "GPU B", Driver: "drv 1.0", Model: kind, Setting: "bf16:wide=128x2x1"})
	if len(tf.Entries) != 6 {
		t.Fatalf("%d entries, want 6: %+v", len(tf.Entries), tf.Entries)
	}
	path := filepath.Join(t.TempDir(), "sub", "tuning.json")
	if err := tf.write(path); err != nil {
		t.Fatal(err)
	}
	back, err := readTuning(path)
	if err != nil {
		t.Fatal(err)
	}
	done, err := back.apply(m, path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(done, " ") != "q4:wide=32x4x1 q4:narrow-deep=64x2x1 attn-values=16" || o.DecodeValueBatch != 16 {
		t.Errorf("applied %v (attn-values %d)", done, o.DecodeValueBatch)
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
	back.Entries = append(back.Entries, tuningEntry{Device: "GPU A", Driver: "drv 1.0", Model: kind, Setting: "q4:wide=33x2x1"})
	if _, err := back.apply(m, path); err == nil || !strings.Contains(err.Error(), "33x2x1") {
		t.Errorf("a bad entry: %v", err)
	}
}

// autotune keeps the fastest shape that beat the base in every round at
// every context by enough, or none.
func TestPickSetting(t *testing.T) {
	names := []string{"base", "a", "b", "c"}
	gpu := map[string][][]float64{
		"base": {{10, 10}, {20, 20}},
		"a":    {{9.9, 9.9}, {19.9, 19.8}}, // faster, but by 0.7 %: kept only as the least
		"b":    {{9.0, 10.1}, {18, 18}},    // slower in one round
		"c":    {{9.5, 9.6}, {19.5, 19.4}}, // faster everywhere
	}
	best, before, after := pickSetting(names, gpu)
	if best != "c" || before != 15 || after != 14.5 {
		t.Errorf("picked %q (%.3f → %.3f), want c (15 → 14.5)", best, before, after)
	}
	gpu["c"] = [][]float64{{9.99, 9.99}, {19.99, 19.99}} // within minGain
	gpu["a"] = [][]float64{{10.1, 9.9}, {19.9, 19.8}}
	if best, _, _ := pickSetting(names, gpu); best != "" {
		t.Errorf("picked %q, want none", best)
	}
}

// bench --autotune searches the format's mat-vec shapes and the step's
// knobs, and records what it changed in the --tuning file under this device
// and model kind.
func TestAutotune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tuning.json")
	args := []string{"bench", "--model", "synthetic:tiny", "--weights", "q4", "--ctx", "10", "--steps", "3", "--tuning", path}
	out, err := stdoutOf(func() error { return run(t, append(args, "--autotune")...) })
	requireVulkan(t, err)
	tf, err := readTuning(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every group ends in a verdict; what it changed (on lavapipe the steps'
	// spread decides) is in the file, well formed, once a setting key, faster
	// than before (the file's times are rounded to µs, so by minGain only
	// before rounding: a tiny model's step on a GPU takes a fraction of a ms).
	var changed []string
	verdicts := 0
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "autotune" && strings.HasSuffix(f[1], ":") && !strings.HasSuffix(l, "alternatives") {
			verdicts++
			if f[2] != "kept" {
				changed = append(changed, f[2])
			}
		}
	}
	if verdicts != len(mvWidths)+len(tuneKnobs) {
		t.Errorf("%d verdicts, want %d:\n%s", verdicts, len(mvWidths)+len(tuneKnobs), out)
	}
	seen := map[string]bool{}
	for i, e := range tf.Entries {
		var touch bool
		if setVaried(&ops.Ops{}, &touch, e.Setting) != nil || seen[settingKey(e.Setting)] || e.Model != "q4 weights, q8 KV cache" ||
			e.Device == "" || e.After >= e.Before || e.After <= 0 || i >= len(changed) || changed[i] != e.Setting {
			t.Errorf("entry %d: %+v (changed: %v)", i, e, changed)
		}
		seen[settingKey(e.Setting)] = true
	}
	if len(tf.Entries) != len(changed) {
		t.Errorf("%d entries for %d changes %v", len(tf.Entries), len(changed), changed)
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

// stdoutOf runs f with os.Stdout going to a pipe and returns what it printed.
func stdoutOf(f func() error) (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	saved := os.Stdout
	os.Stdout = w
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	err = f()
	os.Stdout = saved
	w.Close()
	return <-got, err
}
