package vq

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/model/fixtures"
)

func fixture(t testing.TB) string { return fixtures.Dir(t, "vq-tiny") }

// Both checkpoint forms hold the same tensors, and both match the config.
func TestBothForms(t *testing.T) {
	dir := fixture(t)
	cj, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	yb, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	cy, err := ParseYAML(yb)
	if err != nil {
		t.Fatal(err)
	}
	a, err := loadSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadCkpt(filepath.Join(dir, "model.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckTensors(cj, a); err != nil {
		t.Fatal(err)
	}
	if err := CheckTensors(cy, b); err != nil {
		t.Fatal(err)
	}
	for name, x := range a {
		if cpu.NMSE(b[name].Data, x.Data) != 0 {
			t.Fatalf("%s differs between the forms", name)
		}
	}
	delete(a, "decoder.conv_out.bias")
	a["extra.weight"] = Tensor{Shape: []int{1}, Data: []float32{0}}
	a["decoder.conv_in.bias"] = Tensor{Shape: []int{7}, Data: make([]float32, 7)}
	err = CheckTensors(cj, a)
	if err == nil || !strings.Contains(err.Error(), "missing (1)") || !strings.Contains(err.Error(), "unexpected (1)") || !strings.Contains(err.Error(), "wrong shape (1)") {
		t.Fatalf("mismatch report: %v", err)
	}
}

// A pickle naming any other class is refused before anything is built.
func TestCkptRefusesObjects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evil.ckpt")
	f, _ := os.Create(path)
	z := zip.NewWriter(f)
	w, _ := z.Create("archive/data.pkl")
	// protocol 2: GLOBAL os.system, then stop.
	w.Write([]byte("\x80\x02cos\nsystem\nq\x00."))
	z.Close()
	f.Close()
	if _, err := LoadCkpt(path); err == nil || !strings.Contains(err.Error(), "os.system") {
		t.Fatalf("a pickle naming os.system: %v", err)
	}
	os.WriteFile(path, []byte("not a zip"), 0o644)
	if _, err := LoadCkpt(path); err == nil {
		t.Fatal("garbage accepted")
	}
}

// zipPickle is a minimal zip checkpoint holding one pickle.
func zipPickle(pkl string) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	w, _ := z.Create("archive/data.pkl")
	w.Write([]byte(pkl))
	z.Close()
	return b.Bytes()
}

func FuzzLoadCkpt(f *testing.F) {
	f.Add(zipPickle("\x80\x02}q\x00."))                                  // {}
	f.Add(zipPickle("\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s."))     // {"a": 1}
	f.Add(zipPickle("\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.")) // OrderedDict()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "x.ckpt")
		os.WriteFile(path, b, 0o644)
		LoadCkpt(path) // must return, never panic
	})
}
