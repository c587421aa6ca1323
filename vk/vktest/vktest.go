// Package vktest opens the Vulkan device for tests: a missing device skips the
// test, or fails it when EMU35_REQUIRE_VULKAN=1 (CI, where lavapipe must run).
package vktest

import (
	"os"
	"sync"
	"testing"

	"github.com/emu35/emu35/vk"
)

// shared is the one device a test binary's tests share. A device each test
// (opened and closed) recompiled every pipeline each time, and on the H100 a
// package's hundred-odd opens ended with vkCreateInstance failing
// ("incompatible driver") in its last tests.
var shared struct {
	once sync.Once
	d    *vk.Device
	err  error
}

// Device returns the default device, shared by the test binary's tests and
// left open until the process ends (tests that need a device of their own, or
// other options, open it with vk.Open).
func Device(t testing.TB) *vk.Device {
	t.Helper()
	shared.once.Do(func() { shared.d, shared.err = vk.Open(vk.Options{Device: -1, PipelineCache: "-"}) })
	if err := shared.err; err != nil {
		if os.Getenv("EMU35_REQUIRE_VULKAN") == "1" {
			t.Fatalf("no Vulkan device: %v", err)
		}
		t.Skipf("no Vulkan device: %v", err)
	}
	return shared.d
}
