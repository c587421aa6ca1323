// Package configs holds one preset per task with the reference's defaults,
// embedded in the binary; `emu35 gen --config FILE` reads others of the same form.
package configs

import (
	"embed"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/emu35/emu35/model/gen"
)

//go:embed *.yaml
var files embed.FS

// Preset is a task's settings.
type Preset struct {
	Task         string       `yaml:"task"`
	UseImage     bool         `yaml:"use_image"`
	CFG          float64      `yaml:"cfg"`
	MaxNewTokens int          `yaml:"max_new_tokens"`
	ImageArea    int          `yaml:"image_area"`
	Ratio        string       `yaml:"ratio"`
	Text         gen.Sampling `yaml:"text"`
	Image        gen.Sampling `yaml:"image"`
	Seed         uint64       `yaml:"seed"`
}

// ForTask returns the embedded preset of a task.
func ForTask(task string) (Preset, error) {
	b, err := files.ReadFile(task + ".yaml")
	if err != nil {
		return Preset{}, fmt.Errorf("no preset for task %q (tasks: t2i, x2i, howto, story, explore, vla)", task)
	}
	return parse(b, task+".yaml")
}

// Load reads a preset file.
func Load(path string) (Preset, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Preset{}, err
	}
	return parse(b, path)
}

func parse(b []byte, name string) (Preset, error) {
	var p Preset
	if err := yaml.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s: %w", name, err)
	}
	if p.MaxNewTokens <= 0 || p.CFG <= 0 || p.ImageArea <= 0 {
		return p, fmt.Errorf("%s: max_new_tokens, cfg and image_area must be positive", name)
	}
	return p, nil
}
