package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
)

var (
	modelFlag   = &cli.StringFlag{Name: "model", Usage: "Emu3.5 checkpoint directory (config.json + safetensors), or synthetic:emu3.5 / synthetic:tiny for random weights built on the GPU"}
	weightsFlag = &cli.StringFlag{Name: "weights", Value: "auto", Usage: "weight format: bf16, q8, q4, or auto (the best that fits the device)"}
)

// kvFlag picks the KV cache's format (commands with kvFlag only).
var kvFlag = &cli.StringFlag{Name: "kv", Value: "auto", Usage: "KV cache format: auto (q8 with q4 weights, whose own error is hundreds of times larger; f16 otherwise), f16, or q8 (int8 with a scale per vector: half the memory, logits NMSE ≈ 1e-4, faster attention: with q8 weights 0.4 ms a step at 4k, 1.8 at 16k on an H100)"}

// kvQ8 reads --kv for weights of format f.
func kvQ8(c *cli.Context, f quant.Format) (bool, error) {
	switch k := c.String("kv"); k {
	case "auto", "":
		return f == quant.Q4, nil
	case "f16":
		return false, nil
	case "q8":
		return true, nil
	default:
		return false, fmt.Errorf("--kv %q: want auto, f16 or q8", k)
	}
}

// kvName names a KV cache format as --kv does.
func kvName(q8 bool) string {
	if q8 {
		return "q8"
	}
	return "f16"
}

// weightsFormat is --weights when it names a format (bf16 for auto: the
// cache a run must allow for before the format is chosen).
func weightsFormat(c *cli.Context) quant.Format {
	if f, err := quant.Parse(c.String("weights")); err == nil {
		return f
	}
	return quant.BF16
}

// openModel loads --model in --weights format with a --kv cache, keeping
// reserve bytes free for a session, and applies --tuning's settings.
func openModel(c *cli.Context, d *vk.Device, reserve int64) (*lm.Model, error) {
	if _, err := kvQ8(c, quant.BF16); err != nil { // before loading anything
		return nil, err
	}
	path := tuningPath(c)
	tuning, err := readTuning(path) // (a broken file stops the run before the load)
	if err != nil {
		return nil, err
	}
	m, err := loadModel(c, d, reserve)
	if err != nil {
		return nil, err
	}
	m.KVQ8, _ = kvQ8(c, m.Format)
	if err := applyTuning(tuning, path, m); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// loadModel loads --model in --weights format.
func loadModel(c *cli.Context, d *vk.Device, reserve int64) (*lm.Model, error) {
	path := c.String("model")
	if path == "" {
		return nil, fmt.Errorf("--model is required: a BAAI/Emu3.5 checkpoint directory, or synthetic:emu3.5")
	}
	opts := lm.Options{Reserve: reserve, Progress: os.Stderr}
	if w := c.String("weights"); w == "auto" {
		opts.Auto = true
	} else {
		f, err := quant.Parse(w)
		if err != nil || (f != quant.BF16 && f != quant.Q8_0 && f != quant.Q4) {
			return nil, fmt.Errorf("--weights %q: want bf16, q8, q4 or auto", w)
		}
		opts.Format = f
	}
	if name, ok := strings.CutPrefix(path, "synthetic:"); ok {
		cfg, ok := lm.SyntheticConfig(name)
		if !ok {
			return nil, fmt.Errorf("--model %s: unknown synthetic model (want synthetic:emu3.5 or synthetic:tiny)", path)
		}
		f, err := lm.ChooseFormat(d, cfg, opts)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "building synthetic %s with random %s weights on the GPU (outputs are noise)\n", name, f)
		return lm.NewSynthetic(c.Context, d, cfg, f, 1)
	}
	return lm.Load(c.Context, d, path, opts)
}

// parseIDs reads "1,2,3" (spaces allowed).
func parseIDs(flag, s string) ([]int32, error) {
	var ids []int32
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a token id", flag, f)
		}
		ids = append(ids, int32(v))
	}
	return ids, nil
}
