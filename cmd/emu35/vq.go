package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/safetensors"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vq"
)

var (
	vqFlag  = &cli.StringFlag{Name: "vq", Usage: "Emu3.5-VisionTokenizer directory (config.json + model.safetensors, or config.yaml + model.ckpt), or synthetic:emu3.5"}
	f16Flag = &cli.BoolFlag{Name: "vq-f16", Usage: "store the vision tokenizer's convolution weights in f16 (half the memory; always so on GPUs with tensor cores, whose convolutions read f16)"}
)

// openVQ loads --vq (decodeOnly: without the encoder's weights).
func openVQ(c *cli.Context, d *vk.Device, decodeOnly bool) (*vq.Model, error) {
	path := c.String("vq")
	if path == "" {
		return nil, fmt.Errorf("--vq is required: a BAAI/Emu3.5-VisionTokenizer directory, or synthetic:emu3.5")
	}
	o := vq.Options{F16: c.Bool("vq-f16"), DecodeOnly: decodeOnly}
	if name, ok := strings.CutPrefix(path, "synthetic:"); ok {
		if name != "emu3.5" && name != "emu35" {
			return nil, fmt.Errorf("--vq %s: unknown synthetic tokenizer (want synthetic:emu3.5)", path)
		}
		fmt.Fprintln(os.Stderr, "building a synthetic vision tokenizer with random weights (outputs are noise)")
		return vq.NewSynthetic(d, vq.Emu35(), o, 1)
	}
	return vq.Load(d, path, o)
}

// parseGrid reads "HxW".
func parseGrid(s string) (int, int, error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	h, err1 := strconv.Atoi(a)
	w, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || h <= 0 || w <= 0 || h > 1024 || w > 1024 {
		return 0, 0, fmt.Errorf("--grid %q: want HxW token rows × columns, e.g. 64x64", s)
	}
	return h, w, nil
}

func vqCmd() *cli.Command {
	return &cli.Command{
		Name:  "vq",
		Usage: "the IBQ vision tokenizer: decode codes to an image, encode an image to codes",
		Subcommands: []*cli.Command{
			{
				Name:  "decode",
				Usage: "decode a grid of codes to a .png (8-bit) or .safetensors (float32 pixels [3, 16H, 16W], before clamping)",
				Flags: []cli.Flag{deviceFlag, vqFlag, f16Flag,
					&cli.StringFlag{Name: "codes", Required: true, Usage: "codes, comma-separated, row by row"},
					&cli.StringFlag{Name: "grid", Required: true, Usage: "HxW: rows × columns of codes"},
					&cli.StringFlag{Name: "out", Required: true, Usage: "output .png or .safetensors"}},
				Action: func(c *cli.Context) error {
					h, w, err := parseGrid(c.String("grid"))
					if err != nil {
						return err
					}
					codes, err := parseIDs("codes", c.String("codes"))
					if err != nil {
						return err
					}
					if len(codes) != h*w {
						return fmt.Errorf("--codes has %d codes; a %dx%d grid needs %d", len(codes), h, w, h*w)
					}
					out := c.String("out")
					ext := strings.ToLower(filepath.Ext(out))
					if ext != ".png" && ext != ".safetensors" {
						return fmt.Errorf("--out %s: want a .png or .safetensors file", out)
					}
					return withVQ(c, func(m *vq.Model) error {
						px, err := m.Decode(c.Context, codes, h, w)
						if err != nil {
							return err
						}
						f := m.Cfg.Factor()
						if ext == ".safetensors" {
							return safetensors.Write(out, []*safetensors.Tensor{safetensors.F32Tensor("pixels", []int{m.Cfg.OutCh, f * h, f * w}, px)})
						}
						return writePNG(out, vq.FromPixels(px, f*w, f*h))
					})
				},
			},
			{
				Name:  "encode",
				Usage: "encode a PNG/JPEG (resized as the reference does) or a .safetensors `pixels` [3, H, W] in [-1, 1] to codes (JSON)",
				Flags: []cli.Flag{deviceFlag, vqFlag, f16Flag,
					&cli.StringFlag{Name: "image", Required: true, Usage: "input .png, .jpg or .safetensors"},
					&cli.IntFlag{Name: "area", Value: 1048576, Usage: "pixel budget images are resized to (the reference's image_area)"},
					&cli.StringFlag{Name: "out", Required: true, Usage: "output .json: {\"grid\": [h, w], \"codes\": [...]}"}},
				Action: func(c *cli.Context) error {
					return withVQ(c, func(m *vq.Model) error { return encode(c, m) })
				},
			},
		},
	}
}

// encode runs emu35 vq encode with the tokenizer open.
func encode(c *cli.Context, m *vq.Model) error {
	in := c.String("image")
	var px []float32
	var H, W int
	if strings.EqualFold(filepath.Ext(in), ".safetensors") {
		f, err := safetensors.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		t := f.Tensors["pixels"]
		if t == nil || len(t.Shape) != 3 || t.Shape[0] != 3 {
			return fmt.Errorf("%s: want a float32 tensor `pixels` [3, H, W]", in)
		}
		if px, err = t.F32(); err != nil {
			return err
		}
		H, W = t.Shape[1], t.Shape[2]
	} else {
		img, err := vq.LoadImage(in)
		if err != nil {
			return err
		}
		W, H = vq.SmartResize(img.Bounds().Dx(), img.Bounds().Dy(), c.Int("area"), m.Cfg.Factor())
		px = vq.ToPixels(vq.Resize(img, W, H))
	}
	codes, _, err := m.Encode(c.Context, px, H, W)
	if err != nil {
		return err
	}
	f := m.Cfg.Factor()
	b, _ := json.Marshal(struct {
		Grid  [2]int  `json:"grid"`
		Codes []int32 `json:"codes"`
	}{[2]int{H / f, W / f}, codes})
	return writeAtomic(c.String("out"), append(b, '\n'))
}

// withVQ opens the device and --vq, runs f, and closes both.
func withVQ(c *cli.Context, f func(m *vq.Model) error) error {
	d, err := openDevice(c)
	if err != nil {
		return err
	}
	defer d.Close()
	m, err := openVQ(c, d, false)
	if err != nil {
		return err
	}
	defer m.Close()
	return f(m)
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writePNG writes img atomically.
func writePNG(path string, img image.Image) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
