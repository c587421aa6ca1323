// Package safetensors reads and writes the safetensors format: an 8-byte little-
// endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then
// the data. Files are memory-mapped; sharded checkpoints are opened through
// model.safetensors.index.json. Hand-written (about 200 lines) rather than a
// dependency so that every check is ours and fuzzed: offsets inside the file,
// sizes matching dtype × shape, no overlaps, sane header sizes.
package safetensors

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"unsafe"

	"github.com/emu35/emu35/model/quant"
)

// DType sizes in bytes.
var dtypeSize = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}

// Tensor is one tensor of a file: its bytes alias the mapping.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
	File  string

	off int64 // where Data starts in File (Open)
}

// ReadAhead reads the tensor's bytes from its file into the page cache (with
// reads of its own, not through the mapping), so that later reads of its rows
// through Data, such as a decode step's embedding rows, do not wait on the
// disk. It stops early when ctx ends. A tensor parsed from bytes in memory has
// nothing to read.
func (t *Tensor) ReadAhead(ctx context.Context) error {
	if t.File == "" || len(t.Data) == 0 {
		return nil
	}
	f, err := os.Open(t.File)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for done := 0; done < len(t.Data) && ctx.Err() == nil; done += len(buf) {
		n := min(len(buf), len(t.Data)-done)
		if _, err := f.ReadAt(buf[:n], t.off+int64(done)); err != nil {
			return fmt.Errorf("%s: reading ahead: %w", t.Name, err)
		}
	}
	return ctx.Err()
}

// Elems is the number of elements.
func (t *Tensor) Elems() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is an open, memory-mapped safetensors file.
type File struct {
	Path     string
	Tensors  map[string]*Tensor
	Metadata map[string]string
	mapping  []byte
}

const maxHeader = 100 << 20

// Open maps path and parses its header.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < 8 {
		return nil, fmt.Errorf("%s: %d bytes is too short for a safetensors file", path, st.Size())
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	sf, err := Parse(data)
	if err != nil {
		syscall.Munmap(data)
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sf.Path, sf.mapping = path, data
	for _, t := range sf.Tensors {
		t.File = path
		if len(t.Data) > 0 {
			t.off = int64(uintptr(unsafe.Pointer(&t.Data[0])) - uintptr(unsafe.Pointer(&data[0])))
		}
	}
	return sf, nil
}

// Close unmaps the file; its tensors' Data must not be used afterwards.
func (f *File) Close() error {
	if f.mapping == nil {
		return nil
	}
	err := syscall.Munmap(f.mapping)
	f.mapping = nil
	return err
}

type entry struct {
	DType   string  `json:"dtype"`
	Shape   []int   `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// Parse reads a whole safetensors file held in memory.
func Parse(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("truncated: %d bytes", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxHeader || n > uint64(len(data)-8) {
		return nil, fmt.Errorf("header of %d bytes does not fit a file of %d bytes (truncated or not safetensors)", n, len(data))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	body := data[8+n:]
	f := &File{Tensors: map[string]*Tensor{}}
	type span struct {
		a, b int64
		name string
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("__metadata__: %w", err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, fmt.Errorf("tensor %q: unknown dtype %q", name, e.DType)
		}
		elems := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && elems > math.MaxInt32*int64(1024)/int64(d)) {
				return nil, fmt.Errorf("tensor %q: bad shape %v", name, e.Shape)
			}
			elems *= int64(d)
		}
		if len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > int64(len(body)) {
			return nil, fmt.Errorf("tensor %q: data_offsets %v outside the %d data bytes (truncated file?)", name, e.Offsets, len(body))
		}
		if e.Offsets[1]-e.Offsets[0] != elems*int64(size) {
			return nil, fmt.Errorf("tensor %q: %d bytes for %s %v (want %d)", name, e.Offsets[1]-e.Offsets[0], e.DType, e.Shape, elems*int64(size))
		}
		f.Tensors[name] = &Tensor{Name: name, DType: e.DType, Shape: e.Shape, Data: body[e.Offsets[0]:e.Offsets[1]:e.Offsets[1]]}
		spans = append(spans, span{e.Offsets[0], e.Offsets[1], name})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a < spans[j].a })
	for i := 1; i < len(spans); i++ {
		if spans[i].a < spans[i-1].b {
			return nil, fmt.Errorf("tensors %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	return f, nil
}

// Set is the tensors of a checkpoint directory, possibly sharded.
type Set struct {
	Tensors map[string]*Tensor
	files   []*File
}

// Close unmaps every file.
func (s *Set) Close() {
	for _, f := range s.files {
		f.Close()
	}
}

type index struct {
	WeightMap map[string]string `json:"weight_map"`
}

// OpenDir opens model.safetensors.index.json and its shards, or model.safetensors.
func OpenDir(dir string) (*Set, error) {
	s := &Set{Tensors: map[string]*Tensor{}}
	ipath := filepath.Join(dir, "model.safetensors.index.json")
	b, err := os.ReadFile(ipath)
	if os.IsNotExist(err) {
		f, err := Open(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			return nil, fmt.Errorf("%s has neither model.safetensors.index.json nor a readable model.safetensors: %w", dir, err)
		}
		s.files = append(s.files, f)
		s.Tensors = f.Tensors
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	idx, err := ParseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ipath, err)
	}
	shards := map[string]*File{}
	var names []string
	for _, shard := range idx.WeightMap {
		if _, ok := shards[shard]; !ok {
			shards[shard] = nil
			names = append(names, shard)
		}
	}
	sort.Strings(names)
	for _, shard := range names {
		if filepath.Base(shard) != shard {
			s.Close()
			return nil, fmt.Errorf("%s: shard name %q is not a plain file name", ipath, shard)
		}
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("shard listed in %s: %w", ipath, err)
		}
		shards[shard] = f
		s.files = append(s.files, f)
	}
	for name, shard := range idx.WeightMap {
		t, ok := shards[shard].Tensors[name]
		if !ok {
			s.Close()
			return nil, fmt.Errorf("%s maps %q to %s, which does not hold it", ipath, name, shard)
		}
		s.Tensors[name] = t
	}
	return s, nil
}

// ParseIndex reads model.safetensors.index.json.
func ParseIndex(b []byte) (*index, error) {
	var idx index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("weight_map is empty")
	}
	return &idx, nil
}

// Write stores tensors (all of dtype F32 or I32 given as raw bytes) in path,
// atomically (a temporary file renamed into place).
func Write(path string, tensors []*Tensor) error {
	hdr := map[string]entry{}
	var off int64
	for _, t := range tensors {
		size, ok := dtypeSize[t.DType]
		if !ok || int64(len(t.Data)) != int64(t.Elems()*size) {
			return fmt.Errorf("tensor %q: %d bytes for %s %v", t.Name, len(t.Data), t.DType, t.Shape)
		}
		hdr[t.Name] = entry{DType: t.DType, Shape: t.Shape, Offsets: []int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(hb)))
	f.Write(n[:])
	f.Write(hb)
	for _, t := range tensors {
		if _, err := f.Write(t.Data); err != nil {
			f.Close()
			os.Remove(tmp)
			return err
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// F32 returns a float32 tensor's values (converting BF16, F16 and F32).
func (t *Tensor) F32() ([]float32, error) {
	out := make([]float32, t.Elems())
	if err := t.decode(t.Data, out); err != nil {
		return nil, err
	}
	return out, nil
}

// RowF32 writes row r of a float tensor [rows, len(dst)] into dst. It panics
// when r or len(dst) does not fit the tensor (callers check shapes and ids).
func (t *Tensor) RowF32(r int, dst []float32) error {
	esz := map[string]int{"F32": 4, "BF16": 2, "F16": 2}[t.DType]
	n := len(dst) * esz
	return t.decode(t.Data[r*n:(r+1)*n], dst)
}

// decode converts raw values of t's dtype into out.
func (t *Tensor) decode(raw []byte, out []float32) error {
	le := binary.LittleEndian
	switch t.DType {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case "BF16":
		for i := range out {
			out[i] = math.Float32frombits(uint32(le.Uint16(raw[2*i:])) << 16)
		}
	case "F16":
		for i := range out {
			out[i] = quant.F16ToF32(le.Uint16(raw[2*i:]))
		}
	default:
		return fmt.Errorf("tensor %q is %s, not a float type", t.Name, t.DType)
	}
	return nil
}

// I32 returns an int32 tensor's values.
func (t *Tensor) I32() ([]int32, error) {
	if t.DType != "I32" {
		return nil, fmt.Errorf("tensor %q is %s, not I32", t.Name, t.DType)
	}
	out := make([]int32, t.Elems())
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// F32Tensor makes an F32 tensor from values.
func F32Tensor(name string, shape []int, x []float32) *Tensor {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return &Tensor{Name: name, DType: "F32", Shape: shape, Data: b}
}
