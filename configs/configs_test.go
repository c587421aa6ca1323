package configs

import (
	"testing"

	"github.com/emu35/emu35/model/gen"
)

// Every task has a preset with the reference's values (spot checks of §8.2).
func TestPresets(t *testing.T) {
	for _, task := range gen.Tasks {
		p, err := ForTask(task)
		if err != nil || p.Task != task {
			t.Fatalf("%s: %+v %v", task, p, err)
		}
	}
	p, _ := ForTask("t2i")
	if p.CFG != 5 || p.MaxNewTokens != 5120 || p.Image.TopK != 5120 || p.Ratio != "default" {
		t.Errorf("t2i %+v", p)
	}
	p, _ = ForTask("howto")
	if p.Text.TopK != 200 || p.Text.TopP != 0.8 || p.Text.Temperature != 0.7 || p.ImageArea != 518400 {
		t.Errorf("howto %+v", p)
	}
	if _, err := ForTask("paint"); err == nil {
		t.Error("unknown task")
	}
}
