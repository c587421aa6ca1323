package ops

import (
	"encoding/binary"
	"math"

	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
)

// F32Bytes encodes float32s little-endian.
func F32Bytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// F16Bytes encodes float32s as f16.
func F16Bytes(x []float32) []byte {
	b := make([]byte, 2*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint16(b[2*i:], quant.F32ToF16(v))
	}
	return b
}

// I32Bytes encodes int32s little-endian.
func I32Bytes(x []int32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return b
}

// Upload allocates a buffer holding b.
func Upload(d *vk.Device, a *vk.Arena, name string, b []byte) (*vk.Buffer, error) {
	buf, err := a.Alloc(name, uint64(len(b)))
	if err != nil {
		return nil, err
	}
	return buf, d.Upload(buf.All(), b)
}

// DownloadF32 reads n float32s from r.
func DownloadF32(d *vk.Device, r vk.Range, n int) ([]float32, error) {
	b := make([]byte, 4*n)
	if err := d.Download(r, b); err != nil {
		return nil, err
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x, nil
}
