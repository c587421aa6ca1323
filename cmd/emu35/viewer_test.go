//go:build !noviewer

package main

import (
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needTools skips (or, in CI, fails) when the X tools of the viewer test are missing.
func needTools(t *testing.T, tools ...string) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("EMU35_REQUIRE_VULKAN") == "1" {
				t.Fatalf("%s is not installed (make deps installs xvfb, imagemagick and x11-utils)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// emu35 gen --demo --view on a virtual display: the window exists, a screenshot
// taken during generation shows a partial image that differs from the final
// one, and the final window content is the saved PNG (scaled).
func TestViewerLive(t *testing.T) {
	needTools(t, "Xvfb", "import", "xwininfo")
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "emu35")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	disp := ":" + strconv.Itoa(70+os.Getpid()%20)
	x := exec.Command("Xvfb", disp, "-screen", "0", "640x480x24")
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	defer x.Process.Kill()
	time.Sleep(time.Second)
	out := filepath.Join(tmp, "out")
	// The window is held long after the run (the test ends it once it has its
	// screenshot), so that a loaded machine still sees it.
	gen := exec.Command(bin, "gen", "--demo", "--view", "--view-hold", "60", "--ratio", "12x12", "--image-first", "--stop-at-eoi", "--out", out)
	gen.Env = append(os.Environ(), "DISPLAY="+disp)
	log, _ := os.Create(filepath.Join(tmp, "gen.log"))
	gen.Stdout, gen.Stderr = log, log
	if err := gen.Start(); err != nil {
		t.Fatal(err)
	}
	shot := func(name string) string {
		p := filepath.Join(tmp, name)
		exec.Command("import", "-display", disp, "-window", "root", p).Run()
		return p
	}
	var partial []string
	var geom string
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(700 * time.Millisecond)
		if _, err := os.Stat(filepath.Join(out, "000", "story.pb")); err == nil {
			break
		}
		partial = append(partial, shot("partial"+strconv.Itoa(len(partial))+".png"))
		if tree, _ := exec.Command("xwininfo", "-display", disp, "-root", "-tree").Output(); geom == "" {
			if m := regexp.MustCompile(`"emu35[^\n]*\s(\d+)x(\d+)\+(\d+)\+(\d+)`).FindStringSubmatch(string(tree)); m != nil {
				geom = strings.Join(m[1:], " ")
			}
		}
	}
	// The title says "done" once the final image is on screen.
	done := false
	for end := time.Now().Add(time.Minute); !done && time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		tree, _ := exec.Command("xwininfo", "-display", disp, "-root", "-tree").Output()
		done = strings.Contains(string(tree), "done:")
	}
	final := ""
	if done {
		time.Sleep(500 * time.Millisecond)
		final = shot("final.png")
	}
	gen.Process.Kill()
	gen.Wait()
	logb, _ := os.ReadFile(filepath.Join(tmp, "gen.log"))
	t.Logf("%s", logb[max(0, len(logb)-300):])
	if !done {
		t.Fatal(`the window's title never said "done:" within a minute of the run's end`)
	}
	if geom == "" {
		t.Fatal("no emu35 window seen by xwininfo")
	}
	var ww, wh, wx, wy int
	for i, p := range strings.Fields(geom) {
		v, _ := strconv.Atoi(p)
		*[]*int{&ww, &wh, &wx, &wy}[i] = v
	}
	crop := func(img image.Image) func(x, y int) [3]uint32 {
		return func(x, y int) [3]uint32 {
			r, g, b, _ := img.At(wx+x, wy+y).RGBA()
			return [3]uint32{r >> 8, g >> 8, b >> 8}
		}
	}
	fin := crop(readPNG(t, final))
	saved := readPNG(t, filepath.Join(out, "000", "image_01.png"))
	sw, sh := saved.Bounds().Dx(), saved.Bounds().Dy()
	// Final window content = the saved PNG, nearest-scaled into the window.
	bad := 0
	for y := 0; y < wh; y++ {
		for x := 0; x < ww; x++ {
			r, g, b, _ := saved.At(x*sw/ww, y*sh/wh).RGBA()
			p := fin(x, y)
			d := func(a, b uint32) uint32 {
				if a > b {
					return a - b
				}
				return b - a
			}
			if d(p[0], r>>8) > 2 || d(p[1], g>>8) > 2 || d(p[2], b>>8) > 2 {
				bad++
			}
		}
	}
	if bad > ww*wh/100 {
		t.Fatalf("final window differs from the saved PNG at %d of %d pixels", bad, ww*wh)
	}
	// emu35 view browses the result in the same window.
	view := exec.Command(bin, "view", "--view-hold", "1", filepath.Join(out, "000", "story.pb"))
	view.Env = append(os.Environ(), "DISPLAY="+disp)
	if b, err := view.CombinedOutput(); err != nil {
		t.Fatalf("emu35 view: %v\n%s", err, b)
	}
	// Some screenshot during generation differs from the final content.
	differs := false
	for _, p := range partial {
		pp := crop(readPNG(t, p))
		diff := 0
		for y := 0; y < wh; y += 4 {
			for x := 0; x < ww; x += 4 {
				if pp(x, y) != fin(x, y) {
					diff++
				}
			}
		}
		differs = differs || diff > ww*wh/16/10
	}
	if !differs {
		t.Fatalf("no screenshot during generation (%d taken) differed from the final image", len(partial))
	}
}

// --view fails at once, before loading anything, without a display.
func TestViewerNoDisplay(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	err := run(t, "gen", "--demo", "--view", "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "DISPLAY") {
		t.Fatalf("--view without a display: %v", err)
	}
}
