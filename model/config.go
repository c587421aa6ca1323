// Package model holds what describes the Emu3.5 language model: its configuration
// (config.json with the Emu3 field names) and the checkpoint's tensor names.
package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Config is the part of config.json the forward pass uses. Unknown keys
// (sliding_window, image_area, ...) are ignored, as the reference does.
type Config struct {
	ModelType         string   `json:"model_type"`
	VocabSize         int      `json:"vocab_size"`
	HiddenSize        int      `json:"hidden_size"`
	IntermediateSize  int      `json:"intermediate_size"`
	Layers            int      `json:"num_hidden_layers"`
	Heads             int      `json:"num_attention_heads"`
	KVHeads           int      `json:"num_key_value_heads"`
	HeadDim           int      `json:"head_dim"`
	MaxPositions      int      `json:"max_position_embeddings"`
	RMSNormEps        float64  `json:"rms_norm_eps"`
	RopeTheta         float64  `json:"rope_theta"`
	RopeScaling       any      `json:"rope_scaling"`
	HiddenAct         string   `json:"hidden_act"`
	TieWordEmbeddings bool     `json:"tie_word_embeddings"`
	AttentionBias     bool     `json:"attention_bias"`
	PadTokenID        int      `json:"pad_token_id"`
	BOSTokenID        int      `json:"bos_token_id"`
	EOSTokenID        int      `json:"eos_token_id"`
	ImgTokenID        int      `json:"img_token_id"`
	BOITokenID        int      `json:"boi_token_id"`
	EOITokenID        int      `json:"eoi_token_id"`
	EOLTokenID        int      `json:"eol_token_id"`
	EOFTokenID        int      `json:"eof_token_id"`
	Architectures     []string `json:"architectures"`
}

// Emu35 is the published BAAI/Emu3.5 configuration (reference-spec §1.1), used
// for the synthetic full-size model.
func Emu35() Config {
	return Config{
		ModelType: "Emu3", VocabSize: 282926, HiddenSize: 5120, IntermediateSize: 25600, Layers: 64,
		Heads: 64, KVHeads: 8, HeadDim: 128, MaxPositions: 32768, RMSNormEps: 1e-6, RopeTheta: 1e6,
		HiddenAct: "silu", PadTokenID: 151643, BOSTokenID: 151849, EOSTokenID: 151850, ImgTokenID: 151851,
		BOITokenID: 151852, EOITokenID: 151853, EOLTokenID: 151846, EOFTokenID: 151847,
		Architectures: []string{"Emu3ForCausalLM"},
	}
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading the model config: %w (is %s an Emu3.5 model directory?)", err, dir)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses and validates config.json.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("not valid JSON: %w", err)
	}
	return c, c.Validate()
}

// Validate checks that the dimensions describe a model emu35 can run.
func (c Config) Validate() error {
	pos := []struct {
		v    int
		name string
	}{
		{c.VocabSize, "vocab_size"}, {c.HiddenSize, "hidden_size"}, {c.IntermediateSize, "intermediate_size"},
		{c.Layers, "num_hidden_layers"}, {c.Heads, "num_attention_heads"}, {c.KVHeads, "num_key_value_heads"},
		{c.HeadDim, "head_dim"}, {c.MaxPositions, "max_position_embeddings"},
	}
	for _, p := range pos {
		if p.v <= 0 || p.v > 1<<24 {
			return fmt.Errorf("%s = %d is out of range", p.name, p.v)
		}
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.Heads, c.KVHeads)
	}
	if c.HeadDim < 16 || c.HeadDim > 256 || c.HeadDim&(c.HeadDim-1) != 0 { // the decode attention's column quads and key slices
		return fmt.Errorf("head_dim %d: emu35 supports head sizes that are powers of two from 16 to 256", c.HeadDim)
	}
	if c.RMSNormEps <= 0 || c.RopeTheta <= 1 {
		return fmt.Errorf("rms_norm_eps %g / rope_theta %g out of range", c.RMSNormEps, c.RopeTheta)
	}
	if c.RopeScaling != nil {
		return fmt.Errorf("rope_scaling %v is not supported (Emu3.5 uses none)", c.RopeScaling)
	}
	if c.HiddenAct != "" && c.HiddenAct != "silu" {
		return fmt.Errorf("hidden_act %q is not supported (want silu)", c.HiddenAct)
	}
	if c.AttentionBias {
		return fmt.Errorf("attention_bias is not supported (Emu3.5 has none)")
	}
	return nil
}

// TensorShape is one checkpoint tensor the model expects.
type TensorShape struct {
	Name  string
	Shape []int
}

// Tensors lists every checkpoint tensor with its shape (reference-spec §1.4).
func (c Config) Tensors() []TensorShape {
	H, d, I := c.HiddenSize, c.HeadDim, c.IntermediateSize
	ts := []TensorShape{{"model.embed_tokens.weight", []int{c.VocabSize, H}}}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			TensorShape{p + "input_layernorm.weight", []int{H}},
			TensorShape{p + "self_attn.q_proj.weight", []int{c.Heads * d, H}},
			TensorShape{p + "self_attn.k_proj.weight", []int{c.KVHeads * d, H}},
			TensorShape{p + "self_attn.v_proj.weight", []int{c.KVHeads * d, H}},
			TensorShape{p + "self_attn.o_proj.weight", []int{H, c.Heads * d}},
			TensorShape{p + "self_attn.q_norm.weight", []int{d}},
			TensorShape{p + "self_attn.k_norm.weight", []int{d}},
			TensorShape{p + "post_attention_layernorm.weight", []int{H}},
			TensorShape{p + "mlp.gate_proj.weight", []int{I, H}},
			TensorShape{p + "mlp.up_proj.weight", []int{I, H}},
			TensorShape{p + "mlp.down_proj.weight", []int{H, I}},
		)
	}
	ts = append(ts, TensorShape{"model.norm.weight", []int{H}})
	if !c.TieWordEmbeddings {
		ts = append(ts, TensorShape{"lm_head.weight", []int{c.VocabSize, H}})
	}
	return ts
}
