// Package vk is emu35's Vulkan layer: device choice and capabilities, buffers in
// arenas, compute pipelines with specialization constants and an on-disk cache, a
// command recorder (dispatch, copy, barrier, timestamps) and context-aware submission.
package vk

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"

	vk "github.com/vulkan-go/vulkan"
)

// Options choose and configure the device.
type Options struct {
	// Device is the index in ListDevices order; -1 picks the best (discrete NVIDIA
	// first). The EMU35_DEVICE environment variable overrides -1.
	Device int
	// Validation enables VK_LAYER_KHRONOS_validation (also EMU35_VALIDATION=1).
	Validation bool
	// InstanceExtensions are extra instance extensions (the viewer's surface ones).
	InstanceExtensions []string
	// DeviceExtensions are extra device extensions (the viewer's swapchain).
	DeviceExtensions []string
	// PipelineCache is the cache file; "" picks $XDG_CACHE_HOME/emu35, "-" disables it.
	PipelineCache string
	// PipelineStats asks the driver to keep each pipeline's statistics (register
	// counts, shared memory; Device.PipelineStats). Open fails if it cannot.
	PipelineStats bool
}

// DefaultOptions picks the best device.
func DefaultOptions() Options { return Options{Device: -1} }

// Device is an open logical device with one compute queue.
type Device struct {
	Caps  *Caps
	Index int

	inst  vk.Instance
	pd    vk.PhysicalDevice
	dev   vk.Device
	queue vk.Queue
	qmu   sync.Mutex

	memDevice, memUpload, memReadback uint32

	pipes     *pipelineSet
	stats     bool // pipelines are created with their statistics captured
	pollWaits bool // replays poll their fence (a GPU, not a CPU device: Cmd.waitReplay)
	fns       *devFns
	staging   *stagingRing
	ownsInst  bool
	closeOnce sync.Once
}

var loadOnce sync.Once
var loadErr error

func load() error {
	loadOnce.Do(func() { loadErr = loadLoader() })
	return loadErr
}

// Instance returns the raw VkInstance (for GLFW surfaces).
func (d *Device) Instance() vk.Instance { return d.inst }

// Physical returns the VkPhysicalDevice.
func (d *Device) Physical() vk.PhysicalDevice { return d.pd }

// Handle returns the VkDevice.
func (d *Device) Handle() vk.Device { return d.dev }

// Queue returns the queue; lock it with LockQueue while using it directly.
func (d *Device) Queue() vk.Queue { return d.queue }

// LockQueue serializes direct use of the queue (e.g. presentation).
func (d *Device) LockQueue() func() { d.qmu.Lock(); return d.qmu.Unlock }

// ListDevices reports every Vulkan physical device.
func ListDevices() ([]*Caps, error) {
	if err := load(); err != nil {
		return nil, err
	}
	inst, err := createInstance(nil, false)
	if err != nil {
		return nil, err
	}
	defer destroyInstance(inst)
	pds, err := enumDevices(inst)
	if err != nil {
		return nil, err
	}
	caps := make([]*Caps, len(pds))
	for i, pd := range pds {
		caps[i] = queryCaps(inst, pd)
	}
	return caps, nil
}

// rank orders devices: usable first, then discrete NVIDIA, discrete, integrated, others.
func rank(c *Caps) int {
	r := 0
	if len(c.Missing()) == 0 {
		r += 100
	}
	switch c.Type {
	case 2:
		r += 20
	case 1:
		r += 10
	case 3:
		r += 5
	}
	if c.VendorID == VendorNVIDIA {
		r += 5
	}
	return r
}

// Open creates the device.
func Open(opts Options) (*Device, error) {
	if err := load(); err != nil {
		return nil, err
	}
	if opts.Device < 0 {
		if s := os.Getenv("EMU35_DEVICE"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("EMU35_DEVICE=%q is not a device index (see `emu35 devices`)", s)
			}
			opts.Device = n
		}
	}
	if os.Getenv("EMU35_VALIDATION") == "1" {
		opts.Validation = true
	}
	inst, err := createInstance(opts.InstanceExtensions, opts.Validation)
	if err != nil {
		return nil, err
	}
	d := &Device{inst: inst, ownsInst: true}
	ok := false
	defer func() {
		if !ok {
			destroyInstance(inst)
		}
	}()
	pds, err := enumDevices(inst)
	if err != nil {
		return nil, err
	}
	if len(pds) == 0 {
		return nil, fmt.Errorf("%w: the Vulkan loader found no device; install a driver (`apt-get install mesa-vulkan-drivers` gives the lavapipe CPU device, or the NVIDIA driver)", ErrNoVulkan)
	}
	caps := make([]*Caps, len(pds))
	order := make([]int, len(pds))
	for i, pd := range pds {
		caps[i] = queryCaps(inst, pd)
		order[i] = i
	}
	idx := opts.Device
	if idx >= len(pds) {
		return nil, fmt.Errorf("device %d requested but only %d Vulkan devices exist (see `emu35 devices`)", idx, len(pds))
	}
	if idx < 0 {
		sort.SliceStable(order, func(a, b int) bool { return rank(caps[order[a]]) > rank(caps[order[b]]) })
		idx = order[0]
	}
	c := caps[idx]
	if m := c.Missing(); len(m) > 0 {
		return nil, fmt.Errorf("%w: device %d %q lacks %v, which emu35's kernels need", ErrNoVulkan, idx, c.Name, m)
	}
	d.Caps, d.Index, d.pd = c, idx, pds[idx]
	if opts.PipelineStats && !c.PipelineStats {
		return nil, fmt.Errorf("device %d %q cannot report pipeline statistics (it lacks VK_KHR_pipeline_executable_properties); run without asking for them", idx, c.Name)
	}
	d.stats = opts.PipelineStats
	d.pollWaits = c.Type == 1 || c.Type == 2 // integrated or discrete GPU
	if v := os.Getenv("EMU35_POLL"); v != "" {
		d.pollWaits = v == "1"
	}
	d.dev, err = createDevice(inst, d.pd, opts.DeviceExtensions, d.stats)
	if err != nil {
		return nil, err
	}
	var q vk.Queue
	vk.GetDeviceQueue(d.dev, c.QueueFamily, 0, &q)
	d.queue = q
	d.fns = loadDevFns(inst, d.dev)
	d.chooseMemoryTypes()
	d.pipes = newPipelineSet(d, opts.PipelineCache)
	d.staging = newStagingRing(d)
	ok = true
	return d, nil
}

// chooseMemoryTypes picks device-local memory for tensors, host-visible memory
// (preferably not device-local) for uploads and host-cached memory for readbacks.
func (d *Device) chooseMemoryTypes() {
	const (
		local    = uint32(vk.MemoryPropertyDeviceLocalBit)
		visible  = uint32(vk.MemoryPropertyHostVisibleBit)
		coherent = uint32(vk.MemoryPropertyHostCoherentBit)
		cached   = uint32(vk.MemoryPropertyHostCachedBit)
	)
	pick := func(want, avoid uint32) uint32 {
		for pass := 0; pass < 2; pass++ {
			for i, t := range d.Caps.MemoryTypes {
				if t.Flags&want == want && (pass == 1 || t.Flags&avoid == 0) {
					return uint32(i)
				}
			}
		}
		return ^uint32(0)
	}
	d.memDevice = pick(local, 0)
	d.memUpload = pick(visible|coherent, local)
	d.memReadback = pick(visible|coherent|cached, local)
	if d.memReadback == ^uint32(0) {
		d.memReadback = d.memUpload
	}
}

// Close waits for the GPU and frees everything the device owns.
func (d *Device) Close() {
	d.closeOnce.Do(func() {
		vk.DeviceWaitIdle(d.dev)
		d.staging.free()
		d.pipes.close()
		vk.DestroyDevice(d.dev, nil)
		if d.ownsInst {
			destroyInstance(d.inst)
		}
	})
}

func vkErr(op string, r vk.Result) error {
	err := vk.Error(r)
	if r == vk.ErrorOutOfDeviceMemory {
		return fmt.Errorf("%s: %w (%v): the GPU is out of memory; pick a smaller --weights format or free GPU memory", op, ErrOutOfMemory, err)
	}
	if r == vk.ErrorDeviceLost {
		return fmt.Errorf("%s: %w: the GPU device was lost (driver reset or a hung kernel)", op, err)
	}
	return fmt.Errorf("%s: %v", op, err)
}
