//go:build noviewer

package viewer

import (
	"errors"
	"image"

	"github.com/emu35/emu35/vk"
)

// Init fails: this binary was built with -tags noviewer.
func Init() ([]string, error) {
	return nil, errors.New("this emu35 was built with -tags noviewer: the window is not available (use --out to render files)")
}

// DeviceExtensions are unused without the viewer.
var DeviceExtensions []string

// Window is absent without the viewer.
type Window struct{}

// Open fails without the viewer.
func Open(*vk.Device, string, int, int) (*Window, error) { return nil, errors.New("no viewer") }

func (*Window) Size() (int, int)                 { return 0, 0 }
func (*Window) SetTitle(string)                  {}
func (*Window) Poll() ([]Key, bool)              { return nil, true }
func (*Window) Show(*image.RGBA, int, int) error { return nil }
func (*Window) Close()                           {}
