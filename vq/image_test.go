package vq

import (
	"fmt"
	"image"
	"testing"
)

// The worked examples of reference-spec §4.1.
func TestSmartResize(t *testing.T) {
	for _, c := range []struct{ w, h, area, ww, wh int }{
		{1024, 1024, 1048576, 1024, 1024}, {1024, 1024, 518400, 720, 720}, {1000, 750, 1048576, 1184, 880},
		{1920, 1080, 1048576, 1360, 768}, {1920, 1080, 518400, 960, 544}, {300, 1200, 1048576, 512, 2048},
	} {
		w, h := SmartResize(c.w, c.h, c.area, 16)
		if w != c.ww || h != c.wh {
			t.Errorf("%d×%d @%d: %d×%d, want %d×%d", c.w, c.h, c.area, w, h, c.ww, c.wh)
		}
	}
}

func TestResize(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 37, 23))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	// A constant image stays constant through the fixed-point filter.
	flat := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range flat.Pix {
		flat.Pix[i] = 200
	}
	for _, sz := range [][2]int{{16, 16}, {64, 48}, {37, 23}} {
		out := Resize(flat, sz[0], sz[1])
		for i, v := range out.Pix {
			if v != 200 && i%4 != 3 {
				t.Fatalf("constant image resized to %v has %d at %d", sz, v, i)
			}
		}
		if r := Resize(src, sz[0], sz[1]); r.Bounds().Dx() != sz[0] || r.Bounds().Dy() != sz[1] {
			t.Fatalf("size %v", r.Bounds())
		}
	}
	// Pixels round-trip through ToPixels/FromPixels within the reference's
	// truncation (float32 (v/127.5−1+1)·127.5 can land just below v).
	back := FromPixels(ToPixels(src), 37, 23)
	for i := range src.Pix {
		if d := int(src.Pix[i]) - int(back.Pix[i]); i%4 != 3 && (d < 0 || d > 1) {
			t.Fatalf("pixel %d: %d -> %d", i, src.Pix[i], back.Pix[i])
		}
	}
}

// Resize equals Pillow 9.4's Image.resize(..., BICUBIC) byte for byte (goldens
// made with Debian's python3-pil: testdata/resize_*.png).
func TestResizeMatchesPillow(t *testing.T) {
	src, err := LoadImage("testdata/resize_src.png")
	if err != nil {
		t.Fatal(err)
	}
	for _, sz := range [][2]int{{48, 32}, {160, 96}, {97, 30}, {33, 61}} {
		want, err := LoadImage(fmt.Sprintf("testdata/resize_%dx%d.png", sz[0], sz[1]))
		if err != nil {
			t.Fatal(err)
		}
		got := Resize(src, sz[0], sz[1])
		diff, worst := 0, 0
		for i := range got.Pix {
			if d := int(got.Pix[i]) - int(want.Pix[i]); d != 0 {
				diff++
				worst = max(worst, d, -d)
			}
		}
		if diff > 0 {
			t.Errorf("%v: %d bytes differ from Pillow (worst by %d)", sz, diff, worst)
		}
	}
}
