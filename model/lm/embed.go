package lm

import (
	"math"
	"runtime"
	"sync"

	"github.com/emu35/emu35/model/safetensors"
)

// The token embedding stays in host memory: a step needs one row of it per
// token, so the [V, H] table (1.4 GiB at q8_0, 2.7 GiB at bf16 for Emu3.5)
// takes no device memory, and its rows are the checkpoint's exact values in
// every weight format. The rows of a pass are written into the residual
// stream (uploaded, or for a replayed decode step copied from mapped memory).

// embedder writes the embedding rows of ids into dst [len(ids), H].
type embedder interface {
	rows(ids []int32, dst []float32)
}

// embedRowsPar is e.rows spread over the CPUs in runs of embedRun rows: a
// prefill of an image prompt looks up 8,192 rows of 5,120 values, which one
// core converts (bf16) or computes (synthetic) in a noticeable share of the
// prefill (BenchmarkEmbedRows).
func embedRowsPar(e embedder, ids []int32, dst []float32) {
	if len(ids) <= embedRun {
		e.rows(ids, dst)
		return
	}
	h := len(dst) / len(ids)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), (len(ids)+embedRun-1)/embedRun) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := min(i+embedRun, len(ids))
				e.rows(ids[i:j], dst[i*h:j*h])
			}
		}()
	}
	for i := 0; i < len(ids); i += embedRun {
		next <- i
	}
	close(next)
	wg.Wait()
}

const embedRun = 256

// tensorEmbed reads rows of a checkpoint tensor [V, H] (BF16, F16 or F32,
// memory-mapped: only the rows used are read from disk).
type tensorEmbed struct {
	t *safetensors.Tensor
	h int
}

func (e tensorEmbed) rows(ids []int32, dst []float32) {
	for i, id := range ids {
		_ = e.t.RowF32(int(id), dst[i*e.h:(i+1)*e.h]) // no error: CheckTensors admitted only float dtypes
	}
}

// bf16 is the table's bytes when the checkpoint stores it in bf16 (a draw
// table copies them as they are: drawTable).
func (e tensorEmbed) bf16() []byte {
	if e.t.DType != "BF16" {
		return nil
	}
	return e.t.Data
}

// syntheticEmbed computes each row from its id and the seed: values ±(1 +
// u)·2⁻⁷, the range of the GPU's random bf16 weights (vk/ops.RandomWeight).
// Each value is a splitmix64 hash of (seed, id, column), with no chain from one
// value to the next, so a decode step's two rows take microseconds (a chained
// xorshift took 26 µs a row, a share of the step's host time that a
// checkpoint's rows, read from memory, do not have).
type syntheticEmbed struct {
	seed uint64
	h    int
}

func (e syntheticEmbed) rows(ids []int32, dst []float32) {
	for i, id := range ids {
		base := e.seed*0x9E3779B97F4A7C15 ^ uint64(id)*0xD1B54A32D192ED03
		row := dst[i*e.h : (i+1)*e.h]
		for j := range row {
			z := base + uint64(j+1)*0x9E3779B97F4A7C15
			z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
			z = (z ^ z>>27) * 0x94D049BB133111EB
			z ^= z >> 31
			// Exponent 2⁻⁷, 23 bits of mantissa from the top, the sign from bit 0.
			row[j] = math.Float32frombits(uint32(z&1)<<31 | 0x3C000000 | uint32(z>>41))
		}
	}
}
