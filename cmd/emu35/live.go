package main

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emu35/emu35/model/gen"
	tk "github.com/emu35/emu35/model/tokenizer"
	"github.com/emu35/emu35/viewer"
	"github.com/emu35/emu35/vq"
)

// page is one image the window can show.
type page struct {
	img          *image.RGBA
	fullW, fullH int
	caption      string
}

// browser is the window state shared by live generation and emu35 view.
type browser struct {
	win   *viewer.Window
	pages []page
	cur   int // index into pages; len(pages) means the live image
	saved int
	out   string
}

// handle applies keys; it returns true when the user asked to quit.
func (b *browser) handle(keys []viewer.Key, live *page) bool {
	for _, k := range keys {
		switch k {
		case viewer.KeyLeft:
			b.cur = max(0, b.cur-1)
		case viewer.KeyRight:
			last := len(b.pages) - 1
			if live != nil {
				last++
			}
			b.cur = min(last, b.cur+1)
		case viewer.KeySave:
			p := b.current(live)
			if p != nil && p.img != nil {
				b.saved++
				path := filepath.Join(b.out, fmt.Sprintf("view_%02d.png", b.saved))
				if f, err := os.Create(path); err == nil {
					png.Encode(f, p.img)
					f.Close()
					fmt.Fprintf(os.Stderr, "\nsaved %s\n", path)
				}
			}
		case viewer.KeyQuit:
			return true
		}
	}
	return false
}

func (b *browser) current(live *page) *page {
	if b.cur < len(b.pages) {
		return &b.pages[b.cur]
	}
	return live
}

// liveImage follows the generated ids: the current image's grid and finished rows.
type liveImage struct {
	mu    sync.Mutex
	ids   []int32
	ev    gen.Event
	start time.Time
}

func (l *liveImage) on(e gen.Event) {
	l.mu.Lock()
	l.ids = append(l.ids, e.Token)
	l.ev = e
	l.mu.Unlock()
}

// recentText is the text of the last few generated tokens outside images.
func (l *liveImage) recentText(t *tk.Tokenizer) string {
	l.mu.Lock()
	var ids []int32
	for i := len(l.ids) - 1; i >= 0 && len(ids) < 24; i-- {
		if id := l.ids[i]; id < tk.PAD {
			ids = append([]int32{id}, ids...)
		} else if id == tk.EOI {
			break
		}
	}
	l.mu.Unlock()
	s, _ := t.Decode(ids)
	return strings.Join(strings.Fields(s), " ")
}

// rows returns the last image's finished rows (codes) and its width and grid.
func (l *liveImage) rows() (codes []int32, rows, w, h, n int, inImage bool, ev gen.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := -1
	for i := len(l.ids) - 1; i >= 0; i-- {
		if l.ids[i] == tk.BOI {
			start = i
			break
		}
	}
	ev = l.ev
	if start < 0 {
		return nil, 0, 0, 0, len(l.ids), false, ev
	}
	var row []int32
	for _, id := range l.ids[start+1:] {
		switch {
		case id >= tk.BOV:
			row = append(row, id-tk.BOV)
		case id == tk.EOL || id == tk.EOI:
			if len(row) > 0 && (w == 0 || len(row) == w) {
				w = len(row)
				codes = append(codes, row...)
				rows++
			}
			row = nil
		}
	}
	return codes, rows, w, ev.H, len(l.ids), ev.InImage, ev
}

// runLive generates with the window open: generation on a goroutine, the window
// on this (locked) thread, previews decoded on a third goroutine at most every
// 0.3 s so they never hold up the token loop. It returns after generation when
// the window is closed, Esc is pressed or hold passes.
func runLive(ctx context.Context, s *genSetup, win *viewer.Window, task string, hold time.Duration, work func(ctx context.Context, on func(gen.Event)) error, out string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	li := &liveImage{start: time.Now()}
	done := make(chan error, 1)
	go func() { done <- work(ctx, li.on) }()

	type req struct {
		codes   []int32
		rows, w int
		full    bool
	}
	type res struct {
		img  *image.RGBA
		rows int
		took time.Duration
		full bool  // a finished image: it joins the pages
		err  error // the decode failed (out of device memory beside the LM, say): generation goes on
	}
	reqs, results := make(chan req, 1), make(chan res, 1)
	go func() {
		for r := range reqs {
			t0 := time.Now()
			px, err := s.vq.Decode(context.Background(), r.codes, r.rows, r.w)
			if err != nil {
				results <- res{took: time.Since(t0), err: err}
				continue
			}
			f := s.vq.Cfg.Factor()
			results <- res{img: vq.FromPixels(px, f*r.w, f*r.rows), rows: r.rows, took: time.Since(t0), full: r.full}
		}
	}()
	defer close(reqs)
	b := &browser{win: win, out: out}
	keep := func(img *image.RGBA) { // a finished image stays reachable with ←
		follow := b.cur == len(b.pages)
		b.pages = append(b.pages, page{img: img, fullW: img.Bounds().Dx(), fullH: img.Bounds().Dy()})
		if follow {
			b.cur = len(b.pages)
		}
	}
	var live page
	f := s.vq.Cfg.Factor()
	busy, shownRows, lastImg := false, -1, -1
	// nextPreview bounds the preview rate: at least 0.3 s apart, and at least
	// four times the last decode's duration, so previews take at most about a
	// fifth of the device (lavapipe decodes slowly; a GPU in milliseconds).
	var nextPreview time.Time
	var previews int
	var previewTime time.Duration
	var previewErr error
	accept := func(r res) { // a decoded preview arrived
		busy = false
		nextPreview = time.Now().Add(max(300*time.Millisecond, 4*r.took))
		if r.err != nil && previewErr == nil { // said once; later previews still try
			previewErr = r.err
			fmt.Fprintf(os.Stderr, "viewer: a preview could not be decoded (generation goes on; the image is decoded at the end): %v\n", r.err)
		}
		if r.img != nil {
			live.img, shownRows = r.img, r.rows
			previews++
			previewTime += r.took
			if r.full {
				keep(r.img)
			}
		}
	}
	var genErr error
	finished := false
	var holdUntil time.Time
	for {
		keys, closed := win.Poll()
		if closed || b.handle(keys, &live) {
			cancel() // Esc or close: stop generation cleanly, outputs are still written
			if finished {
				break
			}
		}
		select {
		case r := <-results:
			accept(r)
		default:
		}
		codes, rows, w, h, n, inImage, ev := li.rows()
		if w > 0 && h > 0 {
			live.fullW, live.fullH = f*w, f*h
		}
		if inImage && rows > 0 && rows != shownRows && !busy && time.Now().After(nextPreview) {
			busy = true
			reqs <- req{codes, rows, w, false}
		}
		if !inImage && lastImg != n && rows > 0 && rows == h && rows != shownRows && !busy {
			busy = true
			reqs <- req{codes, rows, w, true} // the finished image
			lastImg = n
		}
		rate := float64(n) / time.Since(li.start).Seconds()
		title := fmt.Sprintf("emu35 · %s · token %d · %.1f tok/s", task, n, rate)
		if inImage && h > 0 {
			title += fmt.Sprintf(" · row %d/%d", ev.RowsDone, h)
		} else if txt := li.recentText(s.tk); txt != "" {
			title += " · “" + txt + "”"
		}
		if b.cur < len(b.pages) {
			title += fmt.Sprintf(" · image %d/%d (→ for the live one)", b.cur+1, len(b.pages))
		}
		if finished {
			title = fmt.Sprintf("emu35 · %s · done: %d tokens · ←/→ images, s save, Esc quit", task, n)
		}
		win.SetTitle(title)
		if p := b.current(&live); p != nil && p.fullW > 0 {
			if err := win.Show(p.img, p.fullW, p.fullH); err != nil {
				return err
			}
		}
		if !finished {
			select {
			case genErr = <-done:
				finished = true
				holdUntil = time.Now().Add(hold)
				// Wait for the last preview so the final image is on screen.
				if busy {
					accept(<-results)
				}
				if codes, rows, w, h, _, _, _ := li.rows(); rows > 0 && rows == h && rows != shownRows {
					px, err := s.vq.Decode(context.Background(), codes, rows, w)
					if err == nil {
						live.img = vq.FromPixels(px, f*w, f*rows)
						keep(live.img)
					}
				}
				elapsed := time.Since(li.start)
				fmt.Fprintf(os.Stderr, "viewer: %d preview decodes, %.1f ms each, %.1f%% of the %.1f s run\n",
					previews, float64(previewTime.Milliseconds())/float64(max(1, previews)), 100*previewTime.Seconds()/elapsed.Seconds(), elapsed.Seconds())
				continue
			default:
			}
		} else if hold > 0 && time.Now().After(holdUntil) {
			break
		}
		time.Sleep(16 * time.Millisecond)
	}
	return genErr
}
