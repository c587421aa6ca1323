package vk

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

const (
	setsPerPool   = 512
	maxTimestamps = 4096
)

// Cmd records compute work into one command buffer and submits it.
// Use: Dispatch/Barrier/Copy/Timestamp..., then Submit; Submit resets it for reuse.
type Cmd struct {
	d       *Device
	cmdPool vk.CommandPool // its own: recorders may record on different goroutines
	cb      vk.CommandBuffer
	fence   vk.Fence
	pools   []vk.DescriptorPool
	pool    int
	qp      vk.QueryPool
	labels  []string
	times   []Timing
	open    bool
	pending bool
	// reusable commands are recorded once (Finish) and submitted many times (Run).
	reusable, finished   bool
	lastSubmit, lastWait time.Duration // a replay's last vkQueueSubmit, and its wait (RunTimes, waitReplay)
	// Dispatches counts the dispatches recorded since the last Submit.
	Dispatches int
}

// Timing is the GPU time between a timestamp and the one before it.
type Timing struct {
	Label string
	NS    float64
}

// NewReplay allocates a recorder for commands recorded once and run many times:
// record, Finish, then Run for each use. Per-run values must live in buffers.
func (d *Device) NewReplay() (*Cmd, error) {
	c, err := d.NewCmd()
	if err == nil {
		c.reusable = true
	}
	return c, err
}

// Finish ends the recording of a replay recorder.
func (c *Cmd) Finish() error {
	if !c.reusable || c.finished {
		panic("vk: Finish on a recorder that is not an unfinished replay")
	}
	c.begin()
	if err := vkEnd(c); err != nil {
		return err
	}
	c.finished = true
	return nil
}

// Run submits the finished replay recording and waits for it.
func (c *Cmd) Run(ctx context.Context) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	return c.Wait(ctx)
}

// Start submits the finished replay recording without waiting for it, so
// that the host can prepare and submit more work meanwhile; Wait must follow
// before it is started again. Work submitted later to the queue runs after it
// where a barrier at its start says so.
func (c *Cmd) Start(ctx context.Context) error {
	if !c.finished {
		panic("vk: Start before Finish")
	}
	if c.pending {
		return fmt.Errorf("vk: a replay was started again before Wait")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := c.queueSubmit(); err != nil {
		return err
	}
	c.lastSubmit = time.Since(t0)
	return nil
}

// Wait waits for the replay Start submitted and reads its timestamps. If ctx
// ends first it still waits for the GPU and returns ctx.Err().
func (c *Cmd) Wait(ctx context.Context) error {
	if !c.pending {
		return fmt.Errorf("vk: Wait for a replay that was not started")
	}
	t1 := time.Now()
	err := c.waitReplay(ctx)
	c.lastWait = time.Since(t1)
	if err == nil {
		c.readTimes()
	}
	return err
}

// RunTimes is the host's time in the last Run's vkQueueSubmit and in its wait
// for the GPU.
func (c *Cmd) RunTimes() (submit, wait time.Duration) { return c.lastSubmit, c.lastWait }

// waitReplay waits for a submitted replay. On a GPU it sleeps through most of
// the previous run's duration and then polls the fence: a decode step waits for
// its results about 0.15 ms sooner than when the driver wakes a sleeping
// vkWaitForFences (measured on an H100). The CPU devices (lavapipe) need the
// host's cores for the work itself, so there the driver's wait is used.
func (c *Cmd) waitReplay(ctx context.Context) error {
	if !c.d.pollWaits {
		return c.wait(ctx)
	}
	t0 := time.Now()
	if sleep := c.lastWait * 3 / 4; sleep > time.Millisecond { // (Wait set lastWait last time)
		switch r := vk.WaitForFences(c.d.dev, 1, []vk.Fence{c.fence}, vk.True, uint64(sleep)); r {
		case vk.Success, vk.Timeout:
		default:
			return vkErr("waiting for the GPU", r)
		}
	}
	for i := 0; ; i++ {
		switch r := vk.GetFenceStatus(c.d.dev, c.fence); r {
		case vk.Success:
			c.pending = false
			vk.ResetFences(c.d.dev, 1, []vk.Fence{c.fence})
			return nil
		case vk.NotReady:
			if i%1024 == 1023 && (ctx.Err() != nil || time.Since(t0) > time.Second) {
				return c.wait(ctx) // a long run, or Ctrl-C: the driver's wait
			}
		default:
			return vkErr("waiting for the GPU", r)
		}
	}
}

// NewCmd allocates a recorder.
func (d *Device) NewCmd() (*Cmd, error) {
	c := &Cmd{d: d}
	var pool vk.CommandPool
	if r := vk.CreateCommandPool(d.dev, &vk.CommandPoolCreateInfo{
		SType:            vk.StructureTypeCommandPoolCreateInfo,
		Flags:            vk.CommandPoolCreateFlags(vk.CommandPoolCreateResetCommandBufferBit),
		QueueFamilyIndex: d.Caps.QueueFamily,
	}, nil, &pool); r != vk.Success {
		return nil, vkErr("vkCreateCommandPool", r)
	}
	c.cmdPool = pool
	cbs := make([]vk.CommandBuffer, 1)
	r := vk.AllocateCommandBuffers(d.dev, &vk.CommandBufferAllocateInfo{
		SType:              vk.StructureTypeCommandBufferAllocateInfo,
		CommandPool:        pool,
		Level:              vk.CommandBufferLevelPrimary,
		CommandBufferCount: 1,
	}, cbs)
	if r != vk.Success {
		return nil, vkErr("vkAllocateCommandBuffers", r)
	}
	c.cb = cbs[0]
	var fence vk.Fence
	if r := vk.CreateFence(d.dev, &vk.FenceCreateInfo{SType: vk.StructureTypeFenceCreateInfo}, nil, &fence); r != vk.Success {
		return nil, vkErr("vkCreateFence", r)
	}
	c.fence = fence
	if d.Caps.TimestampValidBits > 0 {
		var qp vk.QueryPool
		if r := vk.CreateQueryPool(d.dev, &vk.QueryPoolCreateInfo{
			SType:      vk.StructureTypeQueryPoolCreateInfo,
			QueryType:  vk.QueryTypeTimestamp,
			QueryCount: maxTimestamps,
		}, nil, &qp); r != vk.Success {
			return nil, vkErr("vkCreateQueryPool", r)
		}
		c.qp = qp
	}
	return c, nil
}

func (c *Cmd) begin() {
	if c.open {
		return
	}
	if c.finished {
		panic("vk: recording into a finished replay")
	}
	flags := vk.CommandBufferUsageFlags(vk.CommandBufferUsageOneTimeSubmitBit)
	if c.reusable {
		flags = 0
	}
	if r := vk.BeginCommandBuffer(c.cb, &vk.CommandBufferBeginInfo{
		SType: vk.StructureTypeCommandBufferBeginInfo,
		Flags: flags,
	}); r != vk.Success {
		panic(vkErr("vkBeginCommandBuffer", r))
	}
	if c.qp != nil {
		vk.CmdResetQueryPool(c.cb, c.qp, 0, maxTimestamps)
	}
	c.open = true
}

func (c *Cmd) newSet(p *Pipeline) vk.DescriptorSet {
	for {
		if c.pool == len(c.pools) {
			var pool vk.DescriptorPool
			r := vk.CreateDescriptorPool(c.d.dev, &vk.DescriptorPoolCreateInfo{
				SType:         vk.StructureTypeDescriptorPoolCreateInfo,
				MaxSets:       setsPerPool,
				PoolSizeCount: 1,
				PPoolSizes:    []vk.DescriptorPoolSize{{Type: vk.DescriptorTypeStorageBuffer, DescriptorCount: setsPerPool * 8}},
			}, nil, &pool)
			if r != vk.Success {
				panic(vkErr("vkCreateDescriptorPool", r))
			}
			c.pools = append(c.pools, pool)
		}
		set, r := allocSet(c.d.fns, c.d.dev, c.pools[c.pool], p.dsl)
		if r == vk.Success {
			return set
		}
		c.pool++
	}
}

// Dispatch records one dispatch of p over groups workgroups with the given
// push-constant struct (nil if none) and buffer ranges bound at 0..n-1.
// Arity, push size and binding limits are programmer errors and panic.
func (c *Cmd) Dispatch(p *Pipeline, groups [3]uint32, push any, bufs ...Range) {
	if len(bufs) != p.Bindings {
		panic(fmt.Sprintf("vk: %s takes %d buffers, got %d", p.Name, p.Bindings, len(bufs)))
	}
	var pb []byte
	if push != nil {
		var w bytes.Buffer
		if err := binary.Write(&w, binary.LittleEndian, push); err != nil {
			panic(fmt.Sprintf("vk: %s push constants: %v", p.Name, err))
		}
		pb = w.Bytes()
	}
	if len(pb) != p.Push {
		panic(fmt.Sprintf("vk: %s takes %d push-constant bytes, got %d", p.Name, p.Push, len(pb)))
	}
	caps := c.d.Caps
	for i, b := range bufs {
		if b.B == nil || b.Size == 0 {
			panic(fmt.Sprintf("vk: %s binding %d is empty", p.Name, i))
		}
		if b.Size > caps.MaxStorageBufferRange {
			panic(fmt.Sprintf("vk: %s binding %d: %d bytes exceeds maxStorageBufferRange %d; split the work",
				p.Name, i, b.Size, caps.MaxStorageBufferRange))
		}
		if b.Off%caps.MinStorageOffsetAlign != 0 {
			panic(fmt.Sprintf("vk: %s binding %d: offset %d not aligned to %d", p.Name, i, b.Off, caps.MinStorageOffsetAlign))
		}
		if b.Off+b.Size > b.B.Size {
			panic(fmt.Sprintf("vk: %s binding %d: range outside buffer %q", p.Name, i, b.B.Name))
		}
	}
	for i, g := range groups {
		if g == 0 || g > caps.MaxWorkGroupCount[i] {
			panic(fmt.Sprintf("vk: %s: %d workgroups in dimension %d (max %d)", p.Name, g, i, caps.MaxWorkGroupCount[i]))
		}
	}
	c.begin()
	set := c.newSet(p)
	writeSet(c.d.fns, c.d.dev, set, bufs)
	recordDispatch(c.d.fns, c.cb, p, set, pb, groups)
	c.Dispatches++
}

// Barrier makes every earlier shader or transfer write visible to later commands.
func (c *Cmd) Barrier() {
	c.begin()
	recordBarrier(c.d.fns, c.cb)
}

// Copy copies src into dst (same size).
func (c *Cmd) Copy(dst, src Range) {
	if dst.Size != src.Size {
		panic(fmt.Sprintf("vk: copy of %d bytes into %d", src.Size, dst.Size))
	}
	c.begin()
	recordCopy(c.d.fns, c.cb, dst, src)
}

// Fill sets dst (size a multiple of 4) to the 32-bit word v.
func (c *Cmd) Fill(dst Range, v uint32) {
	c.begin()
	vk.CmdFillBuffer(c.cb, dst.B.buf, vk.DeviceSize(dst.Off), vk.DeviceSize(dst.Size), v)
}

// Timestamp records a GPU timestamp; after Submit, Timings reports the time
// from the previous timestamp to this one under label.
func (c *Cmd) Timestamp(label string) {
	if c.qp == nil || len(c.labels) >= maxTimestamps {
		return
	}
	c.begin()
	vk.CmdWriteTimestamp(c.cb, vk.PipelineStageBottomOfPipeBit, c.qp, uint32(len(c.labels)))
	c.labels = append(c.labels, label)
}

// Timings are the intervals measured by the last Submit.
func (c *Cmd) Timings() []Timing { return c.times }

// Submit runs the recorded work and waits for it. If ctx ends first, Submit
// still waits for the GPU (work on the queue cannot be withdrawn) and returns
// ctx.Err(); if ctx is already done, nothing is submitted.
func (c *Cmd) Submit(ctx context.Context) error {
	if !c.open {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		vkEnd(c)
		c.reset()
		return err
	}
	if err := c.submitNoWait(); err != nil {
		return err
	}
	err := c.wait(ctx)
	if err == nil {
		c.readTimes()
	}
	c.reset()
	return err
}

func (c *Cmd) wait(ctx context.Context) error {
	var ctxErr error
	for {
		r := vk.WaitForFences(c.d.dev, 1, []vk.Fence{c.fence}, vk.True, uint64(20*time.Millisecond))
		switch r {
		case vk.Success:
			c.pending = false
			vk.ResetFences(c.d.dev, 1, []vk.Fence{c.fence})
			return ctxErr
		case vk.Timeout:
			if ctxErr == nil {
				ctxErr = ctx.Err()
			}
		default:
			return vkErr("waiting for the GPU", r)
		}
	}
}

func (c *Cmd) readTimes() {
	c.times = c.times[:0]
	n := len(c.labels)
	if n < 2 || c.qp == nil {
		return
	}
	raw := make([]uint64, n)
	r := vk.GetQueryPoolResults(c.d.dev, c.qp, 0, uint32(n), uint(8*n), unsafe.Pointer(&raw[0]), 8,
		vk.QueryResultFlags(vk.QueryResult64Bit|vk.QueryResultWaitBit))
	if r != vk.Success {
		return
	}
	mask := ^uint64(0)
	if b := c.d.Caps.TimestampValidBits; b < 64 {
		mask = (1 << b) - 1
	}
	for i := 1; i < n; i++ {
		dt := (raw[i] - raw[i-1]) & mask
		c.times = append(c.times, Timing{Label: c.labels[i], NS: float64(dt) * c.d.Caps.TimestampPeriod})
	}
}

func (c *Cmd) reset() {
	vk.ResetCommandBuffer(c.cb, 0)
	for _, p := range c.pools[:min(c.pool+1, len(c.pools))] {
		vk.ResetDescriptorPool(c.d.dev, p, 0)
	}
	c.pool = 0
	c.labels = c.labels[:0]
	c.open = false
	c.Dispatches = 0
}

// Release frees the recorder (waiting for work in flight).
func (c *Cmd) Release() {
	if c.pending {
		vk.WaitForFences(c.d.dev, 1, []vk.Fence{c.fence}, vk.True, ^uint64(0))
	}
	for _, p := range c.pools {
		vk.DestroyDescriptorPool(c.d.dev, p, nil)
	}
	if c.qp != nil {
		vk.DestroyQueryPool(c.d.dev, c.qp, nil)
	}
	vk.DestroyFence(c.d.dev, c.fence, nil)
	vk.FreeCommandBuffers(c.d.dev, c.cmdPool, 1, []vk.CommandBuffer{c.cb})
	vk.DestroyCommandPool(c.d.dev, c.cmdPool, nil)
}

// submitNoWait submits without waiting; the caller must wait and reset.
func (c *Cmd) submitNoWait() error {
	if r := vkEnd(c); r != nil {
		return r
	}
	return c.queueSubmit()
}

func (c *Cmd) queueSubmit() error {
	unlock := c.d.LockQueue()
	r := vk.QueueSubmit(c.d.queue, 1, []vk.SubmitInfo{{
		SType:              vk.StructureTypeSubmitInfo,
		CommandBufferCount: 1,
		PCommandBuffers:    []vk.CommandBuffer{c.cb},
	}}, c.fence)
	unlock()
	if r != vk.Success {
		if !c.reusable {
			c.reset()
		}
		return vkErr("vkQueueSubmit", r)
	}
	c.pending = true
	return nil
}

func vkEnd(c *Cmd) error {
	if r := vk.EndCommandBuffer(c.cb); r != vk.Success {
		c.reset()
		return vkErr("vkEndCommandBuffer", r)
	}
	c.open = false
	return nil
}
