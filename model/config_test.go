package model

import (
	"testing"

	"github.com/emu35/emu35/model/fixtures"
)

func TestEmu35Shapes(t *testing.T) {
	c := Emu35()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ts := c.Tensors()
	if len(ts) != 707 {
		t.Fatalf("%d tensors, want 707", len(ts))
	}
	var n int64
	for _, x := range ts {
		p := int64(1)
		for _, d := range x.Shape {
			p *= int64(d)
		}
		n += p
	}
	if n != 34103460864 {
		t.Fatalf("%d parameters, want 34,103,460,864 (reference-spec §1.1)", n)
	}
}

func TestFixtureConfig(t *testing.T) {
	c, err := LoadConfig(fixtures.Dir(t, "lm-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HiddenSize != 256 || c.Heads != 4 || c.KVHeads != 2 || c.HeadDim != 128 || c.RopeTheta != 5e6 {
		t.Fatalf("%+v", c)
	}
}

func TestBadConfigs(t *testing.T) {
	for _, s := range []string{
		`{`, `{"vocab_size":0}`,
		`{"vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":3,"num_key_value_heads":2,"head_dim":4,"max_position_embeddings":8,"rms_norm_eps":1e-5,"rope_theta":10000}`,
		`{"vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":2,"head_dim":4,"max_position_embeddings":8,"rms_norm_eps":1e-5,"rope_theta":10000,"rope_scaling":{"type":"linear","factor":2}}`,
	} {
		if _, err := ParseConfig([]byte(s)); err == nil {
			t.Errorf("accepted %s", s)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":4,"max_position_embeddings":8,"rms_norm_eps":1e-5,"rope_theta":10000}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err == nil && (c.Heads%c.KVHeads != 0 || c.HiddenSize <= 0) {
			t.Fatalf("invalid config accepted: %+v", c)
		}
	})
}
