// Package shaders holds emu35's GLSL compute kernels, the table of variants
// compiled from them, and the committed SPIR-V (embedded in the binary).
// Regenerate with `go generate ./shaders` (or `make shaders`) after editing a .comp.
package shaders

//go:generate go run ./gen

// Variant is one compiled form of a source: the source with some #defines.
type Variant struct {
	Name     string   // spv/<Name>.spv
	Source   string   // <Source>.comp
	Defines  []string // -D flags
	Bindings int      // storage buffers the shader declares
	Push     int      // push-constant bytes
}

// Weight formats: the order is the one model/quant uses.
var (
	FloatWeights = []string{"f32", "f16", "bf16"}
	BlockWeights = []string{"q8_0", "q4"}
	AllWeights   = append(append([]string{}, FloatWeights...), BlockWeights...)
	Activations  = []string{"f32", "f16"}
)

// weightBindings is how many buffers a weight of format t takes (see weights.glsl).
func weightBindings(t string) int {
	switch t {
	case "q8_0":
		return 2
	case "q4":
		return 3
	}
	return 1
}

func wdef(t string) string {
	return "W_" + map[string]string{"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4": "Q4"}[t]
}

func adef(t string) []string {
	if t == "f16" {
		return []string{"A_F16"}
	}
	return nil
}

// Variants lists every shader the program uses.
var Variants = func() []Variant {
	var v []Variant
	add := func(x Variant) { v = append(v, x) }
	for _, w := range FloatWeights {
		for _, a := range Activations {
			add(Variant{"matvec_" + w + "_" + a, "matvec", append([]string{wdef(w)}, adef(a)...), 3, 20})
		}
		add(Variant{"matvec_" + w + "_f32_inv", "matvec", []string{wdef(w), "INV_RMS"}, 4, 28})
		add(Variant{"matvec_" + w + "_f32_add", "matvec", []string{wdef(w), "ADD_Y"}, 3, 20})
		add(Variant{"qkv_heads_" + w + "_f16", "qkv_heads", []string{wdef(w)}, weightBindings(w) + 8, 44})
		add(Variant{"qkv_heads_" + w + "_q8", "qkv_heads", []string{wdef(w), "KV_Q8"}, weightBindings(w) + 10, 44})
	}
	for _, w := range BlockWeights {
		add(Variant{"matvec_" + w + "_q8_1", "matvec_q", []string{wdef(w)}, weightBindings(w) + 3, 16})
		add(Variant{"matvec_" + w + "_q8_1_inv", "matvec_q", []string{wdef(w), "INV_RMS"}, weightBindings(w) + 4, 24})
		add(Variant{"matvec_" + w + "_q8_1_add", "matvec_q", []string{wdef(w), "ADD_Y"}, weightBindings(w) + 3, 16})
		add(Variant{"qkv_heads_" + w + "_f16", "qkv_heads", []string{wdef(w)}, weightBindings(w) + 9, 44})
		add(Variant{"qkv_heads_" + w + "_q8", "qkv_heads", []string{wdef(w), "KV_Q8"}, weightBindings(w) + 11, 44})
	}
	for _, a := range Activations {
		add(Variant{"quantize_q8_1_" + a, "quantize_act", adef(a), 3, 12})
	}
	add(Variant{"swiglu_q8_1", "quantize_act", []string{"SWIGLU"}, 3, 12})
	for _, w := range AllWeights {
		for _, a := range Activations {
			add(Variant{"matmul_" + w + "_" + a, "matmul", append([]string{wdef(w)}, adef(a)...), weightBindings(w) + 2, 20})
		}
		add(Variant{"embed_" + w, "embed", []string{wdef(w)}, weightBindings(w) + 2, 16})
		for _, a := range Activations {
			add(Variant{"matmul_" + w + "_" + a + "_coopmat", "matmul_coopmat", append([]string{wdef(w)}, adef(a)...), weightBindings(w) + 2, 24})
		}
	}
	for _, in := range []string{"f32", "bf16"} {
		def := map[string]string{"f32": "IN_F32", "bf16": "IN_BF16"}[in]
		add(Variant{"quantize_q8_0_" + in, "quantize", []string{"Q8_0", def}, 3, 4})
		add(Variant{"quantize_q4_" + in, "quantize", []string{"Q4", def}, 4, 4})
	}
	for _, w := range []string{"f32", "f16"} {
		add(Variant{"conv2d_" + w, "conv2d", []string{wdef(w)}, 5, 28})
		add(Variant{"conv2d_" + w + "_coopmat", "conv2d_coopmat", []string{wdef(w)}, 5, 28})
		add(Variant{"conv2d_narrow_" + w, "conv2d_narrow", []string{wdef(w)}, 5, 28})
	}
	add(Variant{"groupnorm_stats", "groupnorm", []string{"STATS"}, 2, 28})
	add(Variant{"groupnorm_final", "groupnorm", []string{"FINAL"}, 1, 28})
	add(Variant{"groupnorm_apply", "groupnorm", nil, 5, 28})
	add(Variant{"argmax_update", "argmax", nil, 2, 12})
	add(Variant{"fill_u32", "fill", nil, 1, 16})
	add(Variant{"stream_read", "stream", nil, 2, 4})
	add(Variant{"coopmat_peak", "coopmat_peak", nil, 2, 4})
	add(Variant{"coopmat_peak_nf4", "coopmat_peak", []string{"NF=4"}, 2, 4})
	add(Variant{"coopmat_peak_n8", "coopmat_peak", []string{"N8"}, 2, 4})
	add(Variant{"coopmat_peak_ma8", "coopmat_peak", []string{"MA=8", "NF=1"}, 2, 4})
	add(Variant{"coopmat_peak_ma8_n8", "coopmat_peak", []string{"MA=8", "NF=1", "N8"}, 2, 4})
	add(Variant{"coopmat_peak_i8", "coopmat_peak", []string{"I8"}, 2, 4})
	add(Variant{"touch", "touch", nil, 9, 8})
	add(Variant{"embed_drawn", "embed_drawn", nil, 3, 16})
	add(Variant{"rmsnorm_f32", "rmsnorm", nil, 3, 8})
	add(Variant{"rmsnorm_parts_f32", "rmsnorm", []string{"PARTS"}, 4, 8})
	add(Variant{"rmsnorm_f16", "rmsnorm", []string{"OUT_F16"}, 3, 8})
	add(Variant{"add_rmsnorm_f32", "rmsnorm", []string{"RESIDUAL"}, 4, 8})
	add(Variant{"add_rmsnorm_f16", "rmsnorm", []string{"OUT_F16", "RESIDUAL"}, 4, 8})
	add(Variant{"rmsnorm_q8_1", "rmsnorm_q8_1", nil, 5, 12})
	add(Variant{"qk_norm_rope_f32", "qk_norm_rope", nil, 4, 32})
	add(Variant{"cfg_hist", "cfg_hist", nil, 4, 12})
	add(Variant{"topk_select", "topk_select", nil, 4, 4})
	add(Variant{"topk_count", "topk_compact", []string{"COUNT"}, 2, 4})
	add(Variant{"topk_compact", "topk_compact", nil, 3, 4})
	add(Variant{"topk_draw", "topk_draw", nil, 4, 4})
	add(Variant{"qk_norm_rope_kv_f16", "qk_norm_rope", []string{"KV_STORE"}, 6, 32})
	add(Variant{"qk_norm_rope_kv_q8", "qk_norm_rope", []string{"KV_STORE", "KV_Q8"}, 8, 32})
	add(Variant{"kv_store_f16", "kv_store", nil, 4, 32})
	add(Variant{"kv_store_q8", "kv_store", []string{"KV_Q8"}, 6, 32})
	add(Variant{"attention_f16", "attention", nil, 6, 36})
	add(Variant{"attention_q8", "attention", []string{"KV_Q8"}, 8, 36})
	add(Variant{"attention_f16_coopmat", "attention_coopmat", nil, 6, 36})
	add(Variant{"attention_q8_coopmat", "attention_coopmat", []string{"KV_Q8"}, 8, 36})
	add(Variant{"attention_decode_f16", "attention_decode", nil, 6, 36})
	add(Variant{"attention_decode_q8", "attention_decode", []string{"KV_Q8"}, 8, 36})
	add(Variant{"attention_decode_q8_coopmat", "attention_decode_coopmat", nil, 8, 36})
	add(Variant{"attn_combine_f32", "attn_combine", nil, 4, 24})
	add(Variant{"attn_combine_f16", "attn_combine", []string{"OUT_F16"}, 4, 24})
	add(Variant{"attn_combine_q8_1", "attn_combine", []string{"Q8"}, 5, 24})
	add(Variant{"swiglu_f32", "swiglu", nil, 2, 8})
	add(Variant{"swiglu_f16", "swiglu", []string{"OUT_F16"}, 2, 8})
	add(Variant{"rope_f32", "rope", nil, 2, 16})
	add(Variant{"softmax_f32", "softmax", nil, 1, 8})
	add(Variant{"add_f32", "eltwise", []string{"OP_ADD"}, 3, 4})
	add(Variant{"silu_mul_f32", "eltwise", []string{"OP_SILU_MUL"}, 3, 4})
	return v
}()
