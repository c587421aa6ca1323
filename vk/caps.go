package vk

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoVulkan means no Vulkan loader, instance or device could be had.
var ErrNoVulkan = errors.New("no usable Vulkan")

// DeviceType is VkPhysicalDeviceType.
type DeviceType uint32

func (t DeviceType) String() string {
	switch t {
	case 1:
		return "integrated GPU"
	case 2:
		return "discrete GPU"
	case 3:
		return "virtual GPU"
	case 4:
		return "CPU"
	}
	return "other"
}

// CoopMatShape is one cooperative-matrix shape the driver offers (VK_NV_cooperative_matrix).
type CoopMatShape struct {
	M, N, K         uint32
	A, B, C, Result string
}

// HasCoopMat reports whether the driver offers subgroup cooperative matrices
// of shape m × n × k with inputs of component type ab and accumulators and
// results of type acc ("f16", "f32", "s8", "s32"...).
func (c *Caps) HasCoopMat(m, n, k uint32, ab, acc string) bool {
	for _, s := range c.CoopMatShapes {
		if s.M == m && s.N == n && s.K == k && s.A == ab && s.B == ab && s.C == acc && s.Result == acc {
			return true
		}
	}
	return false
}

// Heap is one memory heap.
type Heap struct {
	Size        uint64
	DeviceLocal bool
}

// MemoryType is one memory type: VkMemoryPropertyFlags and its heap.
type MemoryType struct {
	Flags uint32
	Heap  uint32
}

// Caps is what emu35 needs to know about a physical device.
type Caps struct {
	Name, DriverName, DriverInfo string
	UUID                         [16]byte
	APIVersion, DriverVersion    uint32
	VendorID, DeviceID           uint32
	Type                         DeviceType
	QueueFamily                  uint32
	TimestampValidBits           uint32
	TimestampPeriod              float64 // ns per tick

	SubgroupSize, MinSubgroupSize, MaxSubgroupSize uint32
	SubgroupOps                                    uint32 // VkSubgroupFeatureFlags
	SubgroupSizeControl, ComputeFullSubgroups      bool

	Float16, Float64, Int8, Int16, Int64, Storage16, Storage8, SubgroupExtendedTypes bool
	IntegerDotProduct, Dot4x8PackedAccelerated                                       bool
	MemoryModel, BufferDeviceAddress, TimelineSemaphore                              bool
	Synchronization2, Maintenance4, ScalarBlockLayout                                bool
	CoopMatNV, CoopMatKHR, CoopMat2NV, BFloat16                                      bool
	PipelineStats                                                                    bool   // VK_KHR_pipeline_executable_properties
	SMCount, WarpsPerSM                                                              uint32 // VK_NV_shader_sm_builtins (0 without it)
	CoopMatShapes                                                                    []CoopMatShape

	MaxStorageBufferRange, MaxMemoryAllocationSize, MaxBufferSize uint64
	MinStorageOffsetAlign, NonCoherentAtomSize                    uint64
	MaxSharedMemory, MaxInvocations, MaxPushConstants             uint32
	MaxWorkGroupSize, MaxWorkGroupCount                           [3]uint32

	Heaps       []Heap
	MemoryTypes []MemoryType
}

// VendorNVIDIA is NVIDIA's PCI vendor id.
const VendorNVIDIA = 0x10de

// DeviceLocalBytes is the size of the largest device-local heap.
func (c *Caps) DeviceLocalBytes() uint64 {
	var m uint64
	for _, h := range c.Heaps {
		if h.DeviceLocal && h.Size > m {
			m = h.Size
		}
	}
	return m
}

// Missing lists the features emu35's kernels cannot do without.
func (c *Caps) Missing() []string {
	var miss []string
	need := []struct {
		ok   bool
		name string
	}{
		{c.APIVersion>>22 >= 1 && (c.APIVersion>>12)&0x3ff >= 3, "Vulkan 1.3"},
		{c.Float16, "shaderFloat16"},
		{c.Int8, "shaderInt8"},
		{c.Storage16, "storageBuffer16BitAccess"},
		{c.Storage8, "storageBuffer8BitAccess"},
		{c.IntegerDotProduct, "shaderIntegerDotProduct"},
		{c.SubgroupOps&0x0f == 0x0f, "subgroup basic/vote/arithmetic/ballot"},
		{c.SubgroupOps&0x10 != 0, "subgroup shuffle"},                // the single-query attention's key slices
		{c.SubgroupSize >= 4, "subgroups of at least 4 invocations"}, // ... on adjacent lanes
		{c.QueueFamily != ^uint32(0), "a compute queue"},
	}
	for _, n := range need {
		if !n.ok {
			miss = append(miss, n.name)
		}
	}
	return miss
}

func version(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", v>>22, (v>>12)&0x3ff, v&0xfff)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func gib(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// Report is a human-readable capability table.
func (c *Caps) Report() string {
	var s strings.Builder
	row := func(k, v string) { fmt.Fprintf(&s, "  %-34s %s\n", k, v) }
	fmt.Fprintf(&s, "%s (%s)\n", c.Name, c.Type)
	row("Vulkan API", version(c.APIVersion))
	row("driver", strings.TrimSpace(c.DriverName+" "+c.DriverInfo))
	row("vendor:device", fmt.Sprintf("0x%04x:0x%04x", c.VendorID, c.DeviceID))
	row("subgroup size (min-max)", fmt.Sprintf("%d (%d-%d), size control %s, full subgroups %s",
		c.SubgroupSize, c.MinSubgroupSize, c.MaxSubgroupSize, yes(c.SubgroupSizeControl), yes(c.ComputeFullSubgroups)))
	ops := []string{"basic", "vote", "arithmetic", "ballot", "shuffle", "shuffle_relative", "clustered", "quad"}
	var have []string
	for i, o := range ops {
		if c.SubgroupOps&(1<<i) != 0 {
			have = append(have, o)
		}
	}
	row("subgroup operations", strings.Join(have, " "))
	row("f16 / f64 / int8 / int16 / int64", fmt.Sprintf("%s / %s / %s / %s / %s", yes(c.Float16), yes(c.Float64), yes(c.Int8), yes(c.Int16), yes(c.Int64)))
	row("16-bit / 8-bit storage", fmt.Sprintf("%s / %s", yes(c.Storage16), yes(c.Storage8)))
	row("subgroup f16/i8 types", yes(c.SubgroupExtendedTypes))
	row("integer dot product (4x8 accel.)", fmt.Sprintf("%s (%s)", yes(c.IntegerDotProduct), yes(c.Dot4x8PackedAccelerated)))
	row("cooperative matrix NV / KHR / NV2", fmt.Sprintf("%s / %s / %s", yes(c.CoopMatNV), yes(c.CoopMatKHR), yes(c.CoopMat2NV)))
	for _, m := range c.CoopMatShapes {
		row("", fmt.Sprintf("coopmat %dx%dx%d %s*%s+%s->%s", m.M, m.N, m.K, m.A, m.B, m.C, m.Result))
	}
	row("bfloat16 shaders", yes(c.BFloat16))
	row("pipeline statistics", yes(c.PipelineStats))
	if c.SMCount > 0 {
		row("multiprocessors (warps each)", fmt.Sprintf("%d (%d)", c.SMCount, c.WarpsPerSM))
	}
	row("memory model / BDA / timeline", fmt.Sprintf("%s / %s / %s", yes(c.MemoryModel), yes(c.BufferDeviceAddress), yes(c.TimelineSemaphore)))
	row("max storage binding", fmt.Sprintf("%d bytes (%s)", c.MaxStorageBufferRange, gib(c.MaxStorageBufferRange)))
	row("max allocation / buffer", fmt.Sprintf("%s / %s", gib(c.MaxMemoryAllocationSize), gib(c.MaxBufferSize)))
	row("shared memory per workgroup", fmt.Sprintf("%d bytes", c.MaxSharedMemory))
	row("workgroup invocations", fmt.Sprintf("%d, size %v, count %v", c.MaxInvocations, c.MaxWorkGroupSize, c.MaxWorkGroupCount))
	row("push constants", fmt.Sprintf("%d bytes", c.MaxPushConstants))
	row("timestamps", fmt.Sprintf("%.3g ns/tick, %d valid bits", c.TimestampPeriod, c.TimestampValidBits))
	for i, h := range c.Heaps {
		kind := "host"
		if h.DeviceLocal {
			kind = "device-local"
		}
		row(fmt.Sprintf("heap %d", i), fmt.Sprintf("%s %s", gib(h.Size), kind))
	}
	if m := c.Missing(); len(m) > 0 {
		row("UNUSABLE by emu35, lacks", strings.Join(m, ", "))
	}
	return s.String()
}
