// Package viewer is emu35's window: a GLFW window whose Vulkan surface and
// swapchain belong to the engine's own device, showing images as they are
// generated (finished rows decoded, the rest a neutral placeholder) and
// browsing finished results. Build with -tags noviewer to leave it out.
package viewer

import (
	"errors"
	"image"
)

// ErrNoDisplay means there is no display to open a window on.
var ErrNoDisplay = errors.New("no display")

// Key is a key press the window reports.
type Key int

const (
	KeyNone Key = iota
	KeyLeft
	KeyRight
	KeySave
	KeyQuit
)

// Background is the window colour around the image; Placeholder fills the rows
// of an image not generated yet.
var (
	Background  = [3]uint8{24, 24, 24}
	Placeholder = [3]uint8{128, 128, 128}
)

// Fit is where an image of iw×ih goes in a window of ww×wh: the largest
// rectangle of the image's aspect ratio, centred.
func Fit(iw, ih, ww, wh int) image.Rectangle {
	if iw <= 0 || ih <= 0 || ww <= 0 || wh <= 0 {
		return image.Rectangle{}
	}
	w, h := ww, ww*ih/iw
	if h > wh {
		w, h = wh*iw/ih, wh
	}
	x, y := (ww-w)/2, (wh-h)/2
	return image.Rect(x, y, x+w, y+h)
}

// Compose draws img (or a placeholder of fullW×fullH when img covers only its
// top rows) letterboxed into a BGRA frame of ww×wh, scaled by nearest neighbour.
// fullW×fullH is the finished image's size (img may be smaller: a partial one).
func Compose(dst []byte, ww, wh int, img *image.RGBA, fullW, fullH int) {
	for i := 0; i+3 < len(dst); i += 4 {
		dst[i], dst[i+1], dst[i+2], dst[i+3] = Background[2], Background[1], Background[0], 255
	}
	r := Fit(fullW, fullH, ww, wh)
	if r.Empty() {
		return
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		sy := (y - r.Min.Y) * fullH / r.Dy()
		for x := r.Min.X; x < r.Max.X; x++ {
			sx := (x - r.Min.X) * fullW / r.Dx()
			o := 4 * (y*ww + x)
			if img != nil && sy < img.Bounds().Dy() && sx < img.Bounds().Dx() {
				p := img.Pix[sy*img.Stride+4*sx:]
				dst[o], dst[o+1], dst[o+2] = p[2], p[1], p[0]
			} else {
				dst[o], dst[o+1], dst[o+2] = Placeholder[2], Placeholder[1], Placeholder[0]
			}
		}
	}
}
