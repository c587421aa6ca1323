package vk

import "sort"

// OpTime is the GPU time one kind of op took over a profiled run: the
// intervals of Timings that carry its label, summed.
type OpTime struct {
	Op    string
	Count int
	NS    float64
}

// AddTimings adds each interval of ts to its label's total in acc.
func AddTimings(acc map[string]*OpTime, ts []Timing) {
	for _, t := range ts {
		a := acc[t.Label]
		if a == nil {
			a = &OpTime{Op: t.Label}
			acc[t.Label] = a
		}
		a.Count++
		a.NS += t.NS
	}
}

// SortedTimes lists acc's totals, largest first.
func SortedTimes(acc map[string]*OpTime) []OpTime {
	var out []OpTime
	for _, a := range acc {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NS > out[j].NS })
	return out
}
