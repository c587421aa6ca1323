package vk

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// ErrOutOfMemory means a GPU allocation failed.
var ErrOutOfMemory = errors.New("out of GPU memory")

// MemKind says where a buffer lives.
type MemKind int

const (
	// DeviceMem is device-local memory: weights, KV cache, activations.
	DeviceMem MemKind = iota
	// UploadMem is host-visible, coherent memory for staging uploads.
	UploadMem
	// ReadbackMem is host-visible, cached memory for results read by the CPU.
	ReadbackMem
)

const blockSize = 256 << 20

type block struct {
	mem    vk.DeviceMemory
	size   uint64
	used   uint64
	mapped unsafe.Pointer
}

// Arena suballocates buffers from large memory blocks and frees them together.
type Arena struct {
	d      *Device
	kind   MemKind
	mu     sync.Mutex
	blocks []*block
	bufs   []*Buffer
	used   uint64
}

// Buffer is one VkBuffer bound to arena memory.
type Buffer struct {
	d      *Device
	buf    vk.Buffer
	Size   uint64
	mapped unsafe.Pointer
	Name   string
}

// Range is a byte range of a buffer, the unit bound to a shader.
type Range struct {
	B         *Buffer
	Off, Size uint64
}

// All is the whole buffer.
func (b *Buffer) All() Range { return Range{b, 0, b.Size} }

// Slice is size bytes at off.
func (b *Buffer) Slice(off, size uint64) Range {
	if off+size > b.Size {
		panic(fmt.Sprintf("vk: slice [%d,+%d) outside buffer %q of %d bytes", off, size, b.Name, b.Size))
	}
	return Range{b, off, size}
}

// Sub is a sub-range of r.
func (r Range) Sub(off, size uint64) Range {
	if off+size > r.Size {
		panic(fmt.Sprintf("vk: sub-range [%d,+%d) outside range of %d bytes", off, size, r.Size))
	}
	return Range{r.B, r.Off + off, size}
}

// Handle is the VkBuffer (for code that records with vulkan-go directly, like the viewer).
func (b *Buffer) Handle() vk.Buffer { return b.buf }

// Mapped returns the host view of a host-visible buffer, or nil.
func (b *Buffer) Mapped() []byte {
	if b.mapped == nil {
		return nil
	}
	return unsafe.Slice((*byte)(b.mapped), b.Size)
}

// NewArena makes an arena of the given memory kind.
func (d *Device) NewArena(kind MemKind) *Arena { return &Arena{d: d, kind: kind} }

// Used is the number of bytes handed out.
func (a *Arena) Used() uint64 { a.mu.Lock(); defer a.mu.Unlock(); return a.used }

// Reserved is the number of bytes of device memory held.
func (a *Arena) Reserved() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var s uint64
	for _, b := range a.blocks {
		s += b.size
	}
	return s
}

func (a *Arena) memType() uint32 {
	switch a.kind {
	case UploadMem:
		return a.d.memUpload
	case ReadbackMem:
		return a.d.memReadback
	}
	return a.d.memDevice
}

// Alloc makes a buffer of size bytes (rounded up to 16).
func (a *Arena) Alloc(name string, size uint64) (*Buffer, error) {
	if size == 0 {
		size = 16
	}
	size = (size + 15) &^ 15
	d := a.d
	if d.Caps.MaxBufferSize > 0 && size > d.Caps.MaxBufferSize {
		return nil, fmt.Errorf("buffer %q: %d bytes exceeds the device's maxBufferSize %d", name, size, d.Caps.MaxBufferSize)
	}
	var buf vk.Buffer
	r := vk.CreateBuffer(d.dev, &vk.BufferCreateInfo{
		SType: vk.StructureTypeBufferCreateInfo,
		Size:  vk.DeviceSize(size),
		Usage: vk.BufferUsageFlags(vk.BufferUsageStorageBufferBit | vk.BufferUsageTransferSrcBit |
			vk.BufferUsageTransferDstBit),
		SharingMode: vk.SharingModeExclusive,
	}, nil, &buf)
	if r != vk.Success {
		return nil, vkErr(fmt.Sprintf("creating buffer %q (%d bytes)", name, size), r)
	}
	var req vk.MemoryRequirements
	vk.GetBufferMemoryRequirements(d.dev, buf, &req)
	req.Deref()
	mt := a.memType()
	if req.MemoryTypeBits&(1<<mt) == 0 {
		vk.DestroyBuffer(d.dev, buf, nil)
		return nil, fmt.Errorf("buffer %q: memory type %d not allowed (bits %b)", name, mt, req.MemoryTypeBits)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	align := uint64(req.Alignment)
	need := uint64(req.Size)
	var blk *block
	var off uint64
	for _, b := range a.blocks {
		o := (b.used + align - 1) / align * align
		if o+need <= b.size {
			blk, off = b, o
			break
		}
	}
	if blk == nil {
		bs := uint64(blockSize)
		if a.kind != DeviceMem {
			bs = 64 << 20
		}
		if need > bs {
			bs = need
		}
		if m := d.Caps.MaxMemoryAllocationSize; m > 0 && bs > m {
			if need > m {
				vk.DestroyBuffer(d.dev, buf, nil)
				return nil, fmt.Errorf("buffer %q: %d bytes exceeds maxMemoryAllocationSize %d", name, need, m)
			}
			bs = m
		}
		var mem vk.DeviceMemory
		r := vk.AllocateMemory(d.dev, &vk.MemoryAllocateInfo{
			SType:           vk.StructureTypeMemoryAllocateInfo,
			AllocationSize:  vk.DeviceSize(bs),
			MemoryTypeIndex: mt,
		}, nil, &mem)
		if r != vk.Success {
			vk.DestroyBuffer(d.dev, buf, nil)
			return nil, vkErr(fmt.Sprintf("allocating %.1f MiB for %q (%.1f MiB already in this arena)",
				float64(bs)/(1<<20), name, float64(a.used)/(1<<20)), r)
		}
		blk = &block{mem: mem, size: bs}
		if d.Caps.MemoryTypes[mt].Flags&uint32(vk.MemoryPropertyHostVisibleBit) != 0 && a.kind != DeviceMem {
			var p unsafe.Pointer
			if r := vk.MapMemory(d.dev, mem, 0, vk.DeviceSize(bs), 0, &p); r != vk.Success {
				vk.FreeMemory(d.dev, mem, nil)
				vk.DestroyBuffer(d.dev, buf, nil)
				return nil, vkErr("vkMapMemory", r)
			}
			blk.mapped = p
		}
		a.blocks = append(a.blocks, blk)
	}
	if r := vk.BindBufferMemory(d.dev, buf, blk.mem, vk.DeviceSize(off)); r != vk.Success {
		vk.DestroyBuffer(d.dev, buf, nil)
		return nil, vkErr("vkBindBufferMemory", r)
	}
	blk.used = off + need
	b := &Buffer{d: d, buf: buf, Size: size, Name: name}
	if blk.mapped != nil {
		b.mapped = unsafe.Add(blk.mapped, off)
	}
	a.bufs = append(a.bufs, b)
	a.used += size
	return b, nil
}

// Allocs allocates buffers from arena A in a row of calls and keeps the first
// error in Err; after one, later calls return empty ranges. A long list of
// buffers is then checked once, after the last call.
type Allocs struct {
	A   *Arena
	Err error
}

// F32 is a buffer of n float32s named name (an empty range after an error).
func (al *Allocs) F32(name string, n int) Range {
	if al.Err != nil {
		return Range{}
	}
	b, err := al.A.Alloc(name, uint64(4*n))
	if err != nil {
		al.Err = err
		return Range{}
	}
	return b.All()
}

// destroyBuffers destroys the arena's buffers (the caller holds mu).
func (a *Arena) destroyBuffers() {
	for _, b := range a.bufs {
		vk.DestroyBuffer(a.d.dev, b.buf, nil)
	}
	a.bufs = nil
}

// Reset destroys every buffer but keeps the memory blocks for later Allocs, so
// repeated setups (benchmarks) do not churn device allocations. The GPU must be
// done with the buffers.
func (a *Arena) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.destroyBuffers()
	for _, b := range a.blocks {
		b.used = 0
	}
	a.used = 0
}

// Free destroys every buffer and frees every block. The GPU must be idle for them.
func (a *Arena) Free() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.destroyBuffers()
	for _, b := range a.blocks {
		if b.mapped != nil {
			vk.UnmapMemory(a.d.dev, b.mem)
		}
		vk.FreeMemory(a.d.dev, b.mem, nil)
	}
	a.blocks, a.used = nil, 0
}
