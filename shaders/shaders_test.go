package shaders

import (
	"strings"
	"testing"
)

// Every variant is embedded, matches the generated index and has a sane table entry.
func TestVariantsEmbedded(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Variants {
		if seen[v.Name] {
			t.Errorf("duplicate variant %s", v.Name)
		}
		seen[v.Name] = true
		s := Get(v.Name)
		if len(s.SPIRV) < 20 || s.SPIRV[0] != 0x03 || s.SPIRV[3] != 0x07 {
			t.Errorf("%s: not SPIR-V", v.Name)
		}
		if s.Bindings < 1 || s.Push%4 != 0 {
			t.Errorf("%s: %d bindings, %d push bytes", v.Name, s.Bindings, s.Push)
		}
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "no variant") {
			t.Errorf("unknown shader: %v", r)
		}
	}()
	Get("nope")
}
