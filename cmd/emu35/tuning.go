package main

// tuning.go: the mat-vec shapes `emu35 bench --autotune` measured on one
// device, kept in a file that later runs on the same device and driver apply
// (gen, bench, logits), so that a card other than the ones emu35's defaults
// were measured on (ops.DefaultMatVecFor) gets its own.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

var tuningFlag = &cli.StringFlag{Name: "tuning", Usage: "the file of mat-vec shapes `emu35 bench --autotune` measured, applied where its device and driver are this run's (\"\": tuning.json in $XDG_CACHE_HOME/emu35 or ~/.cache/emu35; \"-\": none)"}

// tuningEntry is one shape a device's autotune chose: Setting as --mv takes
// it (FORMAT:WIDTH=WGxROWSxBPT), with the decode step's GPU time (ms, mean
// over the contexts and rounds) under the shape before and after.
type tuningEntry struct {
	Device  string  `json:"device"`
	Driver  string  `json:"driver"`
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

// settingKey is the format and width a --mv setting sets.
func settingKey(s string) string { k, _, _ := strings.Cut(s, "="); return k }

// set records e, replacing the entry of the same device, driver, format and width.
func (t *tuningFile) set(e tuningEntry) {
	for i, x := range t.Entries {
		if x.Device == e.Device && x.Driver == e.Driver && settingKey(x.Setting) == settingKey(e.Setting) {
			t.Entries[i] = e
			return
		}
	}
	t.Entries = append(t.Entries, e)
}

// apply sets o's mat-vec shapes from the entries of o's device and driver and
// returns the settings it applied.
func (t *tuningFile) apply(o *ops.Ops, path string) ([]string, error) {
	var done []string
	for _, e := range t.Entries {
		if e.Device != o.D.Caps.Name || e.Driver != driverOf(o.D.Caps) {
			continue
		}
		if err := setShape(o, e.Setting); err != nil {
			return nil, fmt.Errorf("the tuning file %s: %q: %w (delete the entry or the file, or pass --tuning -)", path, e.Setting, err)
		}
		done = append(done, e.Setting)
	}
	return done, nil
}

// applyTuning applies the entries of t (read from path) for o's device to o
// and says so on stderr.
func applyTuning(t *tuningFile, path string, o *ops.Ops) error {
	done, err := t.apply(o, path)
	if len(done) > 0 {
		fmt.Fprintf(os.Stderr, "mat-vec shapes autotuned on this device (%s): %s\n", path, strings.Join(done, ", "))
	}
	return err
}
