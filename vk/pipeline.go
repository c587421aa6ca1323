package vk

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// Shader describes one compiled SPIR-V compute shader.
type Shader struct {
	Name     string
	SPIRV    []byte
	Bindings int // storage buffers at set 0, bindings 0..Bindings-1
	Push     int // push-constant bytes
}

// Pipeline is a compute pipeline: a shader with its specialization constants.
type Pipeline struct {
	Name     string
	Bindings int
	Push     int
	Spec     []uint32

	layout vk.PipelineLayout
	dsl    vk.DescriptorSetLayout
	pipe   vk.Pipeline
}

type pipelineSet struct {
	d         *Device
	mu        sync.Mutex
	byKey     map[string]*Pipeline
	modules   map[string]vk.ShaderModule
	cache     vk.PipelineCache
	cachePath string
}

// CacheDir is emu35's cache directory: $XDG_CACHE_HOME/emu35, else
// ~/.cache/emu35 ("" when neither is known). The pipeline cache lives there,
// and the CLI's tuning file.
func CacheDir() string {
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "emu35")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "emu35")
	}
	return ""
}

func newPipelineSet(d *Device, path string) *pipelineSet {
	ps := &pipelineSet{d: d, byKey: map[string]*Pipeline{}, modules: map[string]vk.ShaderModule{}}
	if path == "" {
		if dir := CacheDir(); dir != "" {
			path = filepath.Join(dir, "pipelines-"+hex.EncodeToString(d.Caps.UUID[:])+".bin")
		}
	}
	if path == "-" {
		path = ""
	}
	ps.cachePath = path
	var initial []byte
	if path != "" {
		initial, _ = os.ReadFile(path) // a missing or stale cache is fine: the driver checks its header
	}
	p := cBytes(initial)
	defer freeC(p)
	var cache vk.PipelineCache
	r := vk.CreatePipelineCache(d.dev, &vk.PipelineCacheCreateInfo{
		SType:           vk.StructureTypePipelineCacheCreateInfo,
		InitialDataSize: uint(len(initial)),
		PInitialData:    p,
	}, nil, &cache)
	if r != vk.Success && len(initial) > 0 {
		r = vk.CreatePipelineCache(d.dev, &vk.PipelineCacheCreateInfo{SType: vk.StructureTypePipelineCacheCreateInfo}, nil, &cache)
	}
	if r == vk.Success {
		ps.cache = cache
	}
	return ps
}

func (ps *pipelineSet) save() {
	if ps.cache == nil || ps.cachePath == "" {
		return
	}
	var n uint
	if vk.GetPipelineCacheData(ps.d.dev, ps.cache, &n, nil) != vk.Success || n == 0 {
		return
	}
	buf := make([]byte, n)
	if vk.GetPipelineCacheData(ps.d.dev, ps.cache, &n, unsafe.Pointer(&buf[0])) != vk.Success {
		return
	}
	if err := os.MkdirAll(filepath.Dir(ps.cachePath), 0o755); err != nil {
		return
	}
	tmp := ps.cachePath + ".tmp"
	if os.WriteFile(tmp, buf[:n], 0o644) == nil {
		os.Rename(tmp, ps.cachePath)
	}
}

func (ps *pipelineSet) close() {
	ps.save()
	for _, p := range ps.byKey {
		vk.DestroyPipeline(ps.d.dev, p.pipe, nil)
		vk.DestroyPipelineLayout(ps.d.dev, p.layout, nil)
		vk.DestroyDescriptorSetLayout(ps.d.dev, p.dsl, nil)
	}
	for _, m := range ps.modules {
		vk.DestroyShaderModule(ps.d.dev, m, nil)
	}
	if ps.cache != nil {
		vk.DestroyPipelineCache(ps.d.dev, ps.cache, nil)
	}
}

// Pipeline returns (creating once) the pipeline of shader s with specialization
// constants spec (constant_id i = spec[i]).
func (d *Device) Pipeline(s *Shader, spec ...uint32) (*Pipeline, error) {
	ps := d.pipes
	h := sha256.New()
	h.Write([]byte(s.Name))
	binary.Write(h, binary.LittleEndian, spec)
	key := hex.EncodeToString(h.Sum(nil)[:12])
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.byKey[key]; ok {
		return p, nil
	}
	if s.Push > int(d.Caps.MaxPushConstants) {
		return nil, fmt.Errorf("shader %s needs %d push-constant bytes; the device allows %d", s.Name, s.Push, d.Caps.MaxPushConstants)
	}
	mod, ok := ps.modules[s.Name]
	if !ok {
		if len(s.SPIRV)%4 != 0 || len(s.SPIRV) == 0 {
			return nil, fmt.Errorf("shader %s: SPIR-V of %d bytes is not whole words", s.Name, len(s.SPIRV))
		}
		code := make([]uint32, len(s.SPIRV)/4)
		for i := range code {
			code[i] = binary.LittleEndian.Uint32(s.SPIRV[4*i:])
		}
		if r := vk.CreateShaderModule(d.dev, &vk.ShaderModuleCreateInfo{
			SType:    vk.StructureTypeShaderModuleCreateInfo,
			CodeSize: uint(len(s.SPIRV)),
			PCode:    code,
		}, nil, &mod); r != vk.Success {
			return nil, vkErr("vkCreateShaderModule "+s.Name, r)
		}
		ps.modules[s.Name] = mod
	}
	binds := make([]vk.DescriptorSetLayoutBinding, s.Bindings)
	for i := range binds {
		binds[i] = vk.DescriptorSetLayoutBinding{
			Binding:         uint32(i),
			DescriptorType:  vk.DescriptorTypeStorageBuffer,
			DescriptorCount: 1,
			StageFlags:      vk.ShaderStageFlags(vk.ShaderStageComputeBit),
		}
	}
	p := &Pipeline{Name: s.Name, Bindings: s.Bindings, Push: s.Push, Spec: append([]uint32(nil), spec...)}
	var dsl vk.DescriptorSetLayout
	if r := vk.CreateDescriptorSetLayout(d.dev, &vk.DescriptorSetLayoutCreateInfo{
		SType:        vk.StructureTypeDescriptorSetLayoutCreateInfo,
		BindingCount: uint32(len(binds)),
		PBindings:    binds,
	}, nil, &dsl); r != vk.Success {
		return nil, vkErr("vkCreateDescriptorSetLayout "+s.Name, r)
	}
	p.dsl = dsl
	lci := vk.PipelineLayoutCreateInfo{
		SType:          vk.StructureTypePipelineLayoutCreateInfo,
		SetLayoutCount: 1,
		PSetLayouts:    []vk.DescriptorSetLayout{p.dsl},
	}
	if s.Push > 0 {
		lci.PushConstantRangeCount = 1
		lci.PPushConstantRanges = []vk.PushConstantRange{{
			StageFlags: vk.ShaderStageFlags(vk.ShaderStageComputeBit), Size: uint32(s.Push)}}
	}
	var layout vk.PipelineLayout
	if r := vk.CreatePipelineLayout(d.dev, &lci, nil, &layout); r != vk.Success {
		return nil, vkErr("vkCreatePipelineLayout "+s.Name, r)
	}
	p.layout = layout
	pipe, r := computePipeline(d.fns, d.dev, ps.cache, mod, p.layout, spec, d.stats)
	if r != vk.Success {
		return nil, vkErr("vkCreateComputePipelines "+s.Name, r)
	}
	p.pipe = pipe
	ps.byKey[key] = p
	return p, nil
}

// PipelineStat is one statistic the driver keeps of a compiled pipeline, such as
// the registers each invocation uses (VK_KHR_pipeline_executable_properties).
type PipelineStat struct {
	Name, Description string
	Value             float64
}

// Pipelines lists the pipelines created so far, by name and then constants.
func (d *Device) Pipelines() []*Pipeline {
	d.pipes.mu.Lock()
	defer d.pipes.mu.Unlock()
	ps := make([]*Pipeline, 0, len(d.pipes.byKey))
	for _, p := range d.pipes.byKey {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *Pipeline) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), slices.Compare(a.Spec, b.Spec))
	})
	return ps
}

// PipelineStats reports the driver's statistics of p; the device must have been
// opened with Options.PipelineStats.
func (d *Device) PipelineStats(p *Pipeline) ([]PipelineStat, error) {
	if !d.stats {
		return nil, fmt.Errorf("pipeline %s: the device was opened without pipeline statistics", p.Name)
	}
	return pipelineStats(d.fns, d.dev, p.pipe)
}
