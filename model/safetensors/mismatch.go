package safetensors

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Mismatch collects how a checkpoint differs from what its config needs.
type Mismatch struct {
	Missing, Shape, DType, Extra []string
}

// Err is nil when nothing differs, else one error listing every difference
// (up to eight names per kind) under title.
func (m *Mismatch) Err(title string) error {
	if len(m.Missing)+len(m.Shape)+len(m.DType)+len(m.Extra) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(title)
	for _, l := range []struct {
		what  string
		names []string
	}{{"missing", m.Missing}, {"wrong shape", m.Shape}, {"unsupported dtype (want BF16, F16 or F32)", m.DType}, {"unexpected", m.Extra}} {
		if len(l.names) == 0 {
			continue
		}
		sort.Strings(l.names)
		fmt.Fprintf(&b, "\n  %s (%d):", l.what, len(l.names))
		for i, n := range l.names {
			if i == 8 {
				fmt.Fprintf(&b, "\n    ... and %d more", len(l.names)-8)
				break
			}
			b.WriteString("\n    " + n)
		}
	}
	return errors.New(b.String())
}
