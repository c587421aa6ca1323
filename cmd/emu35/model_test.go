package main

import (
	"flag"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/quant"
)

// --kv auto gives q4 weights the int8 cache and every other format f16; the
// explicit values win; anything else is refused.
func TestKVAuto(t *testing.T) {
	for _, tc := range []struct {
		kv   string
		f    quant.Format
		want bool
	}{
		{"auto", quant.Q4, true}, {"auto", quant.Q8_0, false}, {"auto", quant.BF16, false}, {"", quant.Q4, true},
		{"f16", quant.Q4, false}, {"q8", quant.BF16, true},
	} {
		set := flag.NewFlagSet("t", flag.ContinueOnError)
		set.String("kv", tc.kv, "")
		got, err := kvQ8(cli.NewContext(nil, set, nil), tc.f)
		if err != nil || got != tc.want {
			t.Errorf("--kv %q with %s weights: q8 %v, %v; want %v", tc.kv, tc.f, got, err, tc.want)
		}
	}
	set := flag.NewFlagSet("t", flag.ContinueOnError)
	set.String("kv", "q4", "")
	if _, err := kvQ8(cli.NewContext(nil, set, nil), quant.Q4); err == nil {
		t.Error("--kv q4 accepted")
	}
}
