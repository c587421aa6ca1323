package vk

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// loadLoader opens libvulkan.so.1 and hands its vkGetInstanceProcAddr to vulkan-go.
// vulkan-go's own default loader needs the unversioned libvulkan.so from the -dev package.
func loadLoader() error {
	var buf [512]C.char
	if C.emu_load(&buf[0], C.int(len(buf))) != 0 {
		return fmt.Errorf("%w: cannot load the Vulkan loader (%s); install it with `apt-get install libvulkan1 mesa-vulkan-drivers` (or your GPU driver's Vulkan ICD)",
			ErrNoVulkan, C.GoString(&buf[0]))
	}
	vk.SetGetInstanceProcAddr(C.emu_gipa())
	if err := vk.Init(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoVulkan, err)
	}
	return nil
}

// cStrings copies Go strings into C memory; free with freeCStrings.
func cStrings(ss []string) **C.char {
	if len(ss) == 0 {
		return nil
	}
	arr := (*[1 << 20]*C.char)(C.malloc(C.size_t(len(ss)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	for i, s := range ss {
		arr[i] = C.CString(s)
	}
	return &arr[0]
}

func freeCStrings(p **C.char, n int) {
	if p == nil {
		return
	}
	arr := (*[1 << 20]*C.char)(unsafe.Pointer(p))
	for i := 0; i < n; i++ {
		C.free(unsafe.Pointer(arr[i]))
	}
	C.free(unsafe.Pointer(p))
}

func createInstance(exts []string, validation bool) (vk.Instance, error) {
	cs := cStrings(exts)
	defer freeCStrings(cs, len(exts))
	var inst C.VkInstance
	v := C.int(0)
	if validation {
		v = 1
	}
	if r := C.emu_create_instance(cs, C.uint32_t(len(exts)), v, &inst); r != C.VK_SUCCESS {
		return nil, fmt.Errorf("%w: vkCreateInstance failed (%s): no Vulkan 1.3 driver was found; install one "+
			"(`apt-get install mesa-vulkan-drivers` gives the lavapipe CPU device; on NVIDIA, the driver's Vulkan ICD, "+
			"with VK_DRIVER_FILES pointing at nvidia_icd.json if it is not in the standard place)", ErrNoVulkan, vk.Error(vk.Result(r)))
	}
	h := vk.Instance(unsafe.Pointer(inst))
	if err := vk.InitInstance(h); err != nil {
		return nil, err
	}
	return h, nil
}

func destroyInstance(inst vk.Instance) { C.emu_destroy_instance(C.VkInstance(unsafe.Pointer(inst))) }

func enumDevices(inst vk.Instance) ([]vk.PhysicalDevice, error) {
	ci := C.VkInstance(unsafe.Pointer(inst))
	var n C.uint32_t
	if r := C.emu_enum_devices(ci, &n, nil); r != C.VK_SUCCESS {
		return nil, fmt.Errorf("vkEnumeratePhysicalDevices: %s", vk.Error(vk.Result(r)))
	}
	if n == 0 {
		return nil, nil
	}
	arr := (*C.VkPhysicalDevice)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	if r := C.emu_enum_devices(ci, &n, arr); r != C.VK_SUCCESS && r != C.VK_INCOMPLETE {
		return nil, fmt.Errorf("vkEnumeratePhysicalDevices: %s", vk.Error(vk.Result(r)))
	}
	out := make([]vk.PhysicalDevice, n)
	for i, p := range unsafe.Slice(arr, n) {
		out[i] = vk.PhysicalDevice(unsafe.Pointer(p))
	}
	return out, nil
}

func queryCaps(inst vk.Instance, pd vk.PhysicalDevice) *Caps {
	c := (*C.EmuCaps)(C.calloc(1, C.size_t(unsafe.Sizeof(C.EmuCaps{}))))
	defer C.free(unsafe.Pointer(c))
	C.emu_query(C.VkInstance(unsafe.Pointer(inst)), C.VkPhysicalDevice(unsafe.Pointer(pd)), c)
	b := func(v C.uint32_t) bool { return v != 0 }
	caps := &Caps{
		Name:                    C.GoString(&c.name[0]),
		DriverName:              C.GoString(&c.driverName[0]),
		DriverInfo:              C.GoString(&c.driverInfo[0]),
		APIVersion:              uint32(c.apiVersion),
		DriverVersion:           uint32(c.driverVersion),
		VendorID:                uint32(c.vendorID),
		DeviceID:                uint32(c.deviceID),
		Type:                    DeviceType(c.deviceType),
		QueueFamily:             uint32(c.queueFamily),
		TimestampValidBits:      uint32(c.timestampValidBits),
		TimestampPeriod:         float64(c.timestampPeriod),
		SubgroupSize:            uint32(c.subgroupSize),
		MinSubgroupSize:         uint32(c.minSubgroupSize),
		MaxSubgroupSize:         uint32(c.maxSubgroupSize),
		SubgroupOps:             uint32(c.subgroupOps),
		SubgroupSizeControl:     b(c.subgroupSizeControl),
		ComputeFullSubgroups:    b(c.computeFullSubgroups),
		Float16:                 b(c.shaderFloat16),
		Int8:                    b(c.shaderInt8),
		Int16:                   b(c.shaderInt16),
		Int64:                   b(c.shaderInt64),
		Float64:                 b(c.shaderFloat64),
		Storage16:               b(c.storage16),
		Storage8:                b(c.storage8),
		SubgroupExtendedTypes:   b(c.subgroupExtendedTypes),
		IntegerDotProduct:       b(c.integerDotProduct),
		Dot4x8PackedAccelerated: b(c.dot4x8PackedSignedAccel),
		MemoryModel:             b(c.memoryModel),
		BufferDeviceAddress:     b(c.bufferDeviceAddress),
		TimelineSemaphore:       b(c.timelineSemaphore),
		Synchronization2:        b(c.synchronization2),
		Maintenance4:            b(c.maintenance4),
		ScalarBlockLayout:       b(c.scalarBlockLayout),
		CoopMatNV:               b(c.coopmatNV),
		CoopMatKHR:              b(c.coopmatKHR),
		CoopMat2NV:              b(c.coopmat2NV),
		BFloat16:                b(c.bfloat16),
		PipelineStats:           b(c.execProps),
		SMCount:                 uint32(c.smCount),
		WarpsPerSM:              uint32(c.warpsPerSM),
		MaxStorageBufferRange:   uint64(c.maxStorageBufferRange),
		MaxMemoryAllocationSize: uint64(c.maxMemoryAllocationSize),
		MaxBufferSize:           uint64(c.maxBufferSize),
		MinStorageOffsetAlign:   uint64(c.minStorageBufferOffsetAlignment),
		NonCoherentAtomSize:     uint64(c.nonCoherentAtomSize),
		MaxSharedMemory:         uint32(c.maxSharedMemory),
		MaxInvocations:          uint32(c.maxInvocations),
		MaxPushConstants:        uint32(c.maxPushConstants),
	}
	copy(caps.UUID[:], C.GoBytes(unsafe.Pointer(&c.uuid[0]), 16))
	for i := 0; i < 3; i++ {
		caps.MaxWorkGroupSize[i] = uint32(c.maxWGSize[i])
		caps.MaxWorkGroupCount[i] = uint32(c.maxWGCount[i])
	}
	for i := 0; i < int(c.nCoopMat); i++ {
		m := c.coopMat[i]
		caps.CoopMatShapes = append(caps.CoopMatShapes, CoopMatShape{
			M: uint32(m.M), N: uint32(m.N), K: uint32(m.K),
			A: componentType(m.a), B: componentType(m.b), C: componentType(m.c), Result: componentType(m.result),
		})
	}
	for i := 0; i < int(c.nHeaps); i++ {
		caps.Heaps = append(caps.Heaps, Heap{Size: uint64(c.heapSize[i]), DeviceLocal: c.heapFlags[i]&1 != 0})
	}
	for i := 0; i < int(c.nTypes); i++ {
		caps.MemoryTypes = append(caps.MemoryTypes, MemoryType{Flags: uint32(c.typeFlags[i]), Heap: uint32(c.typeHeap[i])})
	}
	return caps
}

func createDevice(inst vk.Instance, pd vk.PhysicalDevice, exts []string, stats bool) (vk.Device, error) {
	c := (*C.EmuCaps)(C.calloc(1, C.size_t(unsafe.Sizeof(C.EmuCaps{}))))
	defer C.free(unsafe.Pointer(c))
	ci := C.VkInstance(unsafe.Pointer(inst))
	cp := C.VkPhysicalDevice(unsafe.Pointer(pd))
	C.emu_query(ci, cp, c)
	if c.coopmatNV != 0 {
		exts = append(exts, "VK_NV_cooperative_matrix")
	}
	st := C.int(0)
	if stats {
		exts = append(exts, "VK_KHR_pipeline_executable_properties")
		st = 1
	}
	cs := cStrings(exts)
	defer freeCStrings(cs, len(exts))
	var dev C.VkDevice
	if r := C.emu_create_device(ci, cp, c, cs, C.uint32_t(len(exts)), st, &dev); r != C.VK_SUCCESS {
		return nil, fmt.Errorf("vkCreateDevice on %q: %s", C.GoString(&c.name[0]), vk.Error(vk.Result(r)))
	}
	return vk.Device(unsafe.Pointer(dev)), nil
}

func componentType(t C.uint32_t) string {
	switch t {
	case C.VK_COMPONENT_TYPE_FLOAT16_NV:
		return "f16"
	case C.VK_COMPONENT_TYPE_FLOAT32_NV:
		return "f32"
	case C.VK_COMPONENT_TYPE_SINT8_NV:
		return "s8"
	case C.VK_COMPONENT_TYPE_UINT8_NV:
		return "u8"
	case C.VK_COMPONENT_TYPE_SINT32_NV:
		return "s32"
	case C.VK_COMPONENT_TYPE_UINT32_NV:
		return "u32"
	}
	return fmt.Sprintf("type%d", t)
}

// cBytes copies b into C memory so it can sit inside structs that vulkan-go
// hands to the driver; free with freeC.
func cBytes(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return C.CBytes(b)
}

func freeC(p unsafe.Pointer) {
	if p != nil {
		C.free(p)
	}
}

type devFns = C.EmuDevFns

func loadDevFns(inst vk.Instance, dev vk.Device) *devFns {
	return C.emu_dev_fns(C.VkInstance(unsafe.Pointer(inst)), C.VkDevice(unsafe.Pointer(dev)))
}

func allocSet(f *devFns, dev vk.Device, pool vk.DescriptorPool, dsl vk.DescriptorSetLayout) (vk.DescriptorSet, vk.Result) {
	var set C.VkDescriptorSet
	r := C.emu_alloc_set(f, C.VkDevice(unsafe.Pointer(dev)), C.VkDescriptorPool(unsafe.Pointer(pool)),
		C.VkDescriptorSetLayout(unsafe.Pointer(dsl)), &set)
	return vk.DescriptorSet(unsafe.Pointer(set)), vk.Result(r)
}

func writeSet(f *devFns, dev vk.Device, set vk.DescriptorSet, rs []Range) {
	var bufs [32]C.VkBuffer
	var offs, ranges [32]C.uint64_t
	for i, r := range rs {
		bufs[i] = C.VkBuffer(unsafe.Pointer(r.B.buf))
		offs[i] = C.uint64_t(r.Off)
		ranges[i] = C.uint64_t(r.Size)
	}
	C.emu_write_set(f, C.VkDevice(unsafe.Pointer(dev)), C.VkDescriptorSet(unsafe.Pointer(set)), C.uint32_t(len(rs)), &bufs[0], &offs[0], &ranges[0])
}

func recordDispatch(f *devFns, cb vk.CommandBuffer, p *Pipeline, set vk.DescriptorSet, push []byte, g [3]uint32) {
	var pp unsafe.Pointer
	if len(push) > 0 {
		pp = C.CBytes(push)
		defer C.free(pp)
	}
	C.emu_dispatch(f, C.VkCommandBuffer(unsafe.Pointer(cb)), C.VkPipeline(unsafe.Pointer(p.pipe)),
		C.VkPipelineLayout(unsafe.Pointer(p.layout)), C.VkDescriptorSet(unsafe.Pointer(set)), pp, C.uint32_t(len(push)),
		C.uint32_t(g[0]), C.uint32_t(g[1]), C.uint32_t(g[2]))
}

func recordBarrier(f *devFns, cb vk.CommandBuffer) {
	C.emu_barrier(f, C.VkCommandBuffer(unsafe.Pointer(cb)))
}

func recordCopy(f *devFns, cb vk.CommandBuffer, dst, src Range) {
	C.emu_copy(f, C.VkCommandBuffer(unsafe.Pointer(cb)), C.VkBuffer(unsafe.Pointer(src.B.buf)), C.VkBuffer(unsafe.Pointer(dst.B.buf)),
		C.uint64_t(src.Off), C.uint64_t(dst.Off), C.uint64_t(dst.Size))
}

func computePipeline(f *devFns, dev vk.Device, cache vk.PipelineCache, mod vk.ShaderModule, layout vk.PipelineLayout, spec []uint32, stats bool) (vk.Pipeline, vk.Result) {
	var sp *C.uint32_t
	if len(spec) > 0 {
		sp = (*C.uint32_t)(C.malloc(C.size_t(4 * len(spec))))
		defer C.free(unsafe.Pointer(sp))
		copy(unsafe.Slice((*uint32)(unsafe.Pointer(sp)), len(spec)), spec)
	}
	st := C.int(0)
	if stats {
		st = 1
	}
	var p C.VkPipeline
	r := C.emu_compute_pipeline(f, C.VkDevice(unsafe.Pointer(dev)), C.VkPipelineCache(unsafe.Pointer(cache)),
		C.VkShaderModule(unsafe.Pointer(mod)), C.VkPipelineLayout(unsafe.Pointer(layout)), sp, C.uint32_t(len(spec)), st, &p)
	return vk.Pipeline(unsafe.Pointer(p)), vk.Result(r)
}

// pipelineStats reads the driver's statistics of a pipeline created with stats on.
func pipelineStats(f *devFns, dev vk.Device, p vk.Pipeline) ([]PipelineStat, error) {
	const most = 64
	out := (*C.EmuStat)(C.calloc(most, C.size_t(unsafe.Sizeof(C.EmuStat{}))))
	defer C.free(unsafe.Pointer(out))
	n := C.uint32_t(most)
	if r := C.emu_pipeline_stats(f, C.VkDevice(unsafe.Pointer(dev)), C.VkPipeline(unsafe.Pointer(p)), out, &n); r != C.VK_SUCCESS {
		return nil, fmt.Errorf("vkGetPipelineExecutableStatisticsKHR: %s", vk.Error(vk.Result(r)))
	}
	var stats []PipelineStat
	for _, s := range unsafe.Slice(out, int(n)) {
		st := PipelineStat{Name: C.GoString(&s.name[0]), Description: C.GoString(&s.description[0])}
		switch s.format {
		case C.VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
			st.Value = float64(s.b32)
		case C.VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
			st.Value = float64(s.i64)
		case C.VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
			st.Value = float64(s.u64)
		default:
			st.Value = float64(s.f64)
		}
		stats = append(stats, st)
	}
	return stats, nil
}
