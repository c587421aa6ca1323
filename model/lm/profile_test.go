package lm

import (
	"context"
	"testing"

	"github.com/emu35/emu35/model/quant"
)

// ProfileDecode times every op of a decode step without moving the sequences,
// and StepBytes counts what the step must read, from the configuration.
func TestProfileAndStepBytes(t *testing.T) {
	d := device(t)
	cfg, _ := SyntheticConfig("tiny")
	for _, kv8 := range []bool{false, true} {
		m, err := NewSynthetic(context.Background(), d, cfg, quant.Q8_0, 3)
		if err != nil {
			t.Fatal(err)
		}
		m.KVQ8 = kv8
		s, err := m.NewSession(2, 64, 8)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetLens(10, 20); err != nil {
			t.Fatal(err)
		}
		prof, err := s.ProfileDecode(context.Background(), 2, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkProfile(t, prof, 0, "qkv_proj", "o_proj", "gate_up_proj", "down_proj", "attention", "attn_combine", "lm_head")
		if s.Lens[0] != 10 || s.Lens[1] != 20 {
			t.Errorf("profiling moved the sequences to %v", s.Lens)
		}
		H, dh, L := int64(cfg.HiddenSize), int64(cfg.HeadDim), int64(cfg.Layers)
		perPos := 2 * int64(cfg.KVHeads) * dh * 2 // K and V of one position, f16
		if kv8 {
			perPos = 2 * int64(cfg.KVHeads) * (dh + 4)
		}
		b := s.StepBytes(2, 0, 0)
		want := map[string]int64{
			"qkv_proj":  L * quant.Q8_0.Bytes((cfg.Heads+2*cfg.KVHeads)*cfg.HeadDim, cfg.HiddenSize),
			"down_proj": L * quant.Q8_0.Bytes(cfg.HiddenSize, cfg.IntermediateSize),
			"lm_head":   quant.Q8_0.Bytes(cfg.VocabSize, int(H)),
			"attention": L * perPos * (11 + 21),
		}
		for op, w := range want {
			if b[op] != w {
				t.Errorf("kv q8 %v: %s reads %d bytes, want %d", kv8, op, b[op], w)
			}
		}
		s.Close()
		m.Close()
	}
}

// ProfilePrefill times every op of a prefill pass and leaves the session empty.
func TestProfilePrefill(t *testing.T) {
	d := device(t)
	cfg, _ := SyntheticConfig("tiny")
	m, err := NewSynthetic(context.Background(), d, cfg, quant.Q4, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.NewSession(2, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ProfilePrefill(context.Background(), 2, 40); err == nil {
		t.Error("a prefill of 80 rows in a 64-row session was profiled")
	}
	prof, err := s.ProfilePrefill(context.Background(), 2, 32)
	if err != nil {
		t.Fatal(err)
	}
	checkProfile(t, prof, cfg.Layers, "qkv_proj", "attention", "attn_combine", "gate_up_proj", "down_proj", "kv_store")
	if s.Lens[0] != 0 || s.Lens[1] != 0 {
		t.Errorf("profiling left the sequences at %v", s.Lens)
	}
}

// checkProfile fails unless every op took time and each of ops appears: n
// times, or (n = 0) at least once.
func checkProfile(t *testing.T, prof []OpTime, n int, ops ...string) {
	t.Helper()
	seen := map[string]int{}
	for _, p := range prof {
		if p.NS <= 0 {
			t.Errorf("%s took %g ns", p.Op, p.NS)
		}
		seen[p.Op] = p.Count
	}
	for _, op := range ops {
		if seen[op] == 0 || n > 0 && seen[op] != n {
			t.Errorf("%s %d times in the profile %v, want %d (0: any)", op, seen[op], seen, n)
		}
	}
}
