package viewer

import (
	"image"
	"testing"
)

func TestFitKeepsAspect(t *testing.T) {
	for _, c := range []struct {
		iw, ih, ww, wh int
		want           image.Rectangle
	}{
		{100, 50, 400, 400, image.Rect(0, 100, 400, 300)},
		{50, 100, 400, 400, image.Rect(100, 0, 300, 400)},
		{64, 64, 256, 256, image.Rect(0, 0, 256, 256)},
	} {
		if got := Fit(c.iw, c.ih, c.ww, c.wh); got != c.want {
			t.Errorf("Fit(%d×%d in %d×%d) = %v, want %v", c.iw, c.ih, c.ww, c.wh, got, c.want)
		}
	}
}

// A partial image shows its rows and the placeholder below them.
func TestComposePartial(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 4, 2))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	dst := make([]byte, 4*4*4)
	Compose(dst, 4, 4, img, 4, 4)
	if dst[0] != 200 || dst[4*4*3] != Placeholder[2] {
		t.Fatalf("top %d, bottom %d", dst[0], dst[4*4*3])
	}
}
