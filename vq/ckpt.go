package vq

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"

	"github.com/emu35/emu35/model/safetensors"
)

// Tensor is one float32 checkpoint tensor.
type Tensor struct {
	Shape []int
	Data  []float32
}

// LoadTensors reads dir/model.safetensors, or the research form dir/model.ckpt
// (a PyTorch zip pickle holding the state dict, possibly under "state_dict").
func LoadTensors(dir string) (map[string]Tensor, error) {
	st := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(st); err == nil {
		return loadSafetensors(st)
	}
	ck := filepath.Join(dir, "model.ckpt")
	if _, err := os.Stat(ck); err == nil {
		return LoadCkpt(ck)
	}
	return nil, fmt.Errorf("%s has neither model.safetensors nor model.ckpt", dir)
}

func loadSafetensors(path string) (map[string]Tensor, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]Tensor{}
	for name, t := range f.Tensors {
		x, err := t.F32()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[name] = Tensor{Shape: t.Shape, Data: x}
	}
	return out, nil
}

// allowedClasses are the only classes a checkpoint's pickle may name besides
// torch's storage types and tensor rebuild (which gopickle maps itself): no
// arbitrary object is ever constructed.
var allowedClasses = map[string]bool{"collections.OrderedDict": true}

// LoadCkpt reads a PyTorch zip checkpoint, refusing anything but tensors and
// plain containers.
func LoadCkpt(path string) (map[string]Tensor, error) {
	// Only the zip form (torch.save since PyTorch 1.6) is read: the legacy tar
	// and raw-pickle forms are refused before parsing.
	z, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("%s is not a PyTorch zip checkpoint: %w", path, err)
	}
	z.Close()
	obj, err := pytorch.LoadWithUnpickler(path, func(r io.Reader) pickle.Unpickler {
		u := pickle.NewUnpickler(r)
		u.FindClass = func(module, name string) (interface{}, error) {
			if allowedClasses[module+"."+name] {
				return types.NewOrderedDict(), nil
			}
			return nil, fmt.Errorf("the checkpoint names class %s.%s; only tensors and plain containers are accepted", module, name)
		}
		return u
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if d, ok := asDict(obj); ok {
		if sd, ok := d["state_dict"]; ok {
			obj = sd
		}
	}
	d, ok := asDict(obj)
	if !ok {
		return nil, fmt.Errorf("%s: the pickle holds %T, not a state dict", path, obj)
	}
	out := map[string]Tensor{}
	for name, v := range d {
		t, ok := v.(*pytorch.Tensor)
		if !ok {
			return nil, fmt.Errorf("%s: entry %q is %T, not a tensor", path, name, v)
		}
		x, err := tensorData(t)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		out[name] = Tensor{Shape: append([]int(nil), t.Size...), Data: x}
	}
	return out, nil
}

// asDict returns a pickle dict with string keys.
func asDict(obj interface{}) (map[string]interface{}, bool) {
	out := map[string]interface{}{}
	switch d := obj.(type) {
	case *types.OrderedDict:
		for k, e := range d.Map {
			s, ok := k.(string)
			if !ok {
				return nil, false
			}
			out[s] = e.Value
		}
	case *types.Dict:
		for _, e := range *d {
			s, ok := e.Key.(string)
			if !ok {
				return nil, false
			}
			out[s] = e.Value
		}
	default:
		return nil, false
	}
	return out, true
}

// tensorData returns a contiguous float tensor's values.
func tensorData(t *pytorch.Tensor) ([]float32, error) {
	n := 1
	for _, s := range t.Size {
		n *= s
	}
	stride := 1
	for i := len(t.Size) - 1; i >= 0; i-- {
		if t.Size[i] != 1 && t.Stride[i] != stride {
			return nil, fmt.Errorf("not contiguous (size %v, stride %v)", t.Size, t.Stride)
		}
		stride *= t.Size[i]
	}
	var src []float32
	switch s := t.Source.(type) {
	case *pytorch.FloatStorage:
		src = s.Data
	case *pytorch.HalfStorage:
		src = s.Data
	case *pytorch.BFloat16Storage:
		src = s.Data
	default:
		return nil, fmt.Errorf("storage %T is not float", t.Source)
	}
	if t.StorageOffset < 0 || t.StorageOffset+n > len(src) {
		return nil, fmt.Errorf("offset %d + %d elements outside a storage of %d", t.StorageOffset, n, len(src))
	}
	return src[t.StorageOffset : t.StorageOffset+n], nil
}

// CheckTensors compares the checkpoint with the configuration in one error that
// lists every missing, unexpected or wrongly shaped tensor.
func CheckTensors(c Config, ts map[string]Tensor) error {
	var mm safetensors.Mismatch
	want := map[string]bool{}
	for _, s := range c.Tensors() {
		want[s.Name] = true
		t, ok := ts[s.Name]
		if !ok {
			mm.Missing = append(mm.Missing, s.Name)
		} else if fmt.Sprint(t.Shape) != fmt.Sprint(s.Shape) {
			mm.Shape = append(mm.Shape, fmt.Sprintf("%s is %v, want %v", s.Name, t.Shape, s.Shape))
		}
	}
	for name := range ts {
		if !want[name] {
			mm.Extra = append(mm.Extra, name)
		}
	}
	return mm.Err("the vision tokenizer checkpoint does not match its config:")
}
