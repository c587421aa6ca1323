package vk_test

import (
	"os"
	"testing"

	"github.com/emu35/emu35/shaders"
	"github.com/emu35/emu35/vk"
)

// The pipeline cache is written on Close and accepted when reopened.
func TestPipelineCacheFile(t *testing.T) {
	path := t.TempDir() + "/cache.bin"
	d, err := vk.Open(vk.Options{Device: -1, PipelineCache: path})
	if err != nil {
		if os.Getenv("EMU35_REQUIRE_VULKAN") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if _, err := d.Pipeline(shaders.Get("add_f32"), 64); err != nil {
		t.Fatal(err)
	}
	d.Close()
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 {
		t.Fatalf("no cache file written: %v", err)
	}
	d, err = vk.Open(vk.Options{Device: -1, PipelineCache: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pipeline(shaders.Get("add_f32"), 64); err != nil {
		t.Fatal(err)
	}
	d.Close()
}
