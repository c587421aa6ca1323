package main

import (
	"fmt"
	"math/rand"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/vk"
)

// benchVQ times the vision tokenizer: decoding a grid of codes and encoding an
// image of the matching size.
func benchVQ(c *cli.Context, d *vk.Device) error {
	h, w, err := parseGrid(c.String("grid"))
	if err != nil {
		return err
	}
	m, err := openVQ(c, d, false)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := applyKnobs(c, m.O); err != nil {
		return err
	}
	f := m.Cfg.Factor()
	fmt.Printf("device: %s (%s)\nvision tokenizer: %s, %s convolution weights %.2f GiB, tensor cores %v\n",
		d.Caps.Name, d.Caps.Type, c.String("vq"), m.Format, float64(m.Bytes())/(1<<30), m.O.CoopMat)
	r := rand.New(rand.NewSource(1))
	codes := make([]int32, h*w)
	for i := range codes {
		codes[i] = int32(r.Intn(m.Cfg.CodebookSize))
	}
	t0 := time.Now()
	if err := m.Warm(c.Context); err != nil {
		return err
	}
	fmt.Printf("building the decoder's pipelines (a 2x2 decode): %.3f s\n", time.Since(t0).Seconds())
	var best time.Duration
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		if _, err := m.Decode(c.Context, codes, h, w); err != nil {
			return err
		}
		if dt := time.Since(t0); i == 0 || dt < best {
			best = dt
		}
	}
	fmt.Printf("decode %dx%d codes -> %dx%d pixels: %.3f s (best of 3, including upload and readback); activations %.2f GiB\n",
		h, w, f*h, f*w, best.Seconds(), float64(m.WorkBytes(h, w))/(1<<30))
	prof, err := m.ProfileDecode(c.Context, codes, h, w)
	if err != nil {
		return err
	}
	printProfile("the decode by op and grid (w×h), timestamps after every op; host: wall clock", prof, nil, 0)
	px := make([]float32, 3*f*h*f*w)
	for i := range px {
		px[i] = float32(r.Float64()*2 - 1)
	}
	for i := 0; i < 2; i++ {
		t0 := time.Now()
		if _, _, err := m.Encode(c.Context, px, f*h, f*w); err != nil {
			return err
		}
		if dt := time.Since(t0); i == 0 || dt < best {
			best = dt
		}
	}
	fmt.Printf("encode %dx%d pixels -> %dx%d codes: %.3f s (best of 2)\n", f*h, f*w, h, w, best.Seconds())
	return nil
}
