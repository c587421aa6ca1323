package safetensors

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emu35/emu35/model/quant"
)

func TestOpenShardedFixture(t *testing.T) {
	s, err := OpenDir(fixtureDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := s.Tensors["model.embed_tokens.weight"]
	if e == nil || e.DType != "BF16" || e.Shape[0] != 2048 || e.Shape[1] != 256 {
		t.Fatalf("embed tensor: %+v", e)
	}
	if len(s.Tensors) != 2+2*11+1 {
		t.Fatalf("%d tensors", len(s.Tensors))
	}
}

func TestWriteRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	a := F32Tensor("a", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	b := &Tensor{Name: "ids", DType: "I32", Shape: []int{2}, Data: []byte{1, 0, 0, 0, 255, 255, 255, 255}}
	if err := Write(path, []*Tensor{a, b}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, _ := f.Tensors["a"].F32()
	ids, _ := f.Tensors["ids"].I32()
	if x[5] != 6 || ids[1] != -1 {
		t.Fatalf("read back %v %v", x, ids)
	}
}

func header(h string, data int) []byte {
	b := make([]byte, 8, 8+len(h)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(h)))
	b = append(b, h...)
	return append(b, make([]byte, data)...)
}

func TestCorrupt(t *testing.T) {
	cases := map[string][]byte{
		"truncated":   header(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8),
		"wrong size":  header(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}`, 16),
		"bad dtype":   header(`{"a":{"dtype":"F7","shape":[4],"data_offsets":[0,16]}}`, 16),
		"overlap":     header(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, 16),
		"not json":    header(`{"a":`, 0),
		"huge header": {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{'},
		"short":       {1, 2, 3},
		"neg shape":   header(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 0),
	}
	for name, b := range cases {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dir := t.TempDir()
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(`{"weight_map":{"a":"../x"}}`), 0o644)
	if _, err := OpenDir(dir); err == nil {
		t.Error("shard path escaping the directory accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}`, 8))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := Parse(b)
		if err != nil {
			return
		}
		for _, tn := range sf.Tensors {
			if len(tn.Data) != tn.Elems()*dtypeSize[tn.DType] {
				t.Fatalf("tensor %q: %d bytes for %v", tn.Name, len(tn.Data), tn.Shape)
			}
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"metadata":{"total_size":1},"weight_map":{"a":"model-00001-of-00002.safetensors"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := ParseIndex(b)
		if err == nil && len(idx.WeightMap) == 0 {
			t.Fatal("empty index accepted")
		}
	})
}

// fixtureDir is lm-tiny (model/fixtures imports this package, so it is found here).
func fixtureDir(t testing.TB) string {
	dir := os.Getenv("EMU35_FIXTURES")
	if dir == "" {
		dir = "../../../shared/fixtures"
	}
	dir = filepath.Join(dir, "lm-tiny")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("EMU35_REQUIRE_FIXTURES") == "1" {
			t.Fatalf("fixture missing: %v", err)
		}
		t.Skipf("fixture missing: %v", err)
	}
	return dir
}

// RowF32 decodes one row exactly as F32 decodes the whole tensor, in each float type.
func TestRowF32(t *testing.T) {
	vals := []float32{1, -2.5, 0.125, 3e-3, -7, 65504}
	for _, dt := range []string{"F32", "BF16", "F16"} {
		var raw []byte
		for _, v := range vals {
			switch dt {
			case "F32":
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
			case "BF16":
				raw = binary.LittleEndian.AppendUint16(raw, quant.F32ToBF16(v))
			case "F16":
				raw = binary.LittleEndian.AppendUint16(raw, quant.F32ToF16(v))
			}
		}
		tt := &Tensor{Name: "w", DType: dt, Shape: []int{3, 2}, Data: raw}
		all, err := tt.F32()
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < 3; r++ {
			row := make([]float32, 2)
			if err := tt.RowF32(r, row); err != nil {
				t.Fatal(err)
			}
			if row[0] != all[2*r] || row[1] != all[2*r+1] {
				t.Fatalf("%s row %d: %v, want %v", dt, r, row, all[2*r:2*r+2])
			}
		}
	}
	if err := (&Tensor{Name: "i", DType: "I32", Shape: []int{1, 1}, Data: make([]byte, 4)}).RowF32(0, make([]float32, 1)); err == nil {
		t.Fatal("an int tensor decoded as floats")
	}
}

// ReadAhead reads each tensor's own bytes of the file (its offset is where
// Data lies in the file, a tensor past the first page too), stops when its
// context ends, and leaves a tensor parsed from memory alone.
func TestReadAhead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	big := make([]float32, 5000) // 20,000 bytes: the next tensor starts past the first pages
	for i := range big {
		big[i] = float32(i)
	}
	a := F32Tensor("a", []int{len(big)}, big)
	b := F32Tensor("b", []int{3}, []float32{1, 2, 3})
	if err := Write(path, []*Tensor{a, b}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range []string{"a", "b"} {
		x := f.Tensors[name]
		if x.off <= 8 || !bytes.Equal(raw[x.off:x.off+int64(len(x.Data))], x.Data) {
			t.Errorf("%s: offset %d is not where its bytes lie in the file", name, x.off)
		}
		if err := x.ReadAhead(context.Background()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Tensors["a"].ReadAhead(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled read-ahead returned %v", err)
	}
	if err := b.ReadAhead(context.Background()); err != nil {
		t.Errorf("a tensor in memory: %v", err)
	}
}
