// Package vktest opens the Vulkan device for tests: a missing device skips the
// test, or fails it when EMU35_REQUIRE_VULKAN=1 (CI, where lavapipe must run).
package vktest

import (
	"os"
	"testing"

	"github.com/emu35/emu35/vk"
)

// Device opens the default device, closed when the test ends.
func Device(t testing.TB) *vk.Device {
	t.Helper()
	d, err := vk.Open(vk.Options{Device: -1, PipelineCache: "-"})
	if err != nil {
		if os.Getenv("EMU35_REQUIRE_VULKAN") == "1" {
			t.Fatalf("no Vulkan device: %v", err)
		}
		t.Skipf("no Vulkan device: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}
