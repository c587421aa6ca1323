package main

// tuning.go: the settings (mat-vec shapes, decode-step knobs) `emu35 bench
// --autotune` measured on one device, kept in a file that later runs on the
// same device and driver apply (gen, bench, logits), so that a card other than
// the ones emu35's defaults were measured on (ops.DefaultMatVecFor) gets its own.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/vk"
)

var tuningFlag = &cli.StringFlag{Name: "tuning", Usage: "the `FILE` of settings (mat-vec shapes, decode-step knobs) that emu35 bench --autotune measured, applied where its device and driver are this run's (\"\": tuning.json in $XDG_CACHE_HOME/emu35 or ~/.cache/emu35; \"-\": none)"}

// tuningEntry is one setting a device's autotune chose for a model kind
// (modelKind: weight format and KV cache): Setting as --vary takes it (a
// mat-vec shape FORMAT:WIDTH=WGxROWSxBPT or an ops knob NAME=N), with the
// decode step's GPU time (ms, mean over the contexts and rounds) before and
// after.
type tuningEntry struct {
	Device  string  `json:"device"`
	Driver  string  `json:"driver"`
	Model   string  `json:"model"`
	Setting string  `json:"setting"`
	Before  float64 `json:"before_ms"`
	After   float64 `json:"after_ms"`
}

type tuningFile struct {
	Entries []tuningEntry `json:"entries"`
}

// tuningPath is --tuning's file, or "" for none.
func tuningPath(c *cli.Context) string {
	switch p := c.String("tuning"); p {
	case "-":
		return ""
	case "":
		if dir := vk.CacheDir(); dir != "" {
			return filepath.Join(dir, "tuning.json")
		}
		return ""
	default:
		return p
	}
}

// driverOf names d's driver and its version, as tuning entries record it.
func driverOf(d *vk.Caps) string { return strings.TrimSpace(d.DriverName + " " + d.DriverInfo) }

// readTuning reads the tuning file at path; a missing file, or none (""), is
// an empty one.
func readTuning(path string) (*tuningFile, error) {
	t := &tuningFile{}
	if path == "" {
		return t, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the tuning file: %w", err)
	}
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("the tuning file %s is not valid (%v): delete it, rerun `emu35 bench --autotune`, or pass --tuning -", path, err)
	}
	return t, nil
}

// write replaces the file at path with t (through a temporary file, so a
// reader never sees half of it).
func (t *tuningFile) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// modelKind names what a tuning entry applies to besides the device: the
// weight format and the KV cache's.
func modelKind(m *lm.Model) string {
	return fmt.Sprintf("%s weights, %s KV cache", m.Format, kvName(m.KVQ8))
}

// settingKey is what a setting sets: a format and width, or a knob.
func settingKey(s string) string { k, _, _ := strings.Cut(s, "="); return k }

// set records e, replacing the entry of the same device, driver, model kind
// and setting key.
func (t *tuningFile) set(e tuningEntry) {
	for i, x := range t.Entries {
		if x.Device == e.Device && x.Driver == e.Driver && x.Model == e.Model && settingKey(x.Setting) == settingKey(e.Setting) {
			t.Entries[i] = e
			return
		}
	}
	t.Entries = append(t.Entries, e)
}

// apply sets m's settings from the entries of its device, driver and model
// kind and returns the settings it applied.
func (t *tuningFile) apply(m *lm.Model, path string) ([]string, error) {
	var done []string
	o := m.O
	for _, e := range t.Entries {
		if e.Device != o.D.Caps.Name || e.Driver != driverOf(o.D.Caps) || e.Model != modelKind(m) {
			continue
		}
		if err := setVaried(o, &m.TouchWeights, e.Setting); err != nil {
			return nil, fmt.Errorf("the tuning file %s: %q: %w (delete the entry or the file, or pass --tuning -)", path, e.Setting, err)
		}
		done = append(done, e.Setting)
	}
	return done, nil
}

// applyTuning applies the entries of t (read from path) for m's device and
// kind to m and says so on stderr.
func applyTuning(t *tuningFile, path string, m *lm.Model) error {
	done, err := t.apply(m, path)
	if len(done) > 0 {
		fmt.Fprintf(os.Stderr, "settings autotuned on this device for %s (%s): %s\n", modelKind(m), path, strings.Join(done, ", "))
	}
	return err
}
