package main

import (
	"os"
	"testing"
)

func run(t *testing.T, args ...string) error {
	t.Helper()
	return app().Run(append([]string{"emu35"}, args...))
}

func requireVulkan(t *testing.T, err error) {
	t.Helper()
	if err != nil && os.Getenv("EMU35_REQUIRE_VULKAN") != "1" {
		t.Skipf("no Vulkan: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestDevices(t *testing.T) { requireVulkan(t, run(t, "devices")) }

// bench --quick validates every product kernel and times a few cases.
func TestBenchQuick(t *testing.T) {
	requireVulkan(t, run(t, "bench", "--quick", "--reps", "1", "--only", "matvec_q4|rmsnorm"))
}

func TestBenchBadFlag(t *testing.T) {
	if err := run(t, "bench", "--only", "(("); err == nil {
		t.Fatal("a bad --only regexp was accepted")
	}
}
