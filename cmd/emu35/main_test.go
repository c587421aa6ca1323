package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/model/safetensors"
)

func run(t *testing.T, args ...string) error {
	t.Helper()
	return app().Run(append([]string{"emu35"}, args...))
}

func requireVulkan(t *testing.T, err error) {
	t.Helper()
	if err != nil && os.Getenv("EMU35_REQUIRE_VULKAN") != "1" {
		t.Skipf("no Vulkan: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestDevices(t *testing.T) { requireVulkan(t, run(t, "devices")) }

// bench --quick validates every product kernel and times a few cases.
func TestBenchQuick(t *testing.T) {
	requireVulkan(t, run(t, "bench", "--quick", "--reps", "1", "--only", "matvec_q4|rmsnorm"))
}

func TestBenchBadFlag(t *testing.T) {
	if err := run(t, "bench", "--only", "(("); err == nil {
		t.Fatal("a bad --only regexp was accepted")
	}
}

func fixtureDir(t *testing.T, name string) string {
	dir := os.Getenv("EMU35_FIXTURES")
	if dir == "" {
		dir = "../../../shared/fixtures"
	}
	dir = dir + "/" + name
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("EMU35_REQUIRE_FIXTURES") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return dir
}

// emu35 logits reproduces the reference's prefill and decode logits.
func TestLogitsCommand(t *testing.T) {
	dir := fixtureDir(t, "lm-tiny")
	g, err := safetensors.Open(dir + "/golden.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ids, _ := g.Tensors["prompt_ids"].I32()
	dec, _ := g.Tensors["decode_ids"].I32()
	join := func(x []int32) string {
		var s []string
		for _, v := range x {
			s = append(s, strconv.Itoa(int(v)))
		}
		return strings.Join(s, ",")
	}
	out := t.TempDir() + "/l.safetensors"
	requireVulkan(t, run(t, "logits", "--model", dir, "--weights", "bf16", "--ids", join(ids), "--step-ids", join(dec), "--out", out))
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range []string{"prefill_logits", "decode_logits"} {
		got, _ := f.Tensors[name].F32()
		want, _ := g.Tensors[name].F32()
		if e := cpu.NMSE(got, want); !(e <= 1e-4) || fmt.Sprint(f.Tensors[name].Shape) != fmt.Sprint(g.Tensors[name].Shape) {
			t.Errorf("%s: NMSE %g, shape %v", name, e, f.Tensors[name].Shape)
		}
	}
	if err := run(t, "logits", "--model", dir, "--ids", "1,99999", "--out", out); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("out-of-range id: %v", err)
	}
	if err := run(t, "logits", "--model", t.TempDir(), "--ids", "1", "--out", out); err == nil {
		t.Error("an empty model directory was accepted")
	}
}
