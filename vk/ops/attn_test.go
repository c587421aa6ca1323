package ops

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/emu35/emu35/model/cpu"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
)

// QKNormRoPE is the fused form of RMSNorm over each head then RoPE.
func TestQKNormRoPE(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(8))
	rows, nq, nkv, d := 5, 4, 2, 128
	stride := (nq + 2*nkv) * d
	x := randn(r, rows*stride, 1)
	qn, kn := randn(r, d, 1), randn(r, d, 1)
	pos := []int32{0, 3, 99, 1000, 7}
	xb := e.f32("x", x)
	pb, _ := Upload(e.d, e.a, "pos", I32Bytes(pos))
	e.o.QKNormRoPE(e.c, xb, e.f32("qn", qn), e.f32("kn", kn), pb.All(), rows, nq, nkv, d, stride, 1e-5, 5e6)
	e.run()
	want := append([]float32(nil), x...)
	for row := 0; row < rows; row++ {
		for h := 0; h < nq+nkv; h++ {
			w := qn
			if h >= nq {
				w = kn
			}
			seg := want[row*stride+h*d : row*stride+(h+1)*d]
			copy(seg, cpu.RoPE(cpu.RMSNorm(seg, w, 1, d, 1e-5), pos[row:row+1], 1, 1, d, 5e6))
		}
	}
	check(t, "qk_norm_rope", e.get(xb, len(x)), want, 1e-7)
}

// newKV is a zeroed cache of seqs sequences (codes and scales split as the LM
// lays them out when q8).
func (e *env) newKV(q8 bool, seqs, nkv, maxT, d int) *KVCache {
	half := int(KVBytes(q8, seqs, nkv, maxT, d) / 2)
	kb, vb := e.f32("K", make([]float32, half/4)), e.f32("V", make([]float32, half/4))
	kv := &KVCache{K: kb, V: vb, Seqs: seqs, NKV: nkv, MaxT: maxT, D: d, Q8: q8}
	if q8 {
		// K's codes with their padding (KVBytesK), then the scales.
		codes, scales := uint64(KVBytesK(seqs, nkv, maxT, d)), uint64(4*seqs*nkv*maxT)
		kb = e.f32("K", make([]float32, (codes+scales)/4))
		kv.K, kv.KS = kb.Sub(0, codes), kb.Sub(codes, scales)
		codes = uint64(seqs * nkv * maxT * d)
		kv.V, kv.VS = vb.Sub(0, codes), vb.Sub(codes, vb.Size-codes)
	}
	return kv
}

// The fused decode-step form writes the same qkv and the same cache bits as
// QKNormRoPE followed by KVStore of each row.
func TestQKNormRoPEStore(t *testing.T) {
	for _, q8 := range []bool{false, true} {
		e := newEnv(t)
		r := rand.New(rand.NewSource(10))
		rows, nq, nkv, d, maxT := 2, 8, 2, 128, 40
		stride := (nq + 2*nkv) * d
		x := randn(r, rows*stride, 1)
		qn, kn := e.f32("qn", randn(r, d, 1)), e.f32("kn", randn(r, d, 1))
		pb, _ := Upload(e.d, e.a, "pos", I32Bytes([]int32{17, 33}))
		seqOf := []int{1, 0}
		a, b := e.newKV(q8, 2, nkv, maxT, d), e.newKV(q8, 2, nkv, maxT, d)
		xa, xb := e.f32("xa", x), e.f32("xb", x)
		e.o.QKNormRoPE(e.c, xa, qn, kn, pb.All(), rows, nq, nkv, d, stride, 1e-6, 5e6)
		e.c.Barrier()
		for row, seq := range seqOf {
			e.o.KVStore(e.c, a, xa, pb.All(), stride, nq, row, 1, seq)
		}
		e.o.QKNormRoPEStore(e.c, xb, qn, kn, pb.All(), seqOf, nq, d, stride, 1e-6, 5e6, b)
		e.run()
		same := func(what string, p, q vk.Range) {
			u, v := e.get(p, int(p.Size/4)), e.get(q, int(q.Size/4))
			n := 0
			for i := range u {
				if math.Float32bits(u[i]) != math.Float32bits(v[i]) {
					n++
				}
			}
			if n > 0 {
				t.Errorf("q8 %v: %s differs in %d of %d words", q8, what, n, len(u))
			}
		}
		same("qkv", xa, xb)
		same("K", a.K, b.K)
		same("V", a.V, b.V)
		if q8 {
			same("K scales", a.KS, b.KS)
			same("V scales", a.VS, b.VS)
		}
		// The store reached the cache: some word of K is not zero.
		if k := e.get(b.K, int(b.K.Size/4)); slices.Max(k) == 0 && slices.Min(k) == 0 {
			t.Errorf("q8 %v: nothing was stored", q8)
		}
	}
}

// q8Vectors is the int8 cache's rounding on the CPU: each d-vector of x
// becomes codes round(x·127/amax) times amax/127.
func q8Vectors(x []float32, d int) []float32 {
	out := make([]float32, len(x))
	for v := 0; v < len(x)/d; v++ {
		amax := float32(0)
		for _, f := range x[v*d : (v+1)*d] {
			amax = max(amax, float32(math.Abs(float64(f))))
		}
		if amax == 0 {
			continue
		}
		inv, s := 127/amax, amax/127
		for i := v * d; i < (v+1)*d; i++ {
			q := float32(math.Floor(math.Abs(float64(x[i]*inv)) + 0.5))
			out[i] = float32(math.Copysign(float64(min(q, 127)), float64(x[i]))) * s
		}
	}
	return out
}

// Attention (with the KV store, splits and the combine) against the CPU, for
// prefill blocks, decode steps and chunks after a past, two sequences in one
// cache, with the f16 and the int8 cache.
// Attention of several queries runs on the plain kernel and, where the device
// has tensor cores, on attention_coopmat too, and single queries on the int8
// cache on attention_decode_coopmat; all against the CPU.
func TestAttention(t *testing.T) {
	for _, q8 := range []bool{false, true} {
		for _, coop := range []bool{false, true} {
			name := map[bool]string{false: "f16", true: "q8"}[q8] + map[bool]string{false: "", true: "/coopmat"}[coop]
			t.Run(name, func(t *testing.T) { testAttention(t, q8, coop) })
		}
	}
}

func testAttention(t *testing.T, q8, coop bool) {
	e := newEnv(t)
	if coop && !e.o.CoopMat {
		t.Log("no 16×16×16 f16 cooperative matrices on this device: the plain run covers it")
		return
	}
	e.o.CoopMat = coop
	e.o.DecodeCoop = b2u(coop) // (single queries on the int8 cache: attention_decode_coopmat)
	r := rand.New(rand.NewSource(9))
	for i, tc := range []struct{ nq, nkv, T, past int }{
		{4, 2, 37, 0}, {4, 2, 1, 36}, {16, 2, 3, 70}, {8, 1, 1, 200}, {16, 2, 1, 300}, {8, 8, 20, 0}, {8, 2, 1, 1100},
		{4, 1, 1, 8400}, // more than 8 splits; more than 64 (eight batches of eight lanes in attn_combine)
		{8, 2, 1, 700},  // tiles of 256 keys, one a split
	} {
		// Vary the single-query kernel's value loads in flight and the query
		// heads a workgroup takes.
		e.o.DecodeValueBatch = []uint32{8, 24, 3, 32, 1, 8, 24, 0, 0}[i]
		e.o.DecodeHeads = []uint32{0, 1, 0, 2, 4, 0, 2, 1, 0}[i]
		// A wave of a few workgroups: splits of several tiles (and a wave
		// that holds them all: a tile each).
		e.o.DecodeWave = []uint32{0, 0, 0, 3, 1 << 20, 0, 5, 16, 0}[i]
		e.o.DecodeTile = []uint32{0, 256, 0, 256, 0, 256, 128, 256, 256}[i] // (256: tiles of 256 keys, workgroups of 256)
		d := 128
		stride := (tc.nq + 2*tc.nkv) * d
		kvlen := tc.past + tc.T
		maxT := kvlen + 5
		if tc.T == 1 {
			maxT += 300 // a recorded step plans splits for the whole cache: most are past the end
		}
		kv := e.newKV(q8, 2, tc.nkv, maxT, d)
		// Fill both sequences' caches with every position via KVStore from a qkv of kvlen rows.
		all := randn(r, kvlen*stride, 1)
		qkv := e.f32("qkv", all)
		pos := make([]int32, kvlen)
		for i := range pos {
			pos[i] = int32(i)
		}
		pb, _ := Upload(e.d, e.a, "pos", I32Bytes(pos))
		for seq := 0; seq < 2; seq++ {
			e.o.KVStore(e.c, kv, qkv, pb.All(), stride, tc.nq, 0, kvlen, seq)
		}
		e.c.Barrier()
		s := &AttnScratch{Part: e.out("part", 128*tc.T*tc.nq*d), ML: e.out("ml", 2*128*tc.T*tc.nq)}
		// Poison the partials: a split the kernels skip must not be read.
		e.o.Fill(e.c, s.Part, 0, 0, 0x7FC00000)
		e.o.Fill(e.c, s.ML, 0, 0, 0x7FC00000)
		e.c.Barrier()
		out := e.out("out", kvlen*tc.nq*d)
		scale := float32(1 / math.Sqrt(float64(d)))
		e.o.Attention(e.c, kv, []Attn{{QKV: qkv, Stride: stride, RowOff: tc.past, T: tc.T, Pos: pb.All(), MaxKV: maxT, Seq: 1, NQ: tc.nq, Scale: scale, Out: out}}, s, nil)
		e.run()
		// CPU: queries are rows past.., keys/values all rows (rounded as cached:
		// to f16, or to int8 codes per vector, which the kernels then stage as f16).
		q := make([]float32, tc.T*tc.nq*d)
		k := make([]float32, kvlen*tc.nkv*d)
		v := make([]float32, kvlen*tc.nkv*d)
		for t := 0; t < tc.T; t++ {
			copy(q[t*tc.nq*d:(t+1)*tc.nq*d], all[(tc.past+t)*stride:])
		}
		for j := 0; j < kvlen; j++ {
			copy(k[j*tc.nkv*d:(j+1)*tc.nkv*d], all[j*stride+tc.nq*d:])
			copy(v[j*tc.nkv*d:(j+1)*tc.nkv*d], all[j*stride+(tc.nq+tc.nkv)*d:])
		}
		tol := 1e-10
		if q8 {
			k, v, tol = q8Vectors(k, d), q8Vectors(v, d), 1e-6 // the f16 staging of the dequantized values
		} else {
			for i := range k {
				k[i], v[i] = quant.RoundF16(k[i]), quant.RoundF16(v[i])
			}
		}
		if q8 && tc.T == 1 {
			q = q8Vectors(q, d) // attention_decode scores int8 queries (a scale per head) on the int8 cache
		}
		if coop && tc.T > 1 {
			tol = 1e-5 // the tensor cores take the scaled queries and the numerators as f16 too
		}
		if coop && q8 && tc.T == 1 && e.o.decodeCoop(kv, tc.nq/tc.nkv) {
			tol = 3e-6 // the numerators as f16
		}
		got := e.get(out, kvlen*tc.nq*d)[tc.past*tc.nq*d:]
		want := cpu.Attention(q, k, v, tc.T, tc.past, tc.nq, tc.nkv, d, float64(scale))
		check(t, fmt.Sprintf("attention %+v", tc), got, want, tol)
		// The f16 output form (prefill's GEMM input).
		out16 := e.out("out16", kvlen*tc.nq*d/2+1)
		e.o.Attention(e.c, kv, []Attn{{QKV: qkv, Stride: stride, RowOff: tc.past, T: tc.T, Pos: pb.All(), MaxKV: maxT, Seq: 1, NQ: tc.nq, Scale: scale, Out: out16, OutF16: true}}, s, nil)
		e.run()
		check(t, fmt.Sprintf("attention to f16 %+v", tc), e.getF16(out16, kvlen*tc.nq*d)[tc.past*tc.nq*d:], RoundF16All(got), 1e-8)
		// The q8_1 output form (decode steps): the same rows, quantized.
		qa, _ := NewQAct(e.a, "qa", kvlen, tc.nq*d)
		e.o.Attention(e.c, kv, []Attn{{QKV: qkv, Stride: stride, RowOff: tc.past, T: tc.T, Pos: pb.All(), MaxKV: maxT, Seq: 1, NQ: tc.nq, Scale: scale, Q: qa}}, s, nil)
		e.run()
		sub := &QAct{Q: qa.Q.Sub(uint64(tc.past*tc.nq*d), uint64(tc.T*tc.nq*d)), D: qa.D.Sub(uint64(8*tc.past*tc.nq*d/32), uint64(8*tc.T*tc.nq*d/32)), Cols: tc.T, K: tc.nq * d}
		check(t, fmt.Sprintf("attention q8_1 %+v", tc), e.checkQ8_1(sub, got, tc.T, tc.nq*d), want, 1e-4)
	}
}

func TestSwiGLU(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewSource(10))
	rows, I := 3, 70
	x := randn(r, rows*2*I, 2)
	y := e.out("y", rows*I)
	e.o.SwiGLU(e.c, e.f32("x", x), y, rows, I)
	e.run()
	var g, u []float32
	for row := 0; row < rows; row++ {
		g = append(g, x[row*2*I:row*2*I+I]...)
		u = append(u, x[row*2*I+I:(row+1)*2*I]...)
	}
	check(t, "swiglu", e.get(y, rows*I), cpu.SiluMul(g, u), 1e-12)
	y16 := e.out("y16", rows*I/2+1)
	e.o.SwiGLUF16(e.c, e.f32("x", x), y16, rows, I)
	e.run()
	check(t, "swiglu to f16", e.getF16(y16, rows*I), RoundF16All(cpu.SiluMul(g, u)), 1e-8)

	// The fused form with q8_1 output, on a block-aligned width.
	I = 96
	x = randn(r, rows*2*I, 2)
	q, _ := NewQAct(e.a, "q", rows, I)
	e.o.SwiGLUQ8(e.c, e.f32("x2", x), q, rows, I)
	e.run()
	g, u = nil, nil
	for row := 0; row < rows; row++ {
		g = append(g, x[row*2*I:row*2*I+I]...)
		u = append(u, x[row*2*I+I:(row+1)*2*I]...)
	}
	want := cpu.SiluMul(g, u)
	check(t, "swiglu_q8_1", e.checkQ8_1(q, want, rows, I), want, 1e-4)
}

// QKVHeads (a head a workgroup, the qk norm, RoPE and KV store after it)
// against RMSNormQ8, MatVec and QKNormRoPEStore: the same q heads, the same
// cache, for steps of one, two and four rows, several workgroup sizes, both
// cache formats and both block formats.
func TestQKVHeads(t *testing.T) {
	for _, f := range []quant.Format{quant.Q4, quant.Q8_0, quant.BF16, quant.F32} {
		for _, q8 := range []bool{false, true} {
			for _, wg := range []uint32{256, 512, 1024} {
				name := fmt.Sprintf("%s/kv %s/%d", f, map[bool]string{false: "f16", true: "q8"}[q8], wg)
				t.Run(name, func(t *testing.T) { testQKVHeads(t, f, q8, wg) })
			}
		}
	}
}

func testQKVHeads(t *testing.T, f quant.Format, q8 bool, wg uint32) {
	e := newEnv(t)
	e.o.QKVHeadsWG = wg
	r := rand.New(rand.NewSource(14))
	nq, nkv, d, maxT := 4, 2, 128, 50
	W := (nq + 2*nkv) * d
	for i, tc := range []struct {
		K     int
		seqOf []int
		pos   []int32
	}{{256, []int{1}, []int32{7}}, {5120, []int{1, 0}, []int32{40, 39}}, {512, []int{0, 0, 1, 1}, []int32{3, 4, 20, 21}}} {
		e.o.QKVSteps = 1 + uint32((i+int(wg/256))%2) // float weights: each K with and without the next step's loads ahead, over the workgroups
		M := len(tc.seqOf)
		wt, _ := quant.Quantize(f, W, tc.K, randn(r, W*tc.K, 0.05))
		w, err := e.o.UploadWeight(e.a, "w", wt)
		if err != nil {
			t.Fatal(err)
		}
		if !e.o.CanQKVHeads(w, M, d) {
			t.Logf("QKVHeads does not serve %d rows with %d invocations here (subgroups of %d)", M, wg, e.d.Caps.SubgroupSize)
			continue
		}
		x, nw := e.f32("x", randn(r, M*tc.K, 2)), e.f32("nw", randn(r, tc.K, 1))
		qn, kn := e.f32("qn", randn(r, d, 1)), e.f32("kn", randn(r, d, 1))
		pb, _ := Upload(e.d, e.a, "pos", I32Bytes(tc.pos))
		shares := e.out("shares", int(NormSharesBytes(M, tc.K)/4))
		a, b := e.newKV(q8, 2, nkv, maxT, d), e.newKV(q8, 2, nkv, maxT, d)
		act := Act{Cols: M, K: tc.K, Stride: tc.K}
		if f.Blocked() { // the norm's x·w in q8_1
			act.Q, _ = NewQAct(e.a, "q", M, tc.K)
			act.RMS = e.o.RMSNormQ8(e.c, x, nw, act.Q, shares, M, tc.K, 1e-6)
		} else { // in f32
			act.R = e.out("h", M*tc.K)
			act.RMS = e.o.RMSNormParts(e.c, x, nw, act.R, shares, M, tc.K, 1e-6)
		}
		e.c.Barrier()
		ya, yb := e.out("ya", M*W), e.out("yb", M*W)
		e.o.MatVec(e.c, w, act, ya, W)
		e.o.QKVHeads(e.c, w, act, yb, W, qn, kn, pb.All(), tc.seqOf, nq, 1e-6, 5e6, b)
		e.c.Barrier()
		e.o.QKNormRoPEStore(e.c, ya, qn, kn, pb.All(), tc.seqOf, nq, d, W, 1e-6, 5e6, a)
		e.run()
		name := fmt.Sprintf("K %d, rows of sequences %v", tc.K, tc.seqOf)
		ga, gb := e.get(ya, M*W), e.get(yb, M*W)
		var qa, qb []float32
		for row := 0; row < M; row++ {
			qa = append(qa, ga[row*W:row*W+nq*d]...)
			qb = append(qb, gb[row*W:row*W+nq*d]...)
		}
		check(t, name+": q heads", qb, qa, 1e-11)
		// The projections' sums run in another order: a cached f16 value or
		// int8 code may round the other way.
		for _, v := range []bool{false, true} {
			ca, cb := e.cacheValues(a, v), e.cacheValues(b, v)
			check(t, fmt.Sprintf("%s: cache (values %v)", name, v), cb, ca, 1e-6)
			for row, p := range tc.pos {
				for h := 0; h < nkv; h++ {
					at := ((tc.seqOf[row]*nkv+h)*maxT + int(p)) * d
					if slices.Max(ca[at:at+d]) == 0 && slices.Min(ca[at:at+d]) == 0 {
						t.Fatalf("%s: the reference stored nothing at row %d head %d", name, row, h)
					}
					check(t, fmt.Sprintf("%s: row %d head %d (values %v)", name, row, h, v), cb[at:at+d], ca[at:at+d], 1e-6)
				}
			}
		}
	}
}

// cacheValues reads a cache's K (or V) as floats [Seqs, NKV, MaxT, D]: the f16
// values, or the int8 codes times their vector's scale.
func (e *env) cacheValues(kv *KVCache, v bool) []float32 {
	n := kv.Seqs * kv.NKV * kv.MaxT * kv.D
	r, sr := kv.K, kv.KS
	if v {
		r, sr = kv.V, kv.VS
	}
	if !kv.Q8 {
		return e.getF16(r, n)
	}
	b := make([]byte, n)
	if err := e.d.Download(r.Sub(0, uint64(n)), b); err != nil {
		e.t.Fatal(err)
	}
	sc := e.get(sr, n/kv.D)
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(int8(b[i])) * sc[i/kv.D]
	}
	return x
}

// QKVHeads runs only where its workgroup's subgroups cover a head exactly:
// the subgroup size fixed, dividing the workgroup, the head and its half.
func TestQKVHeadsWG(t *testing.T) {
	nv := &vk.Caps{SubgroupSize: 32, MinSubgroupSize: 32, MaxSubgroupSize: 32, MaxInvocations: 1024}
	for _, tc := range []struct {
		c       vk.Caps
		wg      uint32
		cols, d int
		want    uint32
		why     string
	}{
		{*nv, 1024, 2, 128, 1024, "NVIDIA: 32 subgroups of 4 rows"},
		{*nv, 512, 4, 128, 512, "8 rows a subgroup"},
		{*nv, 1024, 4, 64, 1024, "a head of 64: 2 rows a subgroup"},
		{*nv, 0, 2, 128, 0, "off"},
		{*nv, 96, 1, 128, 0, "3 subgroups do not split 128 rows"},
		{*nv, 128, 4, 128, 0, "4 rows' 256 rotation pairs need 256 invocations"},
		{*nv, 1024, 5, 128, 0, "more than 4 rows"},
		{vk.Caps{SubgroupSize: 32, MinSubgroupSize: 8, MaxSubgroupSize: 64, MaxInvocations: 1024}, 1024, 2, 128, 0, "the compiler picks the subgroup size"},
		{vk.Caps{SubgroupSize: 8, MinSubgroupSize: 8, MaxSubgroupSize: 8, MaxInvocations: 1024}, 1024, 2, 128, 1024, "lavapipe: 128 subgroups of 1 row"},
		{vk.Caps{SubgroupSize: 8, MinSubgroupSize: 8, MaxSubgroupSize: 8, MaxInvocations: 512}, 1024, 2, 128, 0, "more invocations than the device allows"},
		{vk.Caps{SubgroupSize: 64, MinSubgroupSize: 64, MaxSubgroupSize: 64, MaxInvocations: 1024}, 1024, 2, 64, 0, "subgroups of 64 straddle a head of 64's halves"},
	} {
		if got := qkvHeadsWG(&tc.c, tc.wg, tc.cols, tc.d); got != tc.want {
			t.Errorf("%s: %d invocations, want %d", tc.why, got, tc.want)
		}
	}
}

// decodeSplits keeps a tile a split while one wave of the one-tile form holds
// the step's workgroups (four a multiprocessor), then plans one wave of the
// several-tile form; without a count of multiprocessors, a tile a split.
func TestDecodeSplits(t *testing.T) {
	e := newEnv(t)
	defer func(n uint32) { e.d.Caps.SMCount = n }(e.d.Caps.SMCount)
	type want struct {
		splits int
		multi  bool
	}
	for _, tc := range []struct {
		sms, wave, tiles, tile int
		want                   want
	}{
		{0, 0, 200, 0, want{200, false}},      // no count: as before
		{132, 0, 16, 0, want{16, false}},      // 2 sequences × 8 KV heads × 2 workgroups (4 heads each) × 16 = 512 ≤ 528
		{132, 0, 33, 0, want{33, false}},      // 8 heads a workgroup: 528
		{132, 0, 34, 0, want{33, true}},       // 544 > 528: one wave of 33 splits
		{132, 0, 126, 0, want{33, true}},      // 16k keys
		{100, 0, 126, 0, want{25, true}},      // a smaller card: 400 workgroups
		{132, 200, 20, 0, want{12, true}},     // a forced wave: 2 × 8 × 1 × 12 = 192 (all 8 heads a workgroup in the several-tile form)
		{132, 1, 20, 0, want{1, true}},        // never fewer than one split
		{132, 1 << 20, 20, 0, want{20, true}}, // a wave that holds all: the several-tile form, a tile each
		{132, 0, 33, 256, want{16, true}},     // 256-key tiles: two workgroups a multiprocessor, 264 a wave
		{132, 0, 8, 256, want{8, false}},      // 2 × 8 × 2 (4 heads each) × 8 = 256 ≤ 264
	} {
		e.d.Caps.SMCount = uint32(tc.sms)
		e.o.DecodeWave = uint32(tc.wave)
		e.o.DecodeTile = uint32(tc.tile)
		s, m := e.o.decodeSplits(tc.tiles, 8, 8, 2)
		if (want{s, m}) != tc.want {
			t.Errorf("%d multiprocessors, wave %d, %d tiles: %d splits (several tiles %v), want %+v", tc.sms, tc.wave, tc.tiles, s, m, tc.want)
		}
	}
}

// decodeCoop takes single-query attention to tensor cores only when asked,
// for the int8 cache with 128-dim heads and a padded K, at most 16 query heads
// a KV head, 128-key tiles, and a device with both products (the caps faked
// here; attention_decode_coopmat itself runs in TestAttention's q8/coopmat on
// GPUs that have them).
func TestDecodeCoop(t *testing.T) {
	e := newEnv(t)
	caps := *e.d.Caps
	defer func() { *e.d.Caps = caps }()
	e.d.Caps.CoopMatNV, e.d.Caps.SubgroupSize, e.d.Caps.MaxSharedMemory = true, 32, 48<<10
	e.d.Caps.CoopMatShapes = []vk.CoopMatShape{
		{M: 16, N: 16, K: 32, A: "s8", B: "s8", C: "s32", Result: "s32"},
		{M: 16, N: 16, K: 16, A: "f16", B: "f16", C: "f32", Result: "f32"},
	}
	defer func(c, tile uint32) { e.o.DecodeCoop, e.o.DecodeTile = c, tile }(e.o.DecodeCoop, e.o.DecodeTile)
	q8 := e.newKV(true, 2, 2, 40, 128)
	unpadded := *q8
	unpadded.K = q8.K.Sub(0, uint64(2*2*40*128))
	for i, tc := range []struct {
		coop, tile uint32
		kv         *KVCache
		G          int
		shapes     int
		want       bool
	}{
		{1, 0, q8, 8, 2, true},
		{0, 0, q8, 8, 2, false},                            // not asked
		{1, 0, e.newKV(false, 2, 2, 40, 128), 8, 2, false}, // the f16 cache
		{1, 0, e.newKV(true, 2, 2, 40, 64), 8, 2, false},   // 64-dim heads
		{1, 0, &unpadded, 8, 2, false},                     // K without its padding
		{1, 0, q8, 32, 2, false},                           // more than 16 heads a KV head
		{1, 256, q8, 8, 2, false},                          // 256-key tiles
		{1, 0, q8, 8, 1, false},                            // no f16 products
	} {
		e.o.DecodeCoop, e.o.DecodeTile = tc.coop, tc.tile
		e.d.Caps.CoopMatShapes = e.d.Caps.CoopMatShapes[:tc.shapes]
		if got := e.o.decodeCoop(tc.kv, tc.G); got != tc.want {
			t.Errorf("case %d: decodeCoop %v, want %v", i, got, tc.want)
		}
		e.d.Caps.CoopMatShapes = e.d.Caps.CoopMatShapes[:2]
	}
}
