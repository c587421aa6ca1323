package vq

import "testing"

// The real configuration's tensor list matches the published totals.
func TestEmu35Tensors(t *testing.T) {
	ts := Emu35().Tensors()
	var n int64
	for _, s := range ts {
		p := int64(1)
		for _, d := range s.Shape {
			p *= int64(d)
		}
		n += p
	}
	if len(ts) != 543 || n != 455336963 {
		t.Fatalf("%d tensors, %d parameters; want 543 and 455,336,963 (reference-spec §6.6)", len(ts), n)
	}
}

func TestParseConfigs(t *testing.T) {
	y := []byte("n_embed: 512\nembed_dim: 16\nddconfig:\n  double_z: false\n  z_channels: 32\n  resolution: 64\n  in_channels: 3\n  out_ch: 3\n  ch: 32\n  ch_mult: [1, 1, 2, 2, 2]\n  num_res_blocks: 1\n  attn_resolutions: [4]\n  dropout: 0.0\n")
	c, err := ParseYAML(y)
	if err != nil || c.CodebookSize != 512 || c.Factor() != 16 || !c.attnAt(4) {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{`{"codebook_size":0}`, `{`, `{"codebook_size":8,"embed_dim":4,"z_channels":4,"ch":30,"ch_mult":[1],"num_res_blocks":1,"resolution":8,"in_channels":3,"out_ch":3}`} {
		if _, err := ParseJSON([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	if _, err := ParseYAML([]byte("n_embed: [")); err == nil {
		t.Error("bad YAML accepted")
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("n_embed: 512\nembed_dim: 16\nddconfig: {z_channels: 32, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, resolution: 64, in_channels: 3, out_ch: 3}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseYAML(b); err == nil {
			if c.Validate() != nil {
				t.Fatal("invalid config accepted")
			}
			c.Tensors()
		}
	})
}
