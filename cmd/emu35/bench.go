package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/model/quant"
	"github.com/emu35/emu35/vk"
	"github.com/emu35/emu35/vk/ops"
)

func benchCmd() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "validate every kernel against the CPU, then time it at Emu3.5's shapes with GPU timestamps",
		Flags: []cli.Flag{
			deviceFlag,
			&cli.BoolFlag{Name: "quick", Usage: "small shapes (seconds on lavapipe)"},
			&cli.IntFlag{Name: "reps", Value: 5, Usage: "timed repetitions per case (the median is reported)"},
			&cli.StringFlag{Name: "only", Usage: "run only cases whose name matches this regexp"},
			&cli.BoolFlag{Name: "tune", Usage: "time the mat-vec kernels for each workgroup size and rows per workgroup"},
			modelFlag, weightsFlag, kvFlag, tuningFlag, vqFlag, f16Flag,
			&cli.StringFlag{Name: "grid", Value: "64x64", Usage: "with --vq: token grid to decode (and image size to encode)"},
			&cli.BoolFlag{Name: "e2e", Usage: "time one whole t2i image with --model and --vq (with --quick: the demo's tiny models)"},
			&cli.StringFlag{Name: "ratio", Value: "1:1", Usage: "with --e2e: the image grid (preset or HxW)"},
			&cli.IntFlag{Name: "refs", Usage: "with --e2e: an x2i image instead, after this many reference images (1 to 3) of the same grid, random codes: the prefill and the decode steps' longer contexts of any-to-image"},
			tokenizerFlag,
			&cli.StringFlag{Name: "ctx", Value: "1024,4096", Usage: "with --model: context lengths at which to time decode steps"},
			&cli.IntFlag{Name: "prefill", Value: 4096, Usage: "with --model: prompt length of each sequence of the timed CFG-pair prefill (0: none)"},
			&cli.IntFlag{Name: "steps", Value: 8, Usage: "with --model: decode steps timed per context length"},
			&cli.IntFlag{Name: "coop-bk", Usage: "the tensor-core matmul and convolution K step, 32 or 64 (0: the default), for the kernel table, --model, --e2e and --vq"},
			&cli.IntFlag{Name: "coop-wg", Usage: "the tensor-core matmul's workgroup: 256 (a 128×128 tile, K step --coop-bk) or 512 (256×128, K step 32); 0: the default (512 for products of 2048 rows or more of f16 activations, where its shared memory fits)"},
			&cli.IntFlag{Name: "attn-prefetch", Usage: "with --model or --e2e: value loads a decode attention invocation issues before its scores, 1 to 32 (0: the default, 8)"},
			&cli.IntFlag{Name: "attn-values", Usage: "with --model or --e2e: value loads a decode attention invocation keeps in flight after its scores, 1 to 32 (0: the default, 24 with the int8 cache, 8 with f16)"},
			&cli.IntFlag{Name: "attn-heads", Usage: "with --model or --e2e: query heads of a group that one decode attention workgroup takes, a divisor of the group (0: the default, fewer when the step's key band has few splits)"},
			&cli.IntFlag{Name: "qkv-heads", Value: -1, Usage: "with --model or --e2e: the workgroup of a decode step's qkv projection a head a workgroup, with the qk norm, RoPE and KV store after it (ops.Ops.QKVHeadsWG; 0: the mat-vec and a separate stage; -1: the default)"},
			&cli.IntFlag{Name: "touch-stride", Usage: "with --model or --e2e: KiB between the words the page touches read (ops.Ops.TouchStride; 0: the default, 1024)"},
			&cli.StringFlag{Name: "touch", Value: "auto", Usage: "with --model or --e2e: a decode step touches the next layer's weights' pages (lm.Model.TouchWeights): auto (on), on or off"},
			&cli.IntFlag{Name: "touch-at", Value: -1, Usage: "with --model or --e2e: where a decode step records the page touches (ops.Ops.TouchAt): 0 beside the attention, 1 beside the qkv projection; -1: the default (1)"},
			&cli.BoolFlag{Name: "stats", Usage: "after the run, print the driver's statistics of every pipeline it used (registers an invocation, shared memory; needs VK_KHR_pipeline_executable_properties)"},
			&cli.StringFlag{Name: "qshape", Usage: "with --model or --e2e: the block mat-vecs' workgroup shape as WGxROWSxBPT, wide and narrow (what --tune varies)"},
			&cli.IntFlag{Name: "qnarrow", Usage: "with --model or --e2e: the q4 mat-vec's workgroup size for matrices of at most 8192 rows (o and down), a multiple of 32 up to 1024 (after --qshape)"},
			&cli.StringSliceFlag{Name: "vary", Usage: "with --model: time the decode steps (visual head) with the knobs as given and with each of these alternatives: --mv settings and attn-prefetch=N, attn-values=N, attn-heads=N, attn-wave=N, attn-tile=128|256, attn-coop=0|1, qkv-heads=N, qkv-steps=0|1|2, touch-stride=KiB, touch-at=0|1, norm-wg=quads, touch=on|off joined by + (e.g. bf16:narrow=64x2x1+attn-values=16); two rounds in ABBA order, without the profile"},
			&cli.BoolFlag{Name: "autotune", Usage: "with --model: search this device's mat-vec shapes for the weight format, a matrix class at a time, then the decode step's knobs, by timing whole decode steps (--ctx, --steps) as --vary does, and record what beat the defaults in the --tuning file, which later runs on this device and driver apply"},
			&cli.StringSliceFlag{Name: "mv", Usage: "with --model or --e2e: a mat-vec shape as FORMAT[:WIDTH]=WGxROWSxBPT, e.g. bf16:narrow=64x2x1; WIDTH wide (more than 8192 rows), narrow-short (at most 8192 rows and K, the o projection), narrow-deep (at most 8192 rows, longer K: down), narrow (both) or none (all); after --qshape and --qnarrow, repeatable"},
			&cli.IntFlag{Name: "topk-wg", Usage: "with --model or --e2e: the invocations of topk_select, the one-workgroup pass of the GPU's draw (ops.Ops.TopKWG; 0: the default, 1024)"},
			&cli.BoolFlag{Name: "no-chain", Usage: "with --e2e: wait for each decode step and read its drawn token before starting the next (by default the next step starts first and takes the draw on the GPU)"},
			&cli.BoolFlag{Name: "one-by-one", Usage: "with --e2e: feed each token in a pass of its own (by default a row's last visual token and its forced EOL share one)"},
		},
		Action: func(c *cli.Context) error {
			d, err := openDevice(c)
			if err != nil {
				return err
			}
			defer d.Close()
			var only *regexp.Regexp
			if s := c.String("only"); s != "" {
				if only, err = regexp.Compile(s); err != nil {
					return fmt.Errorf("--only: %w", err)
				}
			}
			b := &bencher{ctx: c.Context, d: d, o: ops.New(d), reps: max(1, c.Int("reps")), quick: c.Bool("quick"), only: only,
				arena: d.NewArena(vk.DeviceMem)}
			defer b.arena.Free()
			if err := applyKnobs(c, b.o); err != nil {
				return err
			}
			if err := benchMode(c, d, b); err != nil {
				return err
			}
			if c.Bool("stats") {
				return printPipelineStats(os.Stdout, d)
			}
			return nil
		},
	}
}

// benchMode runs what the flags ask for: a whole image, a model, the VQ, the
// mat-vec shapes, or the kernel table.
func benchMode(c *cli.Context, d *vk.Device, b *bencher) error {
	switch {
	case c.Bool("e2e"):
		return benchE2E(c, d, b)
	case c.String("model") != "":
		return benchModel(c, d, b)
	case c.String("vq") != "":
		return benchVQ(c, d)
	case c.Bool("tune"):
		return b.tune()
	}
	return b.run()
}

// printPipelineStats lists the driver's statistics of every pipeline the run
// created, one line a pipeline: its shader, its specialization constants, then
// each statistic as name=value (on NVIDIA the registers an invocation uses, which
// bound how many workgroups an SM holds).
func printPipelineStats(w io.Writer, d *vk.Device) error {
	fmt.Fprintln(w, "pipeline statistics (driver):")
	for _, p := range d.Pipelines() {
		st, err := d.PipelineStats(p)
		if err != nil {
			return err
		}
		parts := make([]string, len(st))
		for i, s := range st {
			parts[i] = fmt.Sprintf("%s=%g", strings.ReplaceAll(s.Name, " ", "_"), s.Value)
		}
		fmt.Fprintf(w, "  %-28s %-30s %s\n", p.Name, fmt.Sprint(p.Spec), strings.Join(parts, " "))
	}
	return nil
}

type bencher struct {
	ctx    context.Context
	d      *vk.Device
	o      *ops.Ops
	reps   int
	quick  bool
	only   *regexp.Regexp
	stream float64 // measured streaming-read bytes/s
	// arena is reused (Reset) by every case: allocating and freeing gigabytes
	// per case made later allocations measurably slower on NVIDIA.
	arena *vk.Arena
}

const rowFmt = "%-20s %-26s %10s %8s %9s %8s\n"

// benchCase is one timed kernel: setup allocates and fills its buffers and
// returns the recording of one repetition.
type benchCase struct {
	name, shape string
	bytes       float64 // memory traffic per repetition
	flops       float64 // for compute-bound cases
	per         int     // dispatches a repetition, where the row gives the time of one (0: the repetition's)
	setup       func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error)
}

func (b *bencher) run() error {
	caps := b.d.Caps
	fmt.Printf("device: %s (%s), %s\n", caps.Name, caps.Type, caps.DriverInfo)
	if err := b.validate(); err != nil {
		return err
	}
	if err := b.measureStream(); err != nil {
		return err
	}
	fmt.Printf(rowFmt, "kernel", "shape", "time µs", "GB/s", "% stream", "TFLOP/s")
	for _, bc := range b.cases() {
		if b.only != nil && !b.only.MatchString(bc.name) {
			continue
		}
		if _, err := b.time(bc); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			fmt.Printf("%-20s %-26s skipped: %v\n", bc.name, bc.shape, err)
		}
	}
	return nil
}

// validate checks every product variant against the CPU before anything is timed.
func (b *bencher) validate() error {
	n := 0
	for _, f := range []quant.Format{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4} {
		for _, f16 := range []bool{false, true} {
			for _, cols := range []int{1, 2} {
				for _, mm := range []bool{false, true} {
					nm, err := b.o.Check(f, f16, 67, 160, cols, mm, int64(n))
					if err != nil {
						return fmt.Errorf("validating %s: %w", f, err)
					}
					if lim := 1e-8; nm > lim && !(mm && b.o.CoopMat && nm < 1e-6) {
						return fmt.Errorf("kernel for %s weights (f16 activations %v, %d columns, matmul %v) disagrees with the CPU: NMSE %.3g", f, f16, cols, mm, nm)
					}
					n++
				}
			}
		}
	}
	fmt.Printf("validated %d product kernels against the CPU reference\n", n)
	return nil
}

// streamFirst measures the streaming read, the yardstick of the model
// benchmarks, before they load anything, and gives the memory back.
func (b *bencher) streamFirst() (float64, error) {
	err := b.measureStream()
	b.arena.Free()
	return b.stream, err
}

func (b *bencher) measureStream() error {
	size := uint64(64 << 20)
	if !b.quick {
		size = min(uint64(2<<30), b.d.Caps.DeviceLocalBytes()/8)
	}
	a := b.arena
	defer a.Reset()
	x, err := a.Alloc("stream", size)
	if err != nil {
		return err
	}
	groups := 1024
	if b.d.Caps.Type == 4 {
		groups = 32
	}
	y, err := a.Alloc("sink", uint64(4*groups*256))
	if err != nil {
		return err
	}
	c, err := b.d.NewCmd()
	if err != nil {
		return err
	}
	defer c.Release()
	b.o.Fill(c, x.All(), 1, ^uint32(0), 0)
	// Warm up: an idle GPU runs at a low clock for its first milliseconds of work.
	for i := 0; i < 30; i++ {
		c.Barrier()
		b.o.StreamRead(c, x.All(), y.All(), groups)
	}
	if err := c.Submit(b.ctx); err != nil {
		return err
	}
	ns, err := b.timeReps(c, func(c *vk.Cmd) { b.o.StreamRead(c, x.All(), y.All(), groups) })
	if err != nil {
		return err
	}
	b.stream = float64(size) / ns * 1e9
	fmt.Printf("streaming read: %.0f GB/s (%.0f MiB buffer, median of %d)\n", b.stream/1e9, float64(size)/(1<<20), b.reps)
	return nil
}

// timeReps records one warm-up and b.reps timed repetitions separated by
// barriers and returns the median GPU time of one repetition in ns.
func (b *bencher) timeReps(c *vk.Cmd, rec func(c *vk.Cmd)) (float64, error) {
	rec(c)
	c.Barrier()
	c.Timestamp("start")
	for i := 0; i < b.reps; i++ {
		rec(c)
		c.Barrier()
		c.Timestamp("rep")
	}
	if err := c.Submit(b.ctx); err != nil {
		return 0, err
	}
	var ts []float64
	for _, t := range c.Timings() {
		ts = append(ts, t.NS)
	}
	if len(ts) == 0 {
		return 0, fmt.Errorf("the device gave no timestamps")
	}
	sort.Float64s(ts)
	return ts[len(ts)/2], nil
}

// time runs one case and prints its row; it returns the median time in ns.
func (b *bencher) time(bc benchCase) (float64, error) {
	a := b.arena
	defer a.Reset()
	c, err := b.d.NewCmd()
	if err != nil {
		return 0, err
	}
	defer c.Release()
	rec, err := bc.setup(a, c)
	if err != nil {
		return 0, err
	}
	if err := c.Submit(b.ctx); err != nil { // the setup's fills
		return 0, err
	}
	ns, err := b.timeReps(c, rec)
	if err != nil {
		return 0, err
	}
	if bc.per > 0 {
		ns /= float64(bc.per)
	}
	gbs, pct, tf := "", "", ""
	if bc.bytes > 0 {
		bw := bc.bytes / ns * 1e9
		gbs = fmt.Sprintf("%.1f", bw/1e9)
		pct = fmt.Sprintf("%.1f%%", 100*bw/b.stream)
	}
	if bc.flops > 0 {
		tf = fmt.Sprintf("%.3f", bc.flops/ns/1e3)
	}
	fmt.Printf(rowFmt, bc.name, bc.shape, fmt.Sprintf("%.1f", ns/1e3), gbs, pct, tf)
	return ns, nil
}

// fits reports whether n more bytes are a reasonable allocation on this device.
func (b *bencher) fits(n int64) error {
	if lim := int64(b.d.Caps.DeviceLocalBytes()) * 8 / 10; n > lim {
		return fmt.Errorf("needs %.1f GiB, device has %.1f GiB", float64(n)/(1<<30), float64(b.d.Caps.DeviceLocalBytes())/(1<<30))
	}
	return nil
}

func (b *bencher) randomAct(a *vk.Arena, c *vk.Cmd, name string, cols, k int, f16 bool) (ops.Act, error) {
	esz := 4
	mask, bits := uint32(0x807FFFFF), uint32(0x3F000000)
	if f16 {
		esz, mask, bits = 2, 0x83FF83FF, 0x38003800
	}
	buf, err := a.Alloc(name, uint64(esz*cols*k))
	if err != nil {
		return ops.Act{}, err
	}
	b.o.Fill(c, buf.All(), 99, mask, bits)
	return ops.Act{R: buf.All(), F16: f16, Cols: cols, K: k, Stride: k}, nil
}

func actName(f16 bool) string {
	if f16 {
		return "f16"
	}
	return "f32"
}

func (b *bencher) cases() []benchCase {
	K := 5120
	Ns := []int{5120, 8192, 25600, 131072, 282926}
	gm, gk, gn := 4096, 5120, 25600
	rows, T, H := 4096, 4096, 64
	if b.quick {
		K, Ns = 512, []int{512, 2048}
		gm, gk, gn = 128, 512, 1024
		rows, T, H = 64, 64, 8
	}
	cs := b.dispatchCases()
	formats := []quant.Format{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4}
	for _, f := range formats {
		for _, N := range Ns {
			for _, cols := range []int{1, 2} {
				cs = append(cs, b.matvecCase(f, N, K, cols, false))
			}
		}
		if !f.Blocked() {
			cs = append(cs, b.matvecCase(f, Ns[len(Ns)/2], K, 2, true))
		} else { // four columns: the pair's step with a forced token (gen.Options.OneByOne)
			cs = append(cs, b.matvecCase(f, Ns[len(Ns)/2], K, 4, false))
		}
		// The MLP down projection: K = 25600.
		cs = append(cs, b.matvecCase(f, K, gn, 2, false))
	}
	for _, f16 := range []bool{false, true} {
		f16 := f16
		cs = append(cs, benchCase{
			name: "quantize_q8_1_" + actName(f16), shape: fmt.Sprintf("K=%d cols=2", gn),
			bytes: float64(2*gn*(map[bool]int{false: 4, true: 2}[f16]) + 2*gn + 2*gn/32*8),
			setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
				x, err := b.randomAct(a, c, "x", 2, gn, f16)
				if err != nil {
					return nil, err
				}
				if x.Q, err = ops.NewQAct(a, "xq", 2, gn); err != nil {
					return nil, err
				}
				return func(c *vk.Cmd) { b.o.QuantizeAct(c, x) }, nil
			},
		})
	}
	for _, f := range formats {
		for _, f16 := range []bool{false, true} {
			f, f16 := f, f16
			cs = append(cs, benchCase{
				name:  fmt.Sprintf("matmul_%s_%s", f, actName(f16)),
				shape: fmt.Sprintf("M=%d N=%d K=%d", gm, gn, gk),
				flops: 2 * float64(gm) * float64(gn) * float64(gk),
				setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
					w, err := b.o.NewWeight(a, "w", f, gn, gk)
					if err != nil {
						return nil, err
					}
					b.o.RandomWeight(c, w, 2)
					x, err := b.randomAct(a, c, "x", gm, gk, f16)
					if err != nil {
						return nil, err
					}
					y, err := a.Alloc("y", uint64(4*gm*gn))
					if err != nil {
						return nil, err
					}
					return func(c *vk.Cmd) { b.o.MatMul(c, w, x, y.All(), gn) }, nil
				},
			})
		}
	}
	// filled is an f32 buffer of random values from al (an empty range after
	// al's first error).
	filled := func(al *vk.Allocs, c *vk.Cmd, name string, n int) vk.Range {
		r := al.F32(name, n)
		if al.Err == nil {
			b.o.Fill(c, r, 5, 0x807FFFFF, 0x3F000000)
		}
		return r
	}
	// elementwise is a case of op on two vectors of rows·K into a third.
	elementwise := func(name string, op func(c *vk.Cmd, x, y, out vk.Range, n int)) benchCase {
		return benchCase{name: name, shape: fmt.Sprintf("n=%d", rows*K), bytes: float64(12 * rows * K),
			setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
				al := &vk.Allocs{A: a}
				x, y, out := filled(al, c, "x", rows*K), filled(al, c, "y", rows*K), filled(al, c, "out", rows*K)
				return func(c *vk.Cmd) { op(c, x, y, out, rows*K) }, al.Err
			}}
	}
	cs = append(cs,
		benchCase{name: "rmsnorm_f32", shape: fmt.Sprintf("rows=%d D=%d", rows, K), bytes: float64(8 * rows * K),
			setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
				al := &vk.Allocs{A: a}
				x, w, y := filled(al, c, "x", rows*K), filled(al, c, "w", K), filled(al, c, "y", rows*K)
				return func(c *vk.Cmd) { b.o.RMSNorm(c, x, w, y, rows, K, 1e-6) }, al.Err
			}},
		benchCase{name: "rope_f32", shape: fmt.Sprintf("T=%d H=%d D=128", T, H), bytes: float64(8 * T * H * 128),
			setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
				al := &vk.Allocs{A: a}
				x, pos := filled(al, c, "x", T*H*128), al.F32("pos", T)
				if al.Err == nil {
					b.o.Fill(c, pos, 1, 0x7FFF, 0) // random positions below 32768
				}
				return func(c *vk.Cmd) { b.o.RoPE(c, x, pos, T, H, 128, 1e6) }, al.Err
			}},
		benchCase{name: "softmax_f32", shape: fmt.Sprintf("rows=%d N=%d", H, T), bytes: float64(8 * H * T),
			setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
				al := &vk.Allocs{A: a}
				x := filled(al, c, "x", H*T)
				return func(c *vk.Cmd) { b.o.Softmax(c, x, H, T, 0.088) }, al.Err
			}},
		elementwise("silu_mul_f32", b.o.SiluMul),
		elementwise("add_f32", b.o.Add),
	)
	if b.o.CoopMat {
		cs = append(cs, b.peakCases()...)
	}
	for _, f := range []quant.Format{quant.Q8_0, quant.Q4} {
		f := f
		cs = append(cs, benchCase{name: "quantize_" + f.String() + "_bf16", shape: fmt.Sprintf("N=%d K=%d", gn, gk),
			bytes: float64(2*gn*gk) + float64(f.Bytes(gn, gk)),
			setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
				src, err := a.Alloc("src", uint64(2*gn*gk))
				if err != nil {
					return nil, err
				}
				b.o.Fill(c, src.All(), 6, 0x807F807F, 0x3C003C00)
				w, err := b.o.NewWeight(a, "w", f, gn, gk)
				return func(c *vk.Cmd) { b.o.QuantizeWeight(c, src.All(), true, w) }, err
			}})
	}
	return cs
}

// peakCases time the tensor cores' rate through the GEMM tile's fragments
// (ops.CoopMatPeak): the multiplies alone, with shared-memory loads of X's
// fragments, W's (either layout) or both, with the tile loop's barriers too, and
// with a K step's fragments loaded together; on both workgroup sizes the GEMM
// uses, 16×8×16 products, 128 × 16 outputs a subgroup, and int8 16×16×32
// products where the device has them.
func (b *bencher) peakCases() []benchCase {
	groups, iters := 2048, 512
	if b.quick {
		groups, iters = 64, 64
	}
	var cs []benchCase
	for _, sh := range [][5]int{ // workgroup, mode, MA, NF, product columns
		{256, 0, 4, 2, 16}, {256, 1, 4, 2, 16}, {256, 2, 4, 2, 16}, {256, 10, 4, 2, 16}, {256, 3, 4, 2, 16}, {256, 7, 4, 2, 16}, {256, 23, 4, 2, 16},
		{512, 0, 4, 2, 16}, {512, 7, 4, 2, 16}, {512, 23, 4, 2, 16}, {256, 3, 4, 2, 8}, {256, 3, 8, 1, 16}, {256, 7, 8, 1, 16},
		{256, 0, 4, 2, 32}, {256, 3, 4, 2, 32}, {256, 7, 4, 2, 32}, {256, 23, 4, 2, 32}, {512, 0, 4, 2, 32}, {512, 7, 4, 2, 32}, // 32: int8 16×16×32
		{256, 34, 4, 2, 16}, {256, 35, 4, 2, 16}, {256, 39, 4, 2, 16}, {256, 55, 4, 2, 16}, {512, 39, 4, 2, 16}, {512, 55, 4, 2, 16},
		{256, 71, 4, 2, 16}, {512, 71, 4, 2, 16}, {256, 103, 4, 2, 16}, {256, 119, 4, 2, 16}, {512, 103, 4, 2, 16}, {512, 119, 4, 2, 16},
		{256, 163, 4, 2, 16}, {256, 167, 4, 2, 16}, {512, 167, 4, 2, 16}, {256, 131, 4, 2, 16}, {256, 135, 4, 2, 16}, {512, 135, 4, 2, 16},
		{256, 257, 4, 2, 16}, {256, 258, 4, 2, 16}, {256, 259, 4, 2, 16}, {256, 263, 4, 2, 16}, {512, 263, 4, 2, 16}, {256, 279, 4, 2, 16}, {512, 279, 4, 2, 16},
		{256, 259, 4, 4, 16}, {256, 263, 4, 4, 16}, {256, 259, 8, 1, 16}, {256, 263, 8, 1, 16},
		{256, 515, 4, 2, 16}, {256, 519, 4, 2, 16}, {512, 519, 4, 2, 16}, {256, 771, 4, 2, 16}, {256, 775, 4, 2, 16}, {512, 775, 4, 2, 16},
		{256, 583, 4, 2, 16}, {256, 839, 4, 2, 16}, {512, 839, 4, 2, 16}, {256, 327, 4, 2, 16},
		{256, 1799, 4, 2, 16}, {256, 2823, 4, 2, 16}, {512, 1799, 4, 2, 16}, {512, 2823, 4, 2, 16}, {256, 1543, 4, 2, 16}, {256, 2567, 4, 2, 16},
		{256, 1795, 4, 2, 16}, {256, 2819, 4, 2, 16}} {
		s := ops.PeakShape{WG: sh[0], Mode: sh[1], MA: sh[2], NF: sh[3], N8: sh[4] == 8, I8: sh[4] == 32}
		if !b.o.PeakRuns(s) {
			continue
		}
		cs = append(cs, benchCase{
			name:  "coopmat_peak",
			shape: fmt.Sprintf("wg%d %dx%d %s 16x%dx%d %s", s.WG, 16*s.MA, 16*s.NF, map[bool]string{false: "f16", true: "s8"}[s.I8], s.TileN(), s.K(), peakMode(s.Mode)),
			flops: s.PeakFLOPs(groups, iters),
			setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
				al := &vk.Allocs{A: a}
				y, w := al.F32("y", groups*s.PeakOutputs()), al.F32("w", s.PeakWBytes()/4)
				if al.Err == nil {
					b.o.Fill(c, w, 7, 0x03FF03FF, 0x1C001C00) // small halves (and int8 codes)
				}
				return func(c *vk.Cmd) { b.o.CoopMatPeak(c, y, w, s, groups, iters) }, al.Err
			},
		})
	}
	return cs
}

// peakMode names a CoopMatPeak mode: where its fragments come from, W's
// layout, and the barriers. Each name is given by the bits its mask selects
// being exactly want.
func peakMode(m int) string {
	names := []struct {
		mask, want int
		name       string
	}{
		{3, 0, "regs"}, {1, 1, "smem-x"}, {34, 2, "smem-w"}, {34, 34, "mem-w"}, {8, 8, "w[k][n]"},
		{16, 16, "paired"}, {128, 128, "w-ahead"}, {256, 256, "frag-order"}, {512, 512, "global-loads"}, {1024, 1024, "after-loads"}, {2048, 2048, "after-mma"}, {68, 4, "barriers"}, {68, 68, "shared-barriers"},
	}
	var parts []string
	for _, n := range names {
		if m&n.mask == n.want {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "+")
}

// tune times the mat-vec kernels on the decode step's shapes (the CFG pair:
// two columns of f32 activations, q8_1 for block weights) over workgroup size,
// rows per workgroup and (block weights) blocks per step, and prints the best
// of each (ops.DefaultMatVec comes from it). Each repetition reads another copy
// of the weights, so small matrices are not served from the L2 cache as they
// are not in a real step. --only picks cases by "FORMAT NxK" (e.g. "bf16 5120x").
func (b *bencher) tune() error {
	if err := b.measureStream(); err != nil {
		return err
	}
	shapes := [][2]int{{10240, 5120}, {5120, 8192}, {51200, 5120}, {5120, 25600}, {131072, 5120}} // qkv, o, gate|up, down, visual head
	if b.quick {
		shapes = [][2]int{{1024, 512}}
	}
	saved := b.o.MatVecShapes
	defer func() { b.o.MatVecShapes = saved }()
	fmt.Printf(rowFmt, "kernel", "shape wg×rows×bpt", "time µs", "GB/s", "% stream", "")
	for _, f := range []quant.Format{quant.Q4, quant.Q8_0, quant.BF16, quant.F16} {
		wgs, bpts := []uint32{32, 64, 128}, []uint32{1, 2, 4}
		if !f.Blocked() {
			wgs, bpts = []uint32{32, 64, 128, 256}, []uint32{1}
		}
		for _, sh := range shapes {
			if b.only != nil && !b.only.MatchString(fmt.Sprintf("%s %dx%d", f, sh[0], sh[1])) {
				continue
			}
			best, bestNS := "", math.Inf(1)
			for _, wg := range wgs {
				for _, rows := range []uint32{1, 2, 4, 8} {
					for _, bpt := range bpts {
						s := ops.MatVecShape{WG: wg, Rows: rows, BPT: bpt}
						if ops.FitMatVec(s, f, sh[1]) != s {
							continue // (runs as a narrower shape the sweep times too)
						}
						b.o.MatVecShapes[f] = ops.AllWidths(s)
						bc := b.matvecCase(f, sh[0], sh[1], 2, false)
						bc.shape = fmt.Sprintf("%d×%d %d×%d×%d", sh[0], sh[1], wg, rows, bpt)
						ns, err := b.time(bc)
						if err != nil {
							return err
						}
						if ns < bestNS {
							best, bestNS = bc.shape, ns
						}
					}
				}
			}
			fmt.Printf("best %s: %s (%.1f µs)\n", f, best, bestNS/1e3)
		}
	}
	return b.measureStream() // again: a drop means the device slowed down meanwhile
}

// oneOf sets *dst to flag name's value when it is given (not 0) and is one of
// the two it may be.
func oneOf(c *cli.Context, name string, dst *uint32, a, b int) error {
	switch v := c.Int(name); v {
	case 0:
	case a, b:
		*dst = uint32(v)
	default:
		return fmt.Errorf("--%s %d: want %d or %d", name, v, a, b)
	}
	return nil
}

// upTo sets *dst to flag name's value when it is given (not 0) and at most most.
func upTo(c *cli.Context, name string, dst *uint32, most int) error {
	switch v := c.Int(name); {
	case v < 0 || v > most:
		return fmt.Errorf("--%s %d: want 0 to %d", name, v, most)
	case v > 0:
		*dst = uint32(v)
	}
	return nil
}

// applyKnobs sets the A/B knobs given on the command line on o: the block
// mat-vec's shape (--qshape), the tensor-core matmul's K step and workgroup
// (--coop-bk, --coop-wg), the decode attention's early and later value loads
// (--attn-prefetch, --attn-values) and its query heads a workgroup
// (--attn-heads), the page touches' stride and place (--touch-stride,
// --touch-at) and the qkv head kernel's workgroup (--qkv-heads). Those not
// given keep ops.New's defaults.
func applyKnobs(c *cli.Context, o *ops.Ops) error {
	for _, name := range []string{"attn-prefetch", "attn-values", "touch-stride"} { // (opsKnobs; 0: the default)
		if v := c.Int(name); v != 0 {
			if err := setOpsKnob(o, name, v); err != nil {
				return fmt.Errorf("--%s %d: %w (0: the default)", name, v, err)
			}
		}
	}
	for _, name := range []string{"touch-at", "qkv-heads"} { // (opsKnobs whose 0 means something; -1: the default)
		if v := c.Int(name); v >= 0 {
			if err := setOpsKnob(o, name, v); err != nil {
				return fmt.Errorf("--%s %d: %w", name, v, err)
			}
		}
	}
	if err := oneOf(c, "coop-bk", &o.CoopBK, 32, 64); err != nil {
		return err
	}
	if err := oneOf(c, "coop-wg", &o.CoopWG, 256, 512); err != nil {
		return err
	}
	if o.CoopWG == 512 && !ops.WideTileFits(o.D.Caps) {
		return fmt.Errorf("--coop-wg 512 needs 512 invocations and 46 KiB of shared memory a workgroup; %s allows %d and %d bytes", o.D.Caps.Name, o.D.Caps.MaxInvocations, o.D.Caps.MaxSharedMemory)
	}
	switch v := c.String("touch"); v {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("--touch %q: want auto, on or off", v)
	}
	if err := upTo(c, "attn-heads", &o.DecodeHeads, 64); err != nil {
		return err
	}
	if v := c.Int("topk-wg"); v != 0 {
		if v < 32 || v > 1024 || v&(v-1) != 0 {
			return fmt.Errorf("--topk-wg %d: want a power of two from 32 to 1024", v)
		}
		o.TopKWG = uint32(v)
	}
	if v := c.String("qshape"); v != "" {
		sh, err := parseShape(v)
		if err != nil {
			return fmt.Errorf("--qshape %q: %w", v, err)
		}
		o.MatVecShapes[quant.Q8_0] = ops.AllWidths(sh)
		o.MatVecShapes[quant.Q4] = ops.AllWidths(sh)
	}
	// --qnarrow after --qshape: the q4 mat-vec's workgroup for narrow matrices.
	switch v := c.Int("qnarrow"); {
	case !c.IsSet("qnarrow"):
	case v <= 0 || v%32 != 0 || v > 1024:
		return fmt.Errorf("--qnarrow %d: want a multiple of 32 from 32 to 1024", v)
	default:
		o.MatVecShapes[quant.Q4][ops.Narrow].WG = uint32(v)
		o.MatVecShapes[quant.Q4][ops.Deep].WG = uint32(v)
	}
	for _, v := range c.StringSlice("mv") {
		if err := setShape(o, v); err != nil {
			return fmt.Errorf("--mv %q: %w", v, err)
		}
	}
	return nil
}

// parseShape reads a mat-vec shape WGxROWSxBPT.
func parseShape(v string) (ops.MatVecShape, error) {
	var s ops.MatVecShape
	if n, err := fmt.Sscanf(v, "%dx%dx%d", &s.WG, &s.Rows, &s.BPT); n != 3 || err != nil || s.WG%32 != 0 || s.WG == 0 || s.WG > 1024 || s.Rows == 0 || s.Rows > 16 || s.BPT == 0 || s.BPT > 8 {
		return s, fmt.Errorf("want WGxROWSxBPT, e.g. 32x2x1 (WG a multiple of 32 up to 1024, ROWS 1 to 16, BPT 1 to 8)")
	}
	return s, nil
}

// mvWidths are the matrix classes (ops.MatVecWidth) by the names --mv,
// --vary, autotune and the tuning file give them.
var mvWidths = []struct {
	name  string
	width ops.MatVecWidth
}{{"wide", ops.Wide}, {"narrow-short", ops.Narrow}, {"narrow-deep", ops.Deep}}

// setShape applies one --mv: FORMAT[:WIDTH]=WGxROWSxBPT, WIDTH one of wide,
// narrow (narrow-short and narrow-deep both), narrow-short or narrow-deep
// (ops.MatVecWidth); none sets every width.
func setShape(o *ops.Ops, v string) error {
	key, shape, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want FORMAT[:wide|:narrow|:narrow-short|:narrow-deep]=WGxROWSxBPT")
	}
	name, width, _ := strings.Cut(key, ":")
	f, err := quant.Parse(name)
	if err != nil {
		return err
	}
	sh, err := parseShape(shape)
	if err != nil {
		return err
	}
	byName := map[string][]ops.MatVecWidth{"": {ops.Wide, ops.Narrow, ops.Deep}, "narrow": {ops.Narrow, ops.Deep}}
	for _, w := range mvWidths {
		byName[w.name] = []ops.MatVecWidth{w.width}
	}
	widths := byName[width]
	if widths == nil {
		return fmt.Errorf("width %q: want wide, narrow, narrow-short or narrow-deep", width)
	}
	for _, w := range widths {
		o.MatVecShapes[f][w] = sh
	}
	return nil
}

// applyModelKnobs applies the knobs that depend on the loaded model: --touch
// (applyKnobs has checked it) sets m.TouchWeights, and --attn-heads must divide
// the model's query heads per KV head.
func applyModelKnobs(c *cli.Context, m *lm.Model) error {
	if v := c.String("touch"); v != "auto" {
		m.TouchWeights = v == "on"
	}
	h := c.Int("attn-heads")
	if err := checkAttnHeads(m, h); err != nil {
		return fmt.Errorf("--attn-heads %d: %w", h, err)
	}
	return nil
}

func (b *bencher) matvecCase(f quant.Format, N, K, cols int, f16 bool) benchCase {
	act := actName(f16)
	if f.Blocked() {
		act = "q8_1"
	}
	return benchCase{
		name:  fmt.Sprintf("matvec_%s_%s", f, act),
		shape: fmt.Sprintf("N=%d K=%d cols=%d", N, K, cols),
		bytes: float64(f.Bytes(N, K)) + float64(4*cols*N),
		setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
			if err := b.fits(f.Bytes(N, K)); err != nil {
				return nil, err
			}
			// Enough copies of the weights that the repetitions together
			// overflow the L2 cache, as a decode step's weights do.
			copies := int(min(8, 1+(256<<20)/f.Bytes(N, K)))
			if err := b.fits(int64(copies) * f.Bytes(N, K)); err != nil {
				copies = 1
			}
			ws := make([]*ops.Weight, copies)
			for i := range ws {
				w, err := b.o.NewWeight(a, fmt.Sprint("w", i), f, N, K)
				if err != nil {
					return nil, err
				}
				b.o.RandomWeight(c, w, uint32(1+i))
				ws[i] = w
			}
			x, err := b.randomAct(a, c, "x", cols, K, f16)
			if err != nil {
				return nil, err
			}
			y, err := a.Alloc("y", uint64(4*cols*N))
			if err != nil {
				return nil, err
			}
			if f.Blocked() {
				if x.Q, err = ops.NewQAct(a, "xq", cols, K); err != nil {
					return nil, err
				}
				c.Barrier()
				b.o.QuantizeAct(c, x)
			}
			rep := 0
			return func(c *vk.Cmd) {
				b.o.MatVec(c, ws[rep%copies], x, y.All(), N)
				rep++
			}, nil
		},
	}
}

// dispatchChain is how many dispatches a dispatch_chain case records.
const dispatchChain = 256

// dispatchCases time what a dispatch costs with no work in it: chains of
// dispatchChain tiny stream reads (one 16-byte load an invocation, 256
// invocations a workgroup), each after a pipeline barrier (dependent, as a
// decode step's stages are) or with none between them. The row is the time of
// one dispatch: with barriers, the floor of a dependent stage's boundary on
// this device and driver, which no kernel change can lower.
func (b *bencher) dispatchCases() []benchCase {
	groups := []int{1, 132, 1056}
	if sm := int(b.d.Caps.SMCount); sm > 0 {
		groups = []int{1, sm, 8 * sm}
	}
	var cs []benchCase
	for _, g := range groups {
		for _, dep := range []bool{true, false} {
			what := "barriers"
			if !dep {
				what = "no barriers"
			}
			cs = append(cs, benchCase{name: "dispatch_chain", shape: fmt.Sprintf("%d wg, %s", g, what), per: dispatchChain,
				setup: func(a *vk.Arena, c *vk.Cmd) (func(c *vk.Cmd), error) {
					x, err := a.Alloc("x", uint64(g*256*16))
					if err != nil {
						return nil, err
					}
					y, err := a.Alloc("y", uint64(g*256*4)) // a word a subgroup, which may be one invocation (as measureStream's sink)
					if err != nil {
						return nil, err
					}
					b.o.Fill(c, x.All(), 3, ^uint32(0), 0)
					return func(c *vk.Cmd) {
						for i := 0; i < dispatchChain; i++ {
							if dep && i > 0 {
								c.Barrier()
							}
							b.o.StreamRead(c, x.All(), y.All(), g)
						}
					}, nil
				}})
		}
	}
	return cs
}
