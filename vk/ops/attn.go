package ops

import (
	"fmt"

	"github.com/emu35/emu35/vk"
)

// QKNormRoPE records, in place on qkv [rows, stride] (q heads then k heads at
// the start of each row), the per-head RMSNorm (qn for q heads, kn for k heads)
// followed by rotate-half RoPE at pos [rows].
func (o *Ops) QKNormRoPE(c *vk.Cmd, qkv, qn, kn, pos vk.Range, rows, nq, nkv, d, stride int, eps, theta float32) {
	c.Dispatch(o.pipe("qk_norm_rope_f32", uint32(d/2)), [3]uint32{uint32(nq + nkv), uint32(rows), 1},
		qkNormPush{NQ: uint32(nq), D: uint32(d), Stride: uint32(stride), Eps: eps, Theta: theta}, qkv, qn, kn, pos)
}

// qkNormPush is qk_norm_rope.comp's push constants (the last three for the
// KV_STORE form only).
type qkNormPush struct {
	NQ, D, Stride   uint32
	Eps, Theta      float32
	NKV, MaxT, Seqs uint32
}

// QKNormRoPEStore is QKNormRoPE followed by KVStore of every row (the fused form
// for decode steps): row r is sequence seqOf[r]'s token at position pos[r].
func (o *Ops) QKNormRoPEStore(c *vk.Cmd, qkv, qn, kn, pos vk.Range, seqOf []int, nq, d, stride int, eps, theta float32, kv *KVCache) {
	seqs := uint32(0)
	for r, s := range seqOf {
		if r >= 4 || s < 0 || s >= min(kv.Seqs, 256) {
			panic(fmt.Sprintf("ops: QKNormRoPEStore of rows of sequences %v into a cache of %d", seqOf, kv.Seqs))
		}
		seqs |= uint32(s) << (8 * r)
	}
	c.Dispatch(o.pipe("qk_norm_rope_kv_"+kv.kind(), uint32(d/2)), [3]uint32{uint32(nq + 2*kv.NKV), uint32(len(seqOf)), 1},
		qkNormPush{uint32(nq), uint32(d), uint32(stride), eps, theta, uint32(kv.NKV), uint32(kv.MaxT), seqs},
		append([]vk.Range{qkv, qn, kn, pos, kv.K, kv.V}, kv.scales()...)...)
}

// QKVHeads records a decode step's qkv projection with QKNormRoPEStore's work
// as its epilogue (qkv_heads.comp, a workgroup a head): y [x.Cols, ystride]
// gets the q heads normalised by qn and rotated at pos, and the k and v heads
// go, k normalised by kn and rotated, into the cache of row r's sequence
// seqOf[r] at pos[r]. w is the fused q/k/v weight [(nq + 2·kv.NKV)·kv.D, K] in
// one chunk; x is, with x.RMS set, RMSNormQ8's output (x.Q) for block weights
// or RMSNormParts' (f32 x.R, its stride a multiple of 8) for float weights.
func (o *Ops) QKVHeads(c *vk.Cmd, w *Weight, x Act, y vk.Range, ystride int, qn, kn, pos vk.Range, seqOf []int, nq int, eps, theta float32, kv *KVCache) {
	d, sg := kv.D, int(o.D.Caps.SubgroupSize)
	wg := o.qkvHeadsWG(x.Cols, d)
	blocked := w.Format.Blocked()
	if !o.CanQKVHeads(w, x.Cols, d) || blocked && x.Q == nil || !blocked && (x.F16 || x.Stride%8 != 0 || x.R.B == nil) ||
		x.RMS == nil || x.Cols != len(seqOf) || w.Rows != (nq+2*kv.NKV)*d || w.K != x.K || ystride < nq*d {
		panic(fmt.Sprintf("ops: QKVHeads of %s W[%d, %d] (%d chunks) × x[%d, %d] (stride %d, f16 %v) for %d rows, heads %d+2×%d of %d (subgroups of %d)", w.Format, w.Rows, w.K, len(w.Chunks), x.Cols, x.K, x.Stride, x.F16, len(seqOf), nq, kv.NKV, d, sg))
	}
	seqs := uint32(0)
	for r, s := range seqOf {
		if s < 0 || s >= min(kv.Seqs, 256) {
			panic(fmt.Sprintf("ops: QKVHeads of rows of sequences %v into a cache of %d", seqOf, kv.Seqs))
		}
		seqs |= uint32(s) << (8 * r)
	}
	r := x.RMS
	push := struct {
		K, XStride, YStride, NW uint32
		Eps, QEps, Theta        float32
		NQ, NKV, MaxT, Seqs     uint32
	}{uint32(w.K), uint32(x.K / 32), uint32(ystride), uint32(r.NW), r.Eps, eps, theta, uint32(nq), uint32(kv.NKV), uint32(kv.MaxT), seqs}
	bufs := append([]vk.Range{}, w.Chunks[0].Parts...)
	if blocked {
		bufs = append(bufs, x.Q.Q, x.Q.D)
	} else {
		push.XStride = uint32(x.Stride)
		bufs = append(bufs, x.R)
	}
	bufs = append(bufs, y, r.Shares, qn, kn, pos, kv.K, kv.V)
	steps := uint32(1) // (block weights: one step at a time)
	switch {
	case blocked:
	case o.QKVSteps != 0:
		steps = o.QKVSteps
	case !kv.Q8:
		steps = 2
	}
	c.Dispatch(o.pipe("qkv_heads_"+w.Format.String()+"_"+kv.kind(), wg, uint32(x.Cols), uint32(d/(int(wg)/sg)), uint32(d), steps),
		[3]uint32{uint32(nq + 2*kv.NKV), 1, 1}, push, append(bufs, kv.scales()...)...)
}

// qkvHeadsWG is QKVHeads' workgroup for cols columns of heads of d: o.QKVHeadsWG
// invocations when their subgroups split d rows evenly and cover cols·d/2
// rotation pairs, and subgroups split d/2 too; else 0 (QKVHeads cannot run).
func (o *Ops) qkvHeadsWG(cols, d int) uint32 { return qkvHeadsWG(o.D.Caps, o.QKVHeadsWG, cols, d) }

func qkvHeadsWG(c *vk.Caps, wg32 uint32, cols, d int) uint32 {
	wg, sg := int(wg32), int(c.SubgroupSize)
	// The kernel's rows a subgroup (a specialization constant) assume the
	// subgroup size the device reports, so a device whose compiler may pick
	// another (a range of sizes) keeps the mat-vec.
	if c.MinSubgroupSize != c.MaxSubgroupSize || sg == 0 {
		return 0
	}
	if wg == 0 || wg%sg != 0 || d%(wg/sg) != 0 || (d/2)%sg != 0 || wg < cols*d/2 || cols < 1 || cols > 4 || wg > int(c.MaxInvocations) {
		return 0
	}
	return uint32(wg)
}

// CanQKVHeads reports whether QKVHeads serves a decode step of cols rows with
// heads of d and the qkv weight w (in one chunk; float weights with K a
// multiple of 8).
func (o *Ops) CanQKVHeads(w *Weight, cols, d int) bool {
	return (w.Format.Blocked() || w.K%8 == 0) && len(w.Chunks) == 1 && o.qkvHeadsWG(cols, d) != 0
}

// KVCache is a layer's cache: K and V [Seqs, NKV, MaxT, D], f16, or with Q8
// int8 codes with an f32 scale per vector in KS, VS [Seqs, NKV, MaxT]. An
// int8 K of KVPadKeys vectors more (KVBytesK) lets single-query attention run
// on tensor cores (decodeCoop).
type KVCache struct {
	K, V               vk.Range
	Q8                 bool
	KS, VS             vk.Range
	Seqs, NKV, MaxT, D int
}

// KVBytes is the device memory of one layer's K and V caches (scales
// included; an int8 K's padding, KVPadKeys vectors, not).
func KVBytes(q8 bool, seqs, nkv, maxT, d int) int64 {
	n := int64(seqs * nkv * maxT)
	if q8 {
		return 2 * n * int64(d+4)
	}
	return 2 * n * int64(2*d)
}

// KVPadKeys is the vectors an int8 cache's K holds past its last one: the
// tensor-core single-query attention loads whole 16-key fragments of a tile
// and ignores the keys past the cache.
const KVPadKeys = decodeKeys

// KVBytesK is the bytes of an int8 cache's K codes, with their padding.
func KVBytesK(seqs, nkv, maxT, d int) int64 { return int64(seqs*nkv*maxT+KVPadKeys) * int64(d) }

// kind is the kernel suffix of the cache's format.
func (kv *KVCache) kind() string {
	if kv.Q8 {
		return "q8"
	}
	return "f16"
}

// scales are the int8 cache's scale buffers, bound after the kernels' others.
func (kv *KVCache) scales() []vk.Range {
	if kv.Q8 {
		return []vk.Range{kv.KS, kv.VS}
	}
	return nil
}

// KVStore records copying the k and v heads of T tokens (qkv rows rowOff..) of
// sequence seq into the cache at positions pos[rowOff].. (pos int32 [rows] on the
// device; the caller keeps them inside the cache).
func (o *Ops) KVStore(c *vk.Cmd, kv *KVCache, qkv, pos vk.Range, stride, nq, rowOff, T, seq int) {
	if seq >= kv.Seqs || T > kv.MaxT {
		panic(fmt.Sprintf("ops: KVStore of %d positions of sequence %d into a cache of %d×%d", T, seq, kv.Seqs, kv.MaxT))
	}
	push := struct{ T, RowOff, NQ, NKV, D, Stride, MaxT, Seq uint32 }{
		uint32(T), uint32(rowOff), uint32(nq), uint32(kv.NKV), uint32(kv.D), uint32(stride), uint32(kv.MaxT), uint32(seq)}
	if kv.Q8 {
		if kv.D%4 != 0 {
			panic(fmt.Sprintf("ops: an int8 KV cache needs a head dim divisible by 4, not %d", kv.D))
		}
		c.Dispatch(o.pipe("kv_store_q8", 32), [3]uint32{uint32(kv.NKV), uint32(T), 1}, push, qkv, kv.K, kv.V, pos, kv.KS, kv.VS)
		return
	}
	c.Dispatch(o.pipe("kv_store_f16", o.WG), o.grid1(T*kv.NKV*kv.D, o.WG), push, qkv, kv.K, kv.V, pos)
}

// AttnScratch holds the partial results of split attention.
type AttnScratch struct {
	Part, ML vk.Range
}

// Attn describes one sequence's attention call.
type Attn struct {
	QKV       vk.Range // q heads of rows RowOff..RowOff+T-1, Stride floats a row
	Stride    int
	RowOff, T int
	Pos       vk.Range // int32 [rows]: pos[RowOff] is the first query's position
	// MaxKV bounds the keys (the first query's position + T); the key splits are
	// planned for it, so a step recorded with MaxKV = cache size replays at any length.
	MaxKV   int
	Seq, NQ int
	Scale   float32
	Out     vk.Range // [rows, NQ·D]; rows RowOff.. are written
	OutF16  bool     // Out is f16 (a tensor-core GEMM's input)
	// Q, when set, receives the output as q8_1 rows instead of Out (the o
	// projection's input in a decode step).
	Q *QAct
}

const attnTile = 32

// coopAttnRows is the query rows a workgroup of attention_coopmat takes.
const coopAttnRows = 64

// coopAttention says whether attention of more than one query runs on tensor
// cores (attention_coopmat): the device has them, the head size is a multiple
// of 16 up to 128, and its K/V/Q tiles fit the shared memory (36 KiB at 128).
func (o *Ops) coopAttention(d int) bool {
	return o.CoopMat && d%16 == 0 && d <= 128 && o.D.Caps.MaxSharedMemory >= 40<<10
}

// combineLanes is how many invocations of attn_combine share an element after
// single-query attention over a cache of 64 splits or more (8192 positions):
// the splits then merge in that many short chains (at most the subgroup
// size). Measured on an H100 (q4): the merge at 32k 1.79 → 1.28 ms, the step
// 20.88 → 20.17–20.35 ms, at 16k 16.11–16.18 → 15.95–16.00 ms; at 4k no
// better, so smaller caches keep one invocation an element.
const combineLanes = 8

// decodeKeys is the keys a tile of attention_decode holds (its workgroup's
// invocations, a key each for the scores) unless Ops.DecodeTile says.
const decodeKeys = 128

// decodeCoop says whether single-query attention over kv with G query heads a
// KV head runs on tensor cores (attention_decode_coopmat): Ops.DecodeCoop
// asks for it, the cache is int8 with heads of 128 and a padded K
// (KVBytesK), G ≤ 16, 128-key tiles, and the device has 16×16×32 int8 and
// 16×16×16 f16 cooperative matrices on subgroups of 32 and 48 KiB of shared
// memory.
func (o *Ops) decodeCoop(kv *KVCache, G int) bool {
	c := o.D.Caps
	return o.DecodeCoop != 0 && kv.Q8 && kv.D == 128 && G <= 16 && o.decodeTile() == decodeKeys &&
		int64(kv.K.Size) >= KVBytesK(kv.Seqs, kv.NKV, kv.MaxT, kv.D) &&
		c.CoopMatNV && c.SubgroupSize == 32 && c.MaxSharedMemory >= 48<<10 &&
		c.HasCoopMat(16, 16, 32, "s8", "s32") && c.HasCoopMat(16, 16, 16, "f16", "f32")
}

// decodeTile is the keys (and invocations) of attention_decode's tiles.
func (o *Ops) decodeTile() int {
	if o.DecodeTile != 0 {
		return int(o.DecodeTile)
	}
	return decodeKeys
}

// decodeGroups is about how many workgroups (of 128 invocations; half as
// many of 256) single-query attention should have a sequence: fewer leave
// the GPU's latency unhidden, more repeat the key and value loads for little
// gain.
const decodeGroups = 256

// decodeSplits is the key splits of single-query attention over tiles tiles
// (of decodeTile keys), for one of seqs sequences whose attention runs
// together, and whether they take several tiles each (attention_decode's
// MULTI form). A tile each while the sequences' workgroups fit one wave of
// the one-tile form (four workgroups of 128 a multiprocessor, two of 256);
// past that, as many splits as one wave of the MULTI form holds
// (Ops.DecodeWave, decodeWavePerSM), each taking its share of the tiles,
// where a second wave of one-tile workgroups would have waited for the first.
func (o *Ops) decodeSplits(tiles, G, nkv, seqs int) (int, bool) {
	// The multiprocessors, halved for workgroups of 256 (four of 128 fit one).
	sms := int(o.D.Caps.SMCount) * decodeKeys / o.decodeTile()
	wgs := func(s int, multi bool) int { return seqs * nkv * (G / o.decodeHG(G, nkv, s, multi)) * s }
	if o.DecodeWave == 0 && (sms == 0 || wgs(tiles, false) <= 4*sms) {
		return tiles, false // (no count of the device's multiprocessors: a tile each)
	}
	wave := int(o.DecodeWave)
	if wave == 0 {
		wave = decodeWavePerSM * sms
	}
	// The several-tile form's heads a workgroup do not depend on the splits.
	return max(1, min(tiles, wave/wgs(1, true))), true
}

// decodeWavePerSM is the workgroups of attention_decode's MULTI form a
// multiprocessor holds: four of 128 invocations, as their registers allow
// (on an H200's driver 128 an invocation with either cache, once the int8
// form's value batch is 12: with 24 it took 146, three workgroups; the
// one-tile form takes 97 and 116). Measured on the H200, q4 steps on the GPU
// at 4300 / 8000 / 16000 keys: three a multiprocessor with the batch of 24
// 9.25 / 9.99 / 11.91 ms, four with 12 9.35 / 9.70 / 11.33 (8: 9.33 / 9.71 /
// 11.42; 16: 9.34 / 9.74 / 11.45); q8 (f16 cache) four 13.15 / 13.86 /
// 16.45, three 13.16 / 14.31 / 17.24.
const decodeWavePerSM = 4

// decodeHG is the query heads a workgroup of single-query attention takes:
// Ops.DecodeHeads where it divides G, else all G in the several-tile form
// (its splits already fill a wave), else decodeHeads.
func (o *Ops) decodeHG(G, nkv, splits int, multi bool) int {
	if h := int(o.DecodeHeads); h > 0 && G%h == 0 {
		return h
	}
	if multi {
		return G
	}
	return decodeHeads(G, nkv, splits, decodeGroups*decodeKeys/o.decodeTile())
}

// decodeHeads is the query heads of a group one workgroup of single-query
// attention takes: all G, halved (down to 2) while the workgroups of a
// sequence stay within groups (decodeGroups). Measured on an H100 (q4 step,
// 32-step medians in two rounds), 8 splits: 11.51–11.55 ms with 8 heads a
// workgroup, 11.25–11.32 with 4, 11.16–11.18 with 2; 32 splits: 11.92–11.99,
// 11.95–12.02 and 12.28–12.29.
func decodeHeads(G, nkv, splits, groups int) int {
	hg := G
	for hg > 2 && hg%2 == 0 && nkv*splits*(G/(hg/2)) <= groups {
		hg /= 2
	}
	return hg
}

// NewAttnScratch allocates the AttnScratch of a session of maxT positions and
// passes of up to maxRows rows, nq query heads of d: room for a decode step's
// single-query splits over the whole cache for up to maxVec rows, or two
// splits a row for a prefill pass (Attention plans no more splits than the
// scratch holds), and for the alignment of up to maxVec shares (Attention
// starts each call's share at a multiple of 256 bytes).
func NewAttnScratch(al *vk.Allocs, maxT, maxRows, maxVec, nq, d int) AttnScratch {
	parts := max(maxVec*ceil(maxT, decodeKeys), 2*maxRows)
	return AttnScratch{Part: al.F32("attn_part", parts*nq*d+64*maxVec), ML: al.F32("attn_ml", 2*parts*nq+64*maxVec)}
}

// Attention records causal GQA attention for several sequences: the split flash
// attention of each into its share of s, one barrier, then the combines (so the
// sequences' attention runs concurrently). A barrier follows. mark, if not nil,
// is called after each of the two stages with its name ("attention",
// "attn_combine"; profiles record a timestamp there).
func (o *Ops) Attention(c *vk.Cmd, kv *KVCache, as []Attn, s *AttnScratch, mark func(string)) {
	if mark == nil {
		mark = func(string) {}
	}
	type planned struct {
		a           Attn
		splits, kps int
		part, ml    vk.Range
		lanes       uint32 // attn_combine's invocations an element
	}
	var plans []planned
	n := uint64(len(as))
	partShare := (s.Part.Size / n) &^ 255
	mlShare := (s.ML.Size / n) &^ 255
	for i, a := range as {
		G := a.NQ / kv.NKV
		R := 16
		if a.T*G < 64 {
			R = 8
		}
		if o.coopAttention(kv.D) {
			R = coopAttnRows
		}
		blocks := ceil(a.T*G, R)
		kvlen := a.MaxKV
		if kvlen > kv.MaxT || kvlen < a.T {
			panic(fmt.Sprintf("ops: attention over %d positions, cache holds %d", kvlen, kv.MaxT))
		}
		// Enough workgroups to fill the device: split the keys when the queries are few.
		target := 4 * 132 / len(as)
		if o.D.Caps.Type == 4 {
			target = 4
		}
		part, ml := s.Part.Sub(uint64(i)*partShare, partShare), s.ML.Sub(uint64(i)*mlShare, mlShare)
		perRow := a.T * a.NQ
		if a.T == 1 && G <= 16 { // (the tensor-core kernel measured 1.7–5× slower here on an H100)
			// One query: a workgroup per KV head (or part of its heads) and
			// split of the keys' tiles, no more than a wave of the device holds.
			tile := o.decodeTile()
			splits, multi := o.decodeSplits(ceil(kvlen, tile), G, kv.NKV, len(as))
			if ns := tile / max(1, kv.D/4); kv.D%4 != 0 || ns*(kv.D/4) != tile || ns&(ns-1) != 0 || ns > int(o.D.Caps.SubgroupSize) {
				panic(fmt.Sprintf("ops: single-query attention needs %d/(head dim/4) to be a power of two up to the subgroup size %d; head dim %d", tile, o.D.Caps.SubgroupSize, kv.D))
			}
			if kv.Q8 && kv.D%16 != 0 {
				panic(fmt.Sprintf("ops: single-query attention on the int8 cache needs a head dim that is a multiple of 16, got %d", kv.D))
			}
			if splits*perRow > int(ml.Size/8) || splits*perRow*kv.D > int(part.Size/4) {
				panic(fmt.Sprintf("ops: attention scratch too small for %d splits", splits))
			}
			vb := o.DecodeValueBatch
			switch {
			case vb != 0:
			case kv.Q8 && multi:
				vb = 12 // (the MULTI form's registers: see decodeWavePerSM)
			case kv.Q8:
				vb = 24
			default:
				vb = 8
			}
			var pipe *vk.Pipeline
			hg := o.decodeHG(G, kv.NKV, splits, multi)
			if o.decodeCoop(kv, G) {
				// All G heads a workgroup: no more workgroups than the plan's.
				hg, pipe = G, o.pipe("attention_decode_q8_coopmat", decodeKeys, uint32(G), b2u(multi))
			} else {
				pipe = o.pipe("attention_decode_"+kv.kind(), uint32(tile), uint32(G), uint32(kv.D), o.DecodePrefetch, vb, uint32(hg), b2u(multi))
			}
			c.Dispatch(pipe, [3]uint32{uint32(G / hg), uint32(kv.NKV), uint32(splits)},
				struct {
					T, NQ, NKV, Stride, RowOff, MaxT, Seq, KPS uint32
					Scale                                      float32
				}{1, uint32(a.NQ), uint32(kv.NKV), uint32(a.Stride), uint32(a.RowOff), uint32(kv.MaxT), uint32(a.Seq), uint32(tile), a.Scale},
				append([]vk.Range{a.QKV, kv.K, kv.V, part, ml, a.Pos}, kv.scales()...)...)
			lanes := uint32(1)
			if splits >= 64 {
				lanes = min(combineLanes, o.D.Caps.SubgroupSize)
			}
			plans = append(plans, planned{a, splits, tile, part, ml, lanes})
			continue
		}
		splits := min(max(1, ceil(target, blocks*kv.NKV)), ceil(kvlen, attnTile))
		splits = min(splits, int(ml.Size/8)/perRow, int(part.Size/4)/(perRow*kv.D))
		if splits < 1 {
			panic(fmt.Sprintf("ops: attention scratch too small for %d query rows", perRow))
		}
		kps := ceil(ceil(kvlen, splits), attnTile) * attnTile
		splits = ceil(kvlen, kps)
		pipe := o.pipe("attention_"+kv.kind(), uint32(kv.D), uint32(R))
		if o.coopAttention(kv.D) {
			pipe = o.pipe("attention_"+kv.kind()+"_coopmat", 128, uint32(kv.D))
		}
		c.Dispatch(pipe, [3]uint32{uint32(blocks), uint32(kv.NKV), uint32(splits)},
			struct {
				T, NQ, NKV, Stride, RowOff, MaxT, Seq, KPS uint32
				Scale                                      float32
			}{uint32(a.T), uint32(a.NQ), uint32(kv.NKV), uint32(a.Stride), uint32(a.RowOff), uint32(kv.MaxT), uint32(a.Seq), uint32(kps), a.Scale},
			append([]vk.Range{a.QKV, kv.K, kv.V, part, ml, a.Pos}, kv.scales()...)...)
		plans = append(plans, planned{a, splits, kps, part, ml, 1})
	}
	c.Barrier()
	mark("attention")
	for _, p := range plans {
		a := p.a
		push := struct{ T, NQ, D, Splits, RowOff, KPS uint32 }{uint32(a.T), uint32(a.NQ), uint32(kv.D), uint32(p.splits), uint32(a.RowOff), uint32(p.kps)}
		if a.Q != nil {
			if a.Q.K != a.NQ*kv.D || a.Q.Cols < a.RowOff+a.T {
				panic(fmt.Sprintf("ops: attention q8_1 output of %d×%d for rows [%d, +%d) of width %d", a.Q.Cols, a.Q.K, a.RowOff, a.T, a.NQ*kv.D))
			}
			blocks := a.T * a.NQ * kv.D / 32
			wg := max(128, 32*p.lanes) // whole 32-value blocks
			c.Dispatch(o.pipe("attn_combine_q8_1", wg, p.lanes), [3]uint32{uint32(ceil(blocks, int(wg/p.lanes/32))), 1, 1}, push, p.part, p.ml, a.Q.Q, a.Q.D, a.Pos)
			continue
		}
		name := "attn_combine_f32"
		if a.OutF16 {
			name = "attn_combine_f16"
		}
		c.Dispatch(o.pipe(name, o.WG, p.lanes), o.grid1(a.T*a.NQ*kv.D*int(p.lanes), o.WG), push, p.part, p.ml, a.Out, a.Pos)
	}
	c.Barrier()
	mark("attn_combine")
}

// SwiGLUQ8 records q = q8_1(silu(x[:, :I])·x[:, I:]) for x [rows, 2I] (the fused
// form of SwiGLU then QuantizeAct).
func (o *Ops) SwiGLUQ8(c *vk.Cmd, x vk.Range, q *QAct, rows, I int) {
	if q.K != I || q.Cols < rows || I%32 != 0 {
		panic(fmt.Sprintf("ops: SwiGLUQ8 of [%d, 2·%d] into %d×%d", rows, I, q.Cols, q.K))
	}
	n := rows * I / 32
	c.Dispatch(o.pipe("swiglu_q8_1", 256), [3]uint32{uint32(ceil(n, 32)), 1, 1},
		struct{ K, Cols, Stride uint32 }{uint32(I), uint32(rows), uint32(2 * I)}, x, q.Q, q.D)
}

// SwiGLU records y [rows, I] = silu(x[:, :I])·x[:, I:] for x [rows, 2I].
func (o *Ops) SwiGLU(c *vk.Cmd, x, y vk.Range, rows, I int) {
	o.swiGLU(c, "swiglu_f32", x, y, rows, I)
}

// SwiGLUF16 is SwiGLU writing y as f16 (a tensor-core GEMM's input).
func (o *Ops) SwiGLUF16(c *vk.Cmd, x, y vk.Range, rows, I int) {
	o.swiGLU(c, "swiglu_f16", x, y, rows, I)
}

func (o *Ops) swiGLU(c *vk.Cmd, name string, x, y vk.Range, rows, I int) {
	c.Dispatch(o.pipe(name, o.WG), o.grid1(rows*I, o.WG), struct{ N, I uint32 }{uint32(rows * I), uint32(I)}, x, y)
}
