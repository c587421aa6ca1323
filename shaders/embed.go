package shaders

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/emu35/emu35/vk"
)

//go:embed spv
var spvFS embed.FS

var (
	once    sync.Once
	byName  map[string]*vk.Shader
	loadErr error
)

func load() {
	byName = map[string]*vk.Shader{}
	for _, v := range Variants {
		b, err := spvFS.ReadFile("spv/" + v.Name + ".spv")
		if err != nil {
			loadErr = fmt.Errorf("shader %s is not embedded; run `make shaders`", v.Name)
			return
		}
		sum := sha256.Sum256(b)
		if want, ok := spvSHA256[v.Name]; !ok || want != hex.EncodeToString(sum[:]) {
			loadErr = fmt.Errorf("shader %s does not match the generated index; run `make shaders`", v.Name)
			return
		}
		byName[v.Name] = &vk.Shader{Name: v.Name, SPIRV: b, Bindings: v.Bindings, Push: v.Push}
	}
}

// Get returns the named shader. An unknown name is a programmer error and panics.
func Get(name string) *vk.Shader {
	once.Do(load)
	if loadErr != nil {
		panic(loadErr)
	}
	s, ok := byName[name]
	if !ok {
		panic("shaders: no variant " + name)
	}
	return s
}
