//go:build noviewer

package viewer

import (
	"errors"
	"image"

	"github.com/emu35/emu35/vk"
)

// ErrNoDisplay means there is no display to open a window on.
var ErrNoDisplay = errors.New("no display")

// Init fails: this binary was built with -tags noviewer.
func Init() ([]string, error) {
	return nil, errors.New("this emu35 was built with -tags noviewer: the window is not available (use --out to render files)")
}

// DeviceExtensions are unused without the viewer.
var DeviceExtensions []string

// Key is a key press the window reports.
type Key int

const (
	KeyNone Key = iota
	KeyLeft
	KeyRight
	KeySave
	KeyQuit
)

// Window is absent without the viewer.
type Window struct{}

// Open fails without the viewer.
func Open(*vk.Device, string, int, int) (*Window, error) { return nil, errors.New("no viewer") }

func (*Window) Size() (int, int)                 { return 0, 0 }
func (*Window) SetTitle(string)                  {}
func (*Window) Poll() ([]Key, bool)              { return nil, true }
func (*Window) Show(*image.RGBA, int, int) error { return nil }
func (*Window) Close()                           {}
