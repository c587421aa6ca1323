package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/model/fixtures"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/model/safetensors"
	"github.com/emu35/emu35/vk/ops"
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

// bench --quick validates every product kernel and times a few cases; --tune
// times a float format's mat-vec shapes.
func TestBenchQuick(t *testing.T) {
	requireVulkan(t, run(t, "bench", "--quick", "--reps", "1", "--only", "matvec_q4|rmsnorm"))
	if err := run(t, "bench", "--tune", "--quick", "--reps", "1", "--only", "bf16"); err != nil {
		t.Fatal("--tune:", err)
	}
	// The dispatch chains: three grids, with and without barriers, each row
	// the time of one dispatch.
	out, err := stdoutOf(func() error { return run(t, "bench", "--quick", "--reps", "1", "--only", "dispatch_chain") })
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`(?m)^dispatch_chain +(\d+) wg, (barriers|no barriers) +([0-9.]+)`).FindAllStringSubmatch(out, -1)
	if len(rows) != 6 {
		t.Fatalf("want 6 dispatch_chain rows, got %d:\n%s", len(rows), out)
	}
	for _, r := range rows {
		if us, _ := strconv.ParseFloat(r[3], 64); !(us > 0 && us < 1e5) {
			t.Errorf("a dispatch of %s workgroups with %s took %s µs", r[1], r[2], r[3])
		}
	}
}

// bench --e2e --quick generates and decodes one whole image with the demo's
// tiny models; it fails unless the run yields exactly one image.
func TestBenchE2EQuick(t *testing.T) {
	t2i, err := stdoutOf(func() error { return run(t, "bench", "--e2e", "--quick", "--ratio", "4x4") })
	requireVulkan(t, err)
	if err := run(t, "bench", "--e2e", "--quick", "--ratio", "4x4", "--kv", "q8"); err != nil {
		t.Fatal("with an int8 KV cache:", err)
	}
	if err := run(t, "bench", "--e2e", "--quick", "--ratio", "4x4", "--one-by-one", "--qnarrow", "128"); err != nil {
		t.Fatal("one token a pass:", err)
	}
	// x2i after two reference images of the grid: a longer prompt, the image
	// forced to the references' grid.
	out, err := stdoutOf(func() error { return run(t, "bench", "--e2e", "--quick", "--ratio", "4x4", "--refs", "2") })
	if err != nil {
		t.Fatal("--refs 2:", err)
	}
	prompt := func(out string) int {
		if m := regexp.MustCompile(`\((\d+) prompt tokens\)`).FindStringSubmatch(out); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
		return 0
	}
	// Each 4×4 reference adds BOI, "4*4", IMG, 16 visual tokens, 3 EOLs and
	// EOI to the prompt (the x2i template's text differs by a few tokens).
	if n, n0 := prompt(out), prompt(t2i); !strings.Contains(out, "x2i 64x64 px") || !strings.Contains(out, "after 2 reference images") || n < n0+2*(16+3+3) {
		t.Fatalf("--refs 2 printed no x2i image after two references (%d prompt tokens, t2i %d):\n%s", n, n0, out)
	}
	if err := run(t, "bench", "--e2e", "--quick", "--refs", "4"); err == nil || !strings.Contains(err.Error(), "--refs") {
		t.Fatalf("--refs 4: %v", err)
	}
}

// bench --stats lists the pipelines' driver statistics after the run where the
// device keeps them, and otherwise fails saying which extension it lacks.
func TestBenchStats(t *testing.T) {
	err := run(t, "bench", "--quick", "--reps", "1", "--only", "rmsnorm", "--stats")
	if err != nil && strings.Contains(err.Error(), "lacks VK_KHR_pipeline_executable_properties") {
		return // lavapipe
	}
	requireVulkan(t, err)
}

func TestBenchBadFlag(t *testing.T) {
	if err := run(t, "bench", "--only", "(("); err == nil {
		t.Fatal("a bad --only regexp was accepted")
	}
	if err := run(t, "bench", "--e2e", "--quick", "--kv", "q3"); err == nil || !strings.Contains(err.Error(), "--kv") {
		t.Fatalf("--kv q3: %v", err)
	}
	for _, bad := range [][]string{{"--coop-bk", "48"}, {"--coop-wg", "384"}, {"--attn-prefetch", "33"}, {"--qshape", "33x2x1"}, {"--attn-values", "33"}, {"--attn-values", "-1"}, {"--touch", "yes"}, {"--attn-heads", "65"}, {"--qnarrow", "48"}, {"--qnarrow", "2048"}, {"--mv", "bf16=48x2x1"}, {"--mv", "q5=32x2x1"}, {"--mv", "bf16:tall=32x2x1"}, {"--mv", "bf16"}, {"--mv", "q4=32x0x1"}, {"--touch-stride", "-4"}, {"--touch-at", "2"}} {
		if err := run(t, append([]string{"bench", "--only", "stream"}, bad...)...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%s %s: %v", bad[0], bad[1], err)
		}
	}
}

// --mv sets one format's shapes: one width, the two narrow ones, or all.
func TestSetShape(t *testing.T) {
	o := &ops.Ops{MatVecShapes: ops.DefaultMatVec()}
	want := ops.DefaultMatVec()
	for _, v := range []string{"bf16:narrow=64x2x1", "q8=128x4x2", "f16:wide=256x8x1", "q4:narrow-short=32x1x1", "f32:narrow-deep=64x1x1"} {
		if err := setShape(o, v); err != nil {
			t.Fatal(v, err)
		}
	}
	want[quant.BF16][ops.Narrow] = ops.MatVecShape{WG: 64, Rows: 2, BPT: 1}
	want[quant.BF16][ops.Deep] = ops.MatVecShape{WG: 64, Rows: 2, BPT: 1}
	want[quant.Q8_0] = ops.AllWidths(ops.MatVecShape{WG: 128, Rows: 4, BPT: 2})
	want[quant.F16][ops.Wide] = ops.MatVecShape{WG: 256, Rows: 8, BPT: 1}
	want[quant.Q4][ops.Narrow] = ops.MatVecShape{WG: 32, Rows: 1, BPT: 1}
	want[quant.F32][ops.Deep] = ops.MatVecShape{WG: 64, Rows: 1, BPT: 1}
	if o.MatVecShapes != want {
		t.Fatalf("shapes %v, want %v", o.MatVecShapes, want)
	}
}

// bench --model --vary times steps with each alternative, and names a bad one
// before running any.
func TestBenchVary(t *testing.T) {
	args := []string{"bench", "--model", "synthetic:tiny", "--weights", "bf16", "--prefill", "0", "--ctx", "10", "--steps", "2"}
	requireVulkan(t, run(t, append(args, "--vary", "bf16:narrow=64x2x1+attn-values=16", "--vary", "attn-heads=1+touch=on+qkv-heads=0+touch-stride=512+norm-wg=16", "--vary", "touch-at=0")...))
	for _, bad := range []string{"attn-values=66", "touch=yes", "qkv-heads=48", "touch-stride=0", "norm-wg=12", "touch-at=2", "attn-heads=3", "bf16:tall=32x2x1", "q4=33x2x1"} {
		if err := run(t, append(args, "--vary", "attn-heads=1", "--vary", bad)...); err == nil || !strings.Contains(err.Error(), "--vary \""+bad) {
			t.Errorf("--vary %s: %v", bad, err)
		}
	}
}

// The --vary summary gives each alternative's rounds and the difference of
// their mean from the base's, by context.
func TestPrintVaried(t *testing.T) {
	var b bytes.Buffer
	printVaried(&b, []string{"base", "touch-stride=1024"}, []int32{1000, 4000}, map[string][][]float64{
		"base": {{10, 10.2}, {11, 11}}, "touch-stride=1024": {{9.8, 9.9}, {11.5, 11.5}}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "context 1000") || !strings.Contains(lines[1], "context 4000") ||
		!strings.Contains(lines[2], "10.00 10.20") || strings.Contains(lines[2], "(") ||
		!strings.Contains(lines[3], "9.80 9.90 (-0.25)") || !strings.Contains(lines[3], "11.50 11.50 (+0.50)") {
		t.Fatalf("summary:\n%s", b.String())
	}
}

// --attn-heads must divide the model's query heads per KV head: a run given
// one that does not says so instead of ignoring it.
func TestBenchAttnHeadsKnob(t *testing.T) {
	requireVulkan(t, run(t, "devices"))
	err := run(t, "bench", "--e2e", "--quick", "--ratio", "4x4", "--attn-heads", "3")
	if err == nil || !strings.Contains(err.Error(), "--attn-heads 3") {
		t.Fatalf("--attn-heads 3: %v", err)
	}
}

// emu35 logits reproduces the reference's prefill and decode logits.
func TestLogitsCommand(t *testing.T) {
	dir := fixtures.Dir(t, "lm-tiny")
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
	dir := fixtures.Dir(t, "vq-tiny")
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
	dir := fixtures.Dir(t, "tokenizer")
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

// The demo, as CI runs it: t2i with a small preset grid and x2i with a reference
// image; PNG sizes, the token layout, and the .pb decoded by protoc and by emu35 view.
func TestGenDemo(t *testing.T) {
	out := t.TempDir()
	requireVulkan(t, run(t, "gen", "--demo", "--task", "t2i", "--ratio", "3x4", "--image-first", "--stop-at-eoi", "--seed", "5", "--out", out+"/t2i"))
	checkDemo(t, out+"/t2i/000", 3, 4)
	ref := out + "/ref.png"
	img := image.NewRGBA(image.Rect(0, 0, 80, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 13)
	}
	f, _ := os.Create(ref)
	png.Encode(f, img)
	f.Close()
	requireVulkan(t, run(t, "gen", "--demo", "--task", "x2i", "--image", ref, "--image-area", "2560", "--image-first", "--stop-at-eoi", "--prompt", "Make it blue.", "--out", out+"/x2i"))
	checkDemo(t, out+"/x2i/000", 2, 5) // the reference image's grid: 32×80 px
	if err := run(t, "view", "--out", out+"/view", out+"/x2i/000/story.pb"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"000_question.txt", "000_reference_image.png", "001_00_image.png", "story.md"} {
		if _, err := os.Stat(out + "/view/" + f); err != nil {
			t.Errorf("emu35 view did not write %s", f)
		}
	}
	// Bad requests fail with an error, not a panic.
	for _, args := range [][]string{
		{"gen", "--demo", "--task", "paint"},
		{"gen", "--demo", "--task", "x2i"},
		{"gen", "--demo", "--ratio", "5:4"},
		{"gen", "--model", t.TempDir(), "--vq", t.TempDir(), "--prompt", "x"},
	} {
		if err := run(t, args...); err == nil {
			t.Errorf("accepted %v", args)
		}
	}
}

func checkDemo(t *testing.T, dir string, h, w int) {
	t.Helper()
	f, err := os.Open(dir + "/image_01.png")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() != 16*w || img.Bounds().Dy() != 16*h {
		t.Fatalf("image %v: %v", img.Bounds(), err)
	}
	b, _ := os.ReadFile(dir + "/tokens.txt")
	var ids []int
	for _, s := range strings.Fields(string(b)) {
		v, _ := strconv.Atoi(s)
		ids = append(ids, v)
	}
	// BOI h*w IMG, h rows of w visual tokens, EOL between rows, EOI.
	size := fmt.Sprintf("%d*%d", h, w)
	if ids[0] != 151852 || len(ids) != 1+len(size)+1+h*(w+1) || ids[len(ids)-1] != 151853 || ids[1+len(size)] != 151851 {
		t.Fatalf("token layout %v", ids)
	}
	for i, ch := range size {
		want := 15 + int(ch-'0')
		if ch == '*' {
			want = 9
		}
		if ids[1+i] != want {
			t.Fatalf("size tokens %v", ids[:1+len(size)])
		}
	}
	body := ids[2+len(size):]
	for r := 0; r < h; r++ {
		for c := 0; c < w; c++ {
			if body[r*(w+1)+c] < 151854 {
				t.Fatalf("row %d col %d is not visual", r, c)
			}
		}
		if r < h-1 && body[r*(w+1)+w] != 151846 {
			t.Fatalf("row %d does not end with EOL", r)
		}
	}
	// The .pb decodes with protoc and the reference's schema.
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		if os.Getenv("EMU35_REQUIRE_FIXTURES") == "1" {
			t.Fatal("protoc is not installed (make deps installs protobuf-compiler)")
		}
		t.Skip("protoc not installed")
	}
	pb, _ := os.ReadFile(dir + "/story.pb")
	cmd := exec.Command(protoc, "--decode=emu3p5.story.Story", "-I", "../../model/gen/storypb", "interleave_story.proto")
	cmd.Stdin = bytes.NewReader(pb)
	txt, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(txt), "format: PNG") || !strings.Contains(string(txt), fmt.Sprintf("width: %d", 16*w)) {
		t.Fatalf("protoc --decode: %v\n%s", err, txt)
	}
}

// The kernel table names each coopmat_peak mode by its bits.
func TestPeakMode(t *testing.T) {
	for m, want := range map[int]string{
		0: "regs", 1: "smem-x", 3: "smem-x+smem-w", 7: "smem-x+smem-w+barriers", 10: "smem-w+w[k][n]",
		23: "smem-x+smem-w+paired+barriers", 34: "mem-w", 35: "smem-x+mem-w", 103: "smem-x+mem-w+shared-barriers", 4: "regs+barriers",
	} {
		if got := peakMode(m); got != want {
			t.Errorf("peakMode(%d) = %q, want %q", m, got, want)
		}
	}
}
