//go:build !noviewer

package viewer

import (
	"fmt"
	"image"
	"os"
	"runtime"

	"github.com/go-gl/glfw/v3.3/glfw"
	vkg "github.com/vulkan-go/vulkan"

	"github.com/emu35/emu35/vk"
)

var initErr error
var inited bool

// Init starts GLFW on the calling thread (which must stay the one that calls
// every other function here) and returns the Vulkan instance extensions the
// engine's device must be created with. It fails at once without a display.
func Init() ([]string, error) {
	if inited {
		return (*glfw.Window)(nil).GetRequiredInstanceExtensions(), initErr
	}
	runtime.LockOSThread()
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return nil, fmt.Errorf("%w: DISPLAY is not set (run under a desktop session or xvfb-run, or drop --view)", ErrNoDisplay)
	}
	if err := glfw.Init(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDisplay, err)
	}
	inited = true
	exts := (*glfw.Window)(nil).GetRequiredInstanceExtensions()
	if len(exts) == 0 {
		initErr = fmt.Errorf("%w: GLFW found no Vulkan surface support", ErrNoDisplay)
	}
	return exts, initErr
}

// DeviceExtensions are the device extensions presentation needs.
var DeviceExtensions = []string{"VK_KHR_swapchain"}

// Window shows frames through a swapchain of the engine's device.
type Window struct {
	win     *glfw.Window
	d       *vk.Device
	surface vkg.Surface
	swap    vkg.Swapchain
	images  []vkg.Image
	format  vkg.Format
	w, h    int
	pool    vkg.CommandPool
	cb      vkg.CommandBuffer
	acquire vkg.Semaphore
	done    vkg.Semaphore
	fence   vkg.Fence
	arena   *vk.Arena
	staging *vk.Buffer
	keys    []Key
	frame   []byte
}

// Open creates a w×h window titled title on device d (created with Init's
// instance extensions and DeviceExtensions).
func Open(d *vk.Device, title string, w, h int) (*Window, error) {
	glfw.WindowHint(glfw.ClientAPI, glfw.NoAPI)
	glfw.WindowHint(glfw.Resizable, glfw.True)
	win, err := glfw.CreateWindow(w, h, title, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("creating the window: %w", err)
	}
	wd := &Window{win: win, d: d, arena: d.NewArena(vk.UploadMem)}
	ptr, err := win.CreateWindowSurface(d.Instance(), nil)
	if err != nil {
		win.Destroy()
		return nil, fmt.Errorf("creating the window's Vulkan surface: %w", err)
	}
	wd.surface = vkg.SurfaceFromPointer(ptr)
	var ok vkg.Bool32
	vkg.GetPhysicalDeviceSurfaceSupport(d.Physical(), d.Caps.QueueFamily, wd.surface, &ok)
	if ok == vkg.False {
		wd.Close()
		return nil, fmt.Errorf("the Vulkan device cannot present to this window")
	}
	var pool vkg.CommandPool
	if r := vkg.CreateCommandPool(d.Handle(), &vkg.CommandPoolCreateInfo{SType: vkg.StructureTypeCommandPoolCreateInfo,
		Flags: vkg.CommandPoolCreateFlags(vkg.CommandPoolCreateResetCommandBufferBit), QueueFamilyIndex: d.Caps.QueueFamily}, nil, &pool); r != vkg.Success {
		wd.Close()
		return nil, fmt.Errorf("vkCreateCommandPool: %v", vkg.Error(r))
	}
	wd.pool = pool
	cbs := make([]vkg.CommandBuffer, 1)
	vkg.AllocateCommandBuffers(d.Handle(), &vkg.CommandBufferAllocateInfo{SType: vkg.StructureTypeCommandBufferAllocateInfo,
		CommandPool: pool, Level: vkg.CommandBufferLevelPrimary, CommandBufferCount: 1}, cbs)
	wd.cb = cbs[0]
	var s1, s2 vkg.Semaphore
	var f vkg.Fence
	vkg.CreateSemaphore(d.Handle(), &vkg.SemaphoreCreateInfo{SType: vkg.StructureTypeSemaphoreCreateInfo}, nil, &s1)
	vkg.CreateSemaphore(d.Handle(), &vkg.SemaphoreCreateInfo{SType: vkg.StructureTypeSemaphoreCreateInfo}, nil, &s2)
	vkg.CreateFence(d.Handle(), &vkg.FenceCreateInfo{SType: vkg.StructureTypeFenceCreateInfo}, nil, &f)
	wd.acquire, wd.done, wd.fence = s1, s2, f
	win.SetKeyCallback(func(_ *glfw.Window, key glfw.Key, _ int, action glfw.Action, _ glfw.ModifierKey) {
		if action != glfw.Press {
			return
		}
		switch key {
		case glfw.KeyLeft:
			wd.keys = append(wd.keys, KeyLeft)
		case glfw.KeyRight:
			wd.keys = append(wd.keys, KeyRight)
		case glfw.KeyS:
			wd.keys = append(wd.keys, KeySave)
		case glfw.KeyEscape:
			wd.keys = append(wd.keys, KeyQuit)
		}
	})
	if err := wd.recreate(); err != nil {
		wd.Close()
		return nil, err
	}
	return wd, nil
}

// recreate builds the swapchain for the window's current size.
func (wd *Window) recreate() error {
	dev := wd.d.Handle()
	vkg.DeviceWaitIdle(dev)
	var caps vkg.SurfaceCapabilities
	if r := vkg.GetPhysicalDeviceSurfaceCapabilities(wd.d.Physical(), wd.surface, &caps); r != vkg.Success {
		return fmt.Errorf("surface capabilities: %v", vkg.Error(r))
	}
	caps.Deref()
	caps.CurrentExtent.Deref()
	fw, fh := wd.win.GetFramebufferSize()
	w, h := int(caps.CurrentExtent.Width), int(caps.CurrentExtent.Height)
	if w == -1 || uint32(w) == 0xFFFFFFFF || w == 0 {
		w, h = fw, fh
	}
	if w <= 0 || h <= 0 {
		return nil // minimised: nothing to present
	}
	if caps.SupportedUsageFlags&vkg.ImageUsageFlags(vkg.ImageUsageTransferDstBit) == 0 {
		return fmt.Errorf("the surface does not accept copies (no TRANSFER_DST usage)")
	}
	var n uint32
	vkg.GetPhysicalDeviceSurfaceFormats(wd.d.Physical(), wd.surface, &n, nil)
	formats := make([]vkg.SurfaceFormat, n)
	vkg.GetPhysicalDeviceSurfaceFormats(wd.d.Physical(), wd.surface, &n, formats)
	wd.format = vkg.FormatUndefined
	for _, f := range formats {
		f.Deref()
		if f.Format == vkg.FormatB8g8r8a8Unorm || (wd.format == vkg.FormatUndefined && f.Format == vkg.FormatB8g8r8a8Srgb) {
			wd.format = f.Format
		}
	}
	if wd.format == vkg.FormatUndefined {
		return fmt.Errorf("the surface offers no B8G8R8A8 format")
	}
	count := max(caps.MinImageCount, 2)
	if caps.MaxImageCount > 0 && count > caps.MaxImageCount {
		count = caps.MaxImageCount
	}
	old := wd.swap
	var swap vkg.Swapchain
	r := vkg.CreateSwapchain(dev, &vkg.SwapchainCreateInfo{
		SType: vkg.StructureTypeSwapchainCreateInfo, Surface: wd.surface, MinImageCount: count,
		ImageFormat: wd.format, ImageColorSpace: vkg.ColorSpaceSrgbNonlinear,
		ImageExtent:      vkg.Extent2D{Width: uint32(w), Height: uint32(h)},
		ImageArrayLayers: 1, ImageUsage: vkg.ImageUsageFlags(vkg.ImageUsageTransferDstBit | vkg.ImageUsageColorAttachmentBit),
		ImageSharingMode: vkg.SharingModeExclusive, PreTransform: caps.CurrentTransform,
		CompositeAlpha: vkg.CompositeAlphaOpaqueBit, PresentMode: vkg.PresentModeFifo, Clipped: vkg.True, OldSwapchain: old,
	}, nil, &swap)
	if r != vkg.Success {
		return fmt.Errorf("vkCreateSwapchainKHR: %v", vkg.Error(r))
	}
	if old != vkg.NullSwapchain {
		vkg.DestroySwapchain(dev, old, nil)
	}
	wd.swap = swap
	vkg.GetSwapchainImages(dev, swap, &n, nil)
	wd.images = make([]vkg.Image, n)
	vkg.GetSwapchainImages(dev, swap, &n, wd.images)
	wd.w, wd.h = w, h
	if wd.staging == nil || wd.staging.Size < uint64(4*w*h) {
		buf, err := wd.arena.Alloc("frame", uint64(4*w*h))
		if err != nil {
			return err
		}
		wd.staging = buf
	}
	wd.frame = make([]byte, 4*w*h)
	return nil
}

// Size is the drawable size in pixels.
func (wd *Window) Size() (int, int) { return wd.w, wd.h }

// SetTitle sets the window title.
func (wd *Window) SetTitle(s string) { wd.win.SetTitle(s) }

// Poll processes window events and returns the keys pressed since the last
// call, and whether the window was closed.
func (wd *Window) Poll() ([]Key, bool) {
	glfw.PollEvents()
	k := wd.keys
	wd.keys = nil
	return k, wd.win.ShouldClose()
}

// Show presents img letterboxed (rows beyond img up to fullW×fullH as the
// placeholder).
func (wd *Window) Show(img *image.RGBA, fullW, fullH int) error {
	if fw, fh := wd.win.GetFramebufferSize(); fw != wd.w || fh != wd.h {
		if err := wd.recreate(); err != nil {
			return err
		}
	}
	if wd.w <= 0 || wd.h <= 0 {
		return nil
	}
	Compose(wd.frame, wd.w, wd.h, img, fullW, fullH)
	copy(wd.staging.Mapped(), wd.frame)
	dev := wd.d.Handle()
	var idx uint32
	r := vkg.AcquireNextImage(dev, wd.swap, ^uint64(0), wd.acquire, vkg.NullFence, &idx)
	if r == vkg.ErrorOutOfDate || r == vkg.Suboptimal {
		return wd.recreate()
	}
	if r != vkg.Success {
		return fmt.Errorf("vkAcquireNextImageKHR: %v", vkg.Error(r))
	}
	img0 := wd.images[idx]
	rng := vkg.ImageSubresourceRange{AspectMask: vkg.ImageAspectFlags(vkg.ImageAspectColorBit), LevelCount: 1, LayerCount: 1}
	barrier := func(from, to vkg.ImageLayout, srcA, dstA vkg.AccessFlags) {
		vkg.CmdPipelineBarrier(wd.cb, vkg.PipelineStageFlags(vkg.PipelineStageTransferBit|vkg.PipelineStageTopOfPipeBit),
			vkg.PipelineStageFlags(vkg.PipelineStageTransferBit|vkg.PipelineStageBottomOfPipeBit), 0, 0, nil, 0, nil, 1,
			[]vkg.ImageMemoryBarrier{{SType: vkg.StructureTypeImageMemoryBarrier, SrcAccessMask: srcA, DstAccessMask: dstA,
				OldLayout: from, NewLayout: to, SrcQueueFamilyIndex: vkg.QueueFamilyIgnored, DstQueueFamilyIndex: vkg.QueueFamilyIgnored,
				Image: img0, SubresourceRange: rng}})
	}
	vkg.ResetCommandBuffer(wd.cb, 0)
	vkg.BeginCommandBuffer(wd.cb, &vkg.CommandBufferBeginInfo{SType: vkg.StructureTypeCommandBufferBeginInfo,
		Flags: vkg.CommandBufferUsageFlags(vkg.CommandBufferUsageOneTimeSubmitBit)})
	barrier(vkg.ImageLayoutUndefined, vkg.ImageLayoutTransferDstOptimal, 0, vkg.AccessFlags(vkg.AccessTransferWriteBit))
	vkg.CmdCopyBufferToImage(wd.cb, wd.staging.Handle(), img0, vkg.ImageLayoutTransferDstOptimal, 1, []vkg.BufferImageCopy{{
		ImageSubresource: vkg.ImageSubresourceLayers{AspectMask: vkg.ImageAspectFlags(vkg.ImageAspectColorBit), LayerCount: 1},
		ImageExtent:      vkg.Extent3D{Width: uint32(wd.w), Height: uint32(wd.h), Depth: 1}}})
	barrier(vkg.ImageLayoutTransferDstOptimal, vkg.ImageLayoutPresentSrc, vkg.AccessFlags(vkg.AccessTransferWriteBit), 0)
	vkg.EndCommandBuffer(wd.cb)
	unlock := wd.d.LockQueue()
	defer unlock()
	r = vkg.QueueSubmit(wd.d.Queue(), 1, []vkg.SubmitInfo{{SType: vkg.StructureTypeSubmitInfo,
		WaitSemaphoreCount: 1, PWaitSemaphores: []vkg.Semaphore{wd.acquire},
		PWaitDstStageMask:  []vkg.PipelineStageFlags{vkg.PipelineStageFlags(vkg.PipelineStageTransferBit)},
		CommandBufferCount: 1, PCommandBuffers: []vkg.CommandBuffer{wd.cb},
		SignalSemaphoreCount: 1, PSignalSemaphores: []vkg.Semaphore{wd.done}}}, wd.fence)
	if r != vkg.Success {
		return fmt.Errorf("vkQueueSubmit: %v", vkg.Error(r))
	}
	r = vkg.QueuePresent(wd.d.Queue(), &vkg.PresentInfo{SType: vkg.StructureTypePresentInfo,
		WaitSemaphoreCount: 1, PWaitSemaphores: []vkg.Semaphore{wd.done},
		SwapchainCount: 1, PSwapchains: []vkg.Swapchain{wd.swap}, PImageIndices: []uint32{idx}})
	vkg.WaitForFences(dev, 1, []vkg.Fence{wd.fence}, vkg.True, ^uint64(0))
	vkg.ResetFences(dev, 1, []vkg.Fence{wd.fence})
	if r == vkg.ErrorOutOfDate || r == vkg.Suboptimal {
		return wd.recreate()
	}
	if r != vkg.Success {
		return fmt.Errorf("vkQueuePresentKHR: %v", vkg.Error(r))
	}
	return nil
}

// Close destroys the window and its Vulkan objects.
func (wd *Window) Close() {
	dev := wd.d.Handle()
	vkg.DeviceWaitIdle(dev)
	if wd.swap != vkg.NullSwapchain {
		vkg.DestroySwapchain(dev, wd.swap, nil)
	}
	if wd.pool != nil {
		vkg.DestroySemaphore(dev, wd.acquire, nil)
		vkg.DestroySemaphore(dev, wd.done, nil)
		vkg.DestroyFence(dev, wd.fence, nil)
		vkg.DestroyCommandPool(dev, wd.pool, nil)
	}
	wd.arena.Free()
	vkg.DestroySurface(wd.d.Instance(), wd.surface, nil)
	wd.win.Destroy()
}
