// Package vq is the IBQ vision tokenizer of Emu3.5 on the GPU: its decoder turns
// a grid of codes into pixels, its encoder turns a reference image into codes.
package vq

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Config is the IBQ configuration: config.json's flat fields (the hub form) or
// config.yaml's n_embed/embed_dim/ddconfig (the research form).
type Config struct {
	CodebookSize    int   `json:"codebook_size"`
	EmbedDim        int   `json:"embed_dim"`
	ZChannels       int   `json:"z_channels"`
	Ch              int   `json:"ch"`
	ChMult          []int `json:"ch_mult"`
	NumResBlocks    int   `json:"num_res_blocks"`
	AttnResolutions []int `json:"attn_resolutions"`
	Resolution      int   `json:"resolution"`
	InChannels      int   `json:"in_channels"`
	OutCh           int   `json:"out_ch"`
	DoubleZ         bool  `json:"double_z"`
}

// Emu35 is BAAI/Emu3.5-VisionTokenizer's configuration (reference-spec §6.1).
func Emu35() Config {
	return Config{CodebookSize: 131072, EmbedDim: 256, ZChannels: 256, Ch: 256, ChMult: []int{1, 1, 2, 2, 4},
		NumResBlocks: 4, AttnResolutions: []int{16}, Resolution: 256, InChannels: 3, OutCh: 3}
}

type yamlConfig struct {
	NEmbed   int `yaml:"n_embed"`
	EmbedDim int `yaml:"embed_dim"`
	DDConfig struct {
		DoubleZ         bool  `yaml:"double_z"`
		ZChannels       int   `yaml:"z_channels"`
		Resolution      int   `yaml:"resolution"`
		InChannels      int   `yaml:"in_channels"`
		OutCh           int   `yaml:"out_ch"`
		Ch              int   `yaml:"ch"`
		ChMult          []int `yaml:"ch_mult"`
		NumResBlocks    int   `yaml:"num_res_blocks"`
		AttnResolutions []int `yaml:"attn_resolutions"`
	} `yaml:"ddconfig"`
}

// ParseJSON reads config.json.
func ParseJSON(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("not valid JSON: %w", err)
	}
	return c, c.Validate()
}

// ParseYAML reads the research form's config.yaml.
func ParseYAML(b []byte) (Config, error) {
	var y yamlConfig
	if err := yaml.Unmarshal(b, &y); err != nil {
		return Config{}, fmt.Errorf("not valid YAML: %w", err)
	}
	d := y.DDConfig
	c := Config{CodebookSize: y.NEmbed, EmbedDim: y.EmbedDim, ZChannels: d.ZChannels, Ch: d.Ch, ChMult: d.ChMult,
		NumResBlocks: d.NumResBlocks, AttnResolutions: d.AttnResolutions, Resolution: d.Resolution,
		InChannels: d.InChannels, OutCh: d.OutCh, DoubleZ: d.DoubleZ}
	return c, c.Validate()
}

// Validate checks the configuration describes an IBQ model emu35 can run.
func (c Config) Validate() error {
	for _, v := range []struct {
		n    int
		name string
	}{{c.CodebookSize, "codebook_size"}, {c.EmbedDim, "embed_dim"}, {c.ZChannels, "z_channels"}, {c.Ch, "ch"},
		{c.NumResBlocks, "num_res_blocks"}, {c.Resolution, "resolution"}, {c.InChannels, "in_channels"}, {c.OutCh, "out_ch"}} {
		if v.n <= 0 || v.n > 1<<20 {
			return fmt.Errorf("%s = %d is out of range", v.name, v.n)
		}
	}
	if len(c.ChMult) == 0 || len(c.ChMult) > 8 {
		return fmt.Errorf("ch_mult %v: want 1 to 8 levels", c.ChMult)
	}
	for _, m := range c.ChMult {
		if m <= 0 || m > 64 || (c.Ch*m)%32 != 0 {
			return fmt.Errorf("ch_mult %v with ch %d: channel counts must be positive multiples of 32 (GroupNorm of 32 groups)", c.ChMult, c.Ch)
		}
	}
	if c.DoubleZ {
		return fmt.Errorf("double_z is not supported (IBQ uses a single z)")
	}
	return nil
}

// Factor is the down/upsampling between pixels and codes (16 for Emu3.5).
func (c Config) Factor() int { return 1 << (len(c.ChMult) - 1) }

func (c Config) attnAt(res int) bool {
	for _, r := range c.AttnResolutions {
		if r == res {
			return true
		}
	}
	return false
}

// LoadConfig reads dir/config.json, or dir/config.yaml when there is no JSON.
func LoadConfig(dir string) (Config, error) {
	if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		c, err := ParseJSON(b)
		if err != nil {
			return c, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
		}
		return c, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		return Config{}, fmt.Errorf("%s has neither config.json nor config.yaml (is it an Emu3.5-VisionTokenizer directory?)", dir)
	}
	c, err := ParseYAML(b)
	if err != nil {
		return c, fmt.Errorf("%s: %w", filepath.Join(dir, "config.yaml"), err)
	}
	return c, nil
}

// Shape is one checkpoint tensor.
type Shape struct {
	Name  string
	Shape []int
}

// Tensors lists every tensor of the checkpoint with its shape (reference-spec §6.6).
func (c Config) Tensors() []Shape {
	var ts []Shape
	add := func(name string, shape ...int) { ts = append(ts, Shape{name, shape}) }
	conv := func(name string, cout, cin, k int) {
		add(name+".weight", cout, cin, k, k)
		add(name+".bias", cout)
	}
	norm := func(name string, ch int) {
		add(name+".weight", ch)
		add(name+".bias", ch)
	}
	res := func(name string, cin, cout int) {
		norm(name+".norm1", cin)
		conv(name+".conv1", cout, cin, 3)
		norm(name+".norm2", cout)
		conv(name+".conv2", cout, cout, 3)
		if cin != cout {
			conv(name+".nin_shortcut", cout, cin, 1)
		}
	}
	attn := func(name string, ch int) {
		norm(name+".norm", ch)
		for _, p := range []string{"q", "k", "v", "proj_out"} {
			conv(name+"."+p, ch, ch, 1)
		}
	}
	L, C := len(c.ChMult), c.Ch
	// Encoder.
	conv("encoder.conv_in", C, c.InChannels, 3)
	bin, cur := C, c.Resolution
	for i := 0; i < L; i++ {
		bout := C * c.ChMult[i]
		for j := 0; j < c.NumResBlocks; j++ {
			res(fmt.Sprintf("encoder.down.%d.block.%d", i, j), bin, bout)
			bin = bout
			if c.attnAt(cur) {
				attn(fmt.Sprintf("encoder.down.%d.attn.%d", i, j), bin)
			}
		}
		if i != L-1 {
			conv(fmt.Sprintf("encoder.down.%d.downsample.conv", i), bin, bin, 3)
			cur /= 2
		}
	}
	res("encoder.mid.block_1", bin, bin)
	attn("encoder.mid.attn_1", bin)
	res("encoder.mid.block_2", bin, bin)
	norm("encoder.norm_out", bin)
	conv("encoder.conv_out", c.ZChannels, bin, 3)
	conv("quant_conv", c.EmbedDim, c.ZChannels, 1)
	add("quantize.embedding.weight", c.CodebookSize, c.EmbedDim)
	conv("post_quant_conv", c.ZChannels, c.EmbedDim, 1)
	// Decoder.
	bin, cur = C*c.ChMult[L-1], c.Resolution>>(L-1)
	conv("decoder.conv_in", bin, c.ZChannels, 3)
	res("decoder.mid.block_1", bin, bin)
	attn("decoder.mid.attn_1", bin)
	res("decoder.mid.block_2", bin, bin)
	for i := L - 1; i >= 0; i-- {
		bout := C * c.ChMult[i]
		for j := 0; j <= c.NumResBlocks; j++ {
			res(fmt.Sprintf("decoder.up.%d.block.%d", i, j), bin, bout)
			bin = bout
			if c.attnAt(cur) {
				attn(fmt.Sprintf("decoder.up.%d.attn.%d", i, j), bin)
			}
		}
		if i != 0 {
			conv(fmt.Sprintf("decoder.up.%d.upsample.conv", i), bin, bin, 3)
			cur *= 2
		}
	}
	norm("decoder.norm_out", bin)
	conv("decoder.conv_out", c.OutCh, bin, 3)
	return ts
}
