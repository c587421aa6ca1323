package ops

import (
	"encoding/binary"
	"math"
	"unsafe"

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

// F32View is F32Bytes without the copy where the host is little-endian: the
// bytes of x itself (so they change with x). A prefill's embedding rows (160 MB
// for 2 × 4096 tokens) are uploaded so.
func F32View(x []float32) []byte {
	if !littleEndian || len(x) == 0 {
		return F32Bytes(x)
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
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

// DownloadF32 reads n float32s from r. On a little-endian host (the GPU's
// order) they land in the result directly: a 1024² image's 12 MB of pixels
// without a second buffer and a decoding pass.
func DownloadF32(d *vk.Device, r vk.Range, n int) ([]float32, error) {
	x := make([]float32, n)
	b := F32View(x) // a copy on big-endian hosts, decoded below
	if err := d.Download(r, b); err != nil {
		return nil, err
	}
	if littleEndian {
		return x, nil
	}
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x, nil
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
