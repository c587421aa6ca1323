package vk

import (
	"context"
	"fmt"
	"sync"
)

const stagingChunk = 32 << 20

// stagingRing moves bytes between the host and device-local buffers through two
// host-visible buffers, so the CPU fills one while the GPU copies the other.
type stagingRing struct {
	d     *Device
	mu    sync.Mutex
	arena *Arena
	rb    *Arena
	up    [2]*Buffer
	down  *Buffer
	cmds  [2]*Cmd
}

func newStagingRing(d *Device) *stagingRing { return &stagingRing{d: d} }

func (s *stagingRing) init() error {
	if s.up[0] != nil {
		return nil
	}
	s.arena = s.d.NewArena(UploadMem)
	s.rb = s.d.NewArena(ReadbackMem)
	var err error
	for i := range s.up {
		if s.up[i], err = s.arena.Alloc(fmt.Sprintf("staging%d", i), stagingChunk); err != nil {
			return err
		}
		if s.cmds[i], err = s.d.NewCmd(); err != nil {
			return err
		}
	}
	s.down, err = s.rb.Alloc("readback", stagingChunk)
	return err
}

func (s *stagingRing) free() {
	for _, c := range s.cmds {
		if c != nil {
			c.Release()
		}
	}
	if s.arena != nil {
		s.arena.Free()
		s.rb.Free()
	}
}

// Upload copies src into dst (len(src) ≤ dst.Size).
func (d *Device) Upload(dst Range, src []byte) error {
	if uint64(len(src)) > dst.Size {
		return fmt.Errorf("upload of %d bytes into a range of %d", len(src), dst.Size)
	}
	s := d.staging
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.init(); err != nil {
		return err
	}
	ctx := context.Background()
	// Each slot's copy is submitted without waiting; the slot waits before reuse.
	inflight := [2]bool{}
	slot := 0
	for off := 0; off < len(src); off += stagingChunk {
		n := min(stagingChunk, len(src)-off)
		if inflight[slot] {
			if err := s.cmds[slot].wait(ctx); err != nil {
				return err
			}
			s.cmds[slot].reset()
			inflight[slot] = false
		}
		copy(s.up[slot].Mapped(), src[off:off+n])
		c := s.cmds[slot]
		c.Copy(dst.Sub(uint64(off), uint64(n)), s.up[slot].Slice(0, uint64(n))) // buffer copies need no alignment
		if err := c.submitNoWait(); err != nil {
			return err
		}
		inflight[slot] = true
		slot ^= 1
	}
	for i := range inflight {
		if inflight[i] {
			if err := s.cmds[i].wait(ctx); err != nil {
				return err
			}
			s.cmds[i].reset()
		}
	}
	return nil
}

// Download copies src into dst (len(dst) ≤ src.Size).
func (d *Device) Download(src Range, dst []byte) error {
	if uint64(len(dst)) > src.Size {
		return fmt.Errorf("download of %d bytes from a range of %d", len(dst), src.Size)
	}
	s := d.staging
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.init(); err != nil {
		return err
	}
	for off := 0; off < len(dst); off += stagingChunk {
		n := min(stagingChunk, len(dst)-off)
		c := s.cmds[0]
		c.Copy(s.down.Slice(0, uint64(n)), src.Sub(uint64(off), uint64(n)))
		if err := c.Submit(context.Background()); err != nil {
			return err
		}
		copy(dst[off:off+n], s.down.Mapped())
	}
	return nil
}
