package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"math"
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

// emu35 vq decode writes the reference's pixels (PNG within one 8-bit step of
// the clamped golden, safetensors raw); emu35 vq encode finds the golden codes.
func TestVQCommands(t *testing.T) {
	dir := fixtureDir(t, "vq-tiny")
	g, err := safetensors.Open(dir + "/golden.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	codes, _ := g.Tensors["codes"].I32()
	want, _ := g.Tensors["decoded"].F32()
	var cs []string
	for _, c := range codes {
		cs = append(cs, strconv.Itoa(int(c)))
	}
	tmp := t.TempDir()
	requireVulkan(t, run(t, "vq", "decode", "--vq", dir, "--codes", strings.Join(cs, ","), "--grid", "4x5", "--out", tmp+"/a.png"))
	f, err := os.Open(tmp + "/a.png")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() != 80 || img.Bounds().Dy() != 64 {
		t.Fatalf("png: %v %v", err, img.Bounds())
	}
	for y := 0; y < 64; y++ {
		for x := 0; x < 80; x++ {
			r, gg, b, _ := img.At(x, y).RGBA()
			for c, v := range []uint32{r >> 8, gg >> 8, b >> 8} {
				ref := math.Min(255, math.Max(0, float64((want[(c*64+y)*80+x]+1)*127.5)))
				if math.Abs(float64(v)-math.Floor(ref)) > 1 {
					t.Fatalf("pixel (%d,%d,%d) = %d, reference %.2f", x, y, c, v, ref)
				}
			}
		}
	}
	requireVulkan(t, run(t, "vq", "decode", "--vq", dir, "--codes", strings.Join(cs, ","), "--grid", "4x5", "--out", tmp+"/a.safetensors"))
	out, err := safetensors.Open(tmp + "/a.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	px, _ := out.Tensors["pixels"].F32()
	out.Close()
	if e := cpu.NMSE(px, want); !(e <= 1e-4) {
		t.Fatalf("decoded pixels NMSE %g", e)
	}
	// Encode the golden input (safetensors, used as is).
	in, _ := g.Tensors["encode_input"].F32()
	safetensors.Write(tmp+"/in.safetensors", []*safetensors.Tensor{safetensors.F32Tensor("pixels", []int{3, 64, 80}, in)})
	requireVulkan(t, run(t, "vq", "encode", "--vq", dir, "--image", tmp+"/in.safetensors", "--out", tmp+"/codes.json"))
	var res struct {
		Grid  [2]int  `json:"grid"`
		Codes []int32 `json:"codes"`
	}
	b, _ := os.ReadFile(tmp + "/codes.json")
	if err := json.Unmarshal(b, &res); err != nil || res.Grid != [2]int{4, 5} {
		t.Fatalf("codes.json: %s %v", b, err)
	}
	wantCodes, _ := g.Tensors["encode_codes"].I32()
	margin, _ := g.Tensors["encode_top2_margin"].F32()
	for i := range wantCodes {
		if res.Codes[i] != wantCodes[i] && margin[i] > 1e-3 {
			t.Fatalf("code %d: %d, want %d", i, res.Codes[i], wantCodes[i])
		}
	}
	// A PNG input goes through the reference's resize: 80×64 at area 5120 → 80×64 (grid 4×5).
	requireVulkan(t, run(t, "vq", "encode", "--vq", dir, "--image", tmp+"/a.png", "--area", "5120", "--out", tmp+"/c2.json"))
	// Bad input gets errors, not panics.
	for _, args := range [][]string{
		{"vq", "decode", "--vq", dir, "--codes", "1,2,3", "--grid", "2x2", "--out", tmp + "/x.png"},
		{"vq", "decode", "--vq", dir, "--codes", "1,2,3,99999", "--grid", "2x2", "--out", tmp + "/x.png"},
		{"vq", "decode", "--vq", dir, "--codes", "1", "--grid", "ax1", "--out", tmp + "/x.png"},
		{"vq", "encode", "--vq", dir, "--image", tmp + "/codes.json", "--out", tmp + "/x.json"},
		{"vq", "decode", "--vq", t.TempDir(), "--codes", "1", "--grid", "1x1", "--out", tmp + "/x.png"},
	} {
		if err := run(t, args...); err == nil {
			t.Errorf("accepted %v", args)
		}
	}
}

func TestTokenizeCommand(t *testing.T) {
	dir := fixtureDir(t, "tokenizer")
	var out strings.Builder
	a := app()
	a.Writer = &out
	if err := a.Run([]string{"emu35", "tokenize", "--tokenizer", dir, "--text", "55*73"}); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != "[20,20,9,22,18]" {
		t.Fatalf("tokenize: %q", out.String())
	}
	out.Reset()
	if err := a.Run([]string{"emu35", "tokenize", "--tokenizer", dir, "--decode", "151852,17,9,18,151851"}); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != "<|image start|>2*3<|image token|>" {
		t.Fatalf("decode: %q", out.String())
	}
	if err := a.Run([]string{"emu35", "tokenize", "--tokenizer", t.TempDir(), "--text", "x"}); err == nil {
		t.Fatal("a directory without the vocabulary files was accepted")
	}
}
