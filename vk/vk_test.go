package vk

import (
	"bytes"
	"context"
	"os"
	"testing"

	vk "github.com/vulkan-go/vulkan"
)

// openTest opens the default device or skips (fails when EMU35_REQUIRE_VULKAN=1, as in CI).
func openTest(t testing.TB) *Device {
	t.Helper()
	d, err := Open(Options{Device: -1, PipelineCache: "-"})
	if err != nil {
		if os.Getenv("EMU35_REQUIRE_VULKAN") == "1" {
			t.Fatalf("no Vulkan device: %v", err)
		}
		t.Skipf("no Vulkan device: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

func TestUploadDownloadCopy(t *testing.T) {
	d := openTest(t)
	a := d.NewArena(DeviceMem)
	defer a.Free()
	n := 3*stagingChunk/2 + 100 // crosses a staging chunk
	src := make([]byte, n)
	for i := range src {
		src[i] = byte(i*7 + i/251)
	}
	b1, err := a.Alloc("b1", uint64(n))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := a.Alloc("b2", uint64(n))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Upload(b1.All(), src); err != nil {
		t.Fatal(err)
	}
	c, err := d.NewCmd()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	c.Timestamp("start")
	c.Copy(b2.All(), b1.All())
	c.Timestamp("copy")
	if err := c.Submit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.Timings()) != 1 || c.Timings()[0].NS <= 0 {
		t.Errorf("timings %v", c.Timings())
	}
	got := make([]byte, n)
	if err := d.Download(b2.All(), got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("round trip through the GPU changed the data")
	}
}

// Ranges of any length copy exactly, without touching the bytes around them.
func TestOddLengthCopies(t *testing.T) {
	d := openTest(t)
	a := d.NewArena(DeviceMem)
	defer a.Free()
	b, _ := a.Alloc("b", 64)
	if err := d.Upload(b.All(), bytes.Repeat([]byte{0xAA}, 64)); err != nil {
		t.Fatal(err)
	}
	if err := d.Upload(b.Slice(6, 22), bytes.Repeat([]byte{1}, 22)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 64)
	if err := d.Download(b.All(), got); err != nil {
		t.Fatal(err)
	}
	want := append(append(bytes.Repeat([]byte{0xAA}, 6), bytes.Repeat([]byte{1}, 22)...), bytes.Repeat([]byte{0xAA}, 36)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("after an odd-length upload: %v", got)
	}
	odd := make([]byte, 7)
	if err := d.Download(b.Slice(25, 7), odd); err != nil || odd[0] != 1 || odd[3] != 0xAA {
		t.Fatalf("odd-length download %v %v", odd, err)
	}
}

func TestSubmitCancelled(t *testing.T) {
	d := openTest(t)
	a := d.NewArena(DeviceMem)
	defer a.Free()
	b, _ := a.Alloc("b", 64)
	c, _ := d.NewCmd()
	defer c.Release()
	c.Fill(b.All(), 7)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Submit(ctx); err != context.Canceled {
		t.Fatalf("Submit with a cancelled context: %v", err)
	}
	// The recorder is usable again.
	c.Fill(b.All(), 9)
	if err := c.Submit(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	d.Download(b.Slice(0, 16), got)
	if got[0] != 9 {
		t.Fatalf("fill gave %v", got)
	}
}

func TestCapsReport(t *testing.T) {
	caps, err := ListDevices()
	if err != nil {
		if os.Getenv("EMU35_REQUIRE_VULKAN") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	for _, c := range caps {
		r := c.Report()
		if c.SubgroupSize == 0 || c.MaxStorageBufferRange == 0 || !bytes.Contains([]byte(r), []byte("subgroup size")) {
			t.Errorf("incomplete capabilities:\n%s", r)
		}
		t.Log(r)
	}
}

// A replay recording runs again and again and sees new buffer contents each
// time, whether its waits sleep in the driver or poll the fence (waitReplay).
func TestReplay(t *testing.T) {
	d := openTest(t)
	a := d.NewArena(DeviceMem)
	defer a.Free()
	src, _ := a.Alloc("src", 16)
	dst, _ := a.Alloc("dst", 16)
	c, err := d.NewReplay()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	c.Copy(dst.All(), src.All())
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	defer func(p bool) { d.pollWaits = p }(d.pollWaits)
	for _, poll := range []bool{false, true} {
		d.pollWaits, c.lastWait = poll, 0
		for i := byte(1); i <= 3; i++ {
			if poll {
				i += 10
			}
			d.Upload(src.All(), bytes.Repeat([]byte{i}, 16))
			if err := c.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if c.pending || vk.GetFenceStatus(d.dev, c.fence) != vk.NotReady {
				t.Fatalf("run %d (polling %v) returned with its fence pending or not reset", i, poll)
			}
			got := make([]byte, 16)
			d.Download(dst.All(), got)
			if got[7] != i {
				t.Fatalf("run %d (polling %v) copied %v", i, poll, got)
			}
			if poll {
				i -= 10
			}
		}
		if poll && c.lastWait <= 0 {
			t.Error("a polled run did not time its wait (the next wait's sleep)")
		}
	}
}
