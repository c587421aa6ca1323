package main

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"google.golang.org/protobuf/proto"

	"github.com/emu35/emu35/model/gen"
	"github.com/emu35/emu35/model/gen/storypb"
	"github.com/emu35/emu35/viewer"
	"github.com/emu35/emu35/vk"
)

func viewCmd() *cli.Command {
	return &cli.Command{
		Name:        "view",
		Usage:       "render a Story .pb (emu35's or the reference's) to PNGs and a Markdown page",
		ArgsUsage:   "FILE.pb",
		Description: "With --out, writes PNGs, text files and story.md. Without it, opens a window to browse the\nimages (←/→, s saves, Esc quits); with no display, use --out.",
		Flags: []cli.Flag{&cli.StringFlag{Name: "out", Usage: "render to this directory instead of opening a window"},
			&cli.Float64Flag{Name: "view-hold", Usage: "close the window after this many seconds (0: when you close it)"}, deviceFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("give one .pb file")
			}
			in := c.Args().First()
			b, err := os.ReadFile(in)
			if err != nil {
				return err
			}
			var st storypb.Story
			if err := proto.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("%s is not a Story protobuf: %w", in, err)
			}
			if out := c.String("out"); out != "" {
				return renderStory(&st, out)
			}
			return browseStory(c, &st, filepath.Dir(in))
		},
	}
}

// renderStory writes the vis_proto layout (§7.3): question, reference images,
// then per segment its text, images and chains of thought, plus story.md.
func renderStory(st *storypb.Story, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "**Question:** %s\n\n", st.Question)
	if err := gen.WriteFile(filepath.Join(out, "000_question.txt"), []byte(st.Question+"\n")); err != nil {
		return err
	}
	if strings.TrimSpace(st.Summary) != "" {
		gen.WriteFile(filepath.Join(out, "000_global_cot.txt"), []byte(st.Summary+"\n"))
		fmt.Fprintf(&md, "> (global chain of thought) %s\n\n", st.Summary)
	}
	img := func(name string, m *storypb.ImageMeta) error {
		if m.GetImage() == nil || len(m.GetImage().GetImageData()) == 0 {
			return nil
		}
		if err := gen.WriteFile(filepath.Join(out, name), m.GetImage().GetImageData()); err != nil {
			return err
		}
		fmt.Fprintf(&md, "![%s](%s)\n\n", name, name)
		return nil
	}
	for i, r := range st.ReferenceImages {
		if err := img(fmt.Sprintf("%03d_reference_image.png", i), r); err != nil {
			return err
		}
	}
	idx := max(1, len(st.ReferenceImages))
	for _, clip := range st.Clips {
		for _, seg := range clip.Segments {
			if strings.TrimSpace(seg.Asr) != "" {
				gen.WriteFile(filepath.Join(out, fmt.Sprintf("%03d_text.txt", idx)), []byte(seg.Asr+"\n"))
				md.WriteString(seg.Asr + "\n\n")
			}
			for k, m := range seg.Images {
				if cot := strings.TrimSpace(m.ChainOfThought); cot != "" {
					gen.WriteFile(filepath.Join(out, fmt.Sprintf("%03d_%02d_image_cot.txt", idx, k)), []byte(cot+"\n"))
					fmt.Fprintf(&md, "> (image chain of thought) %s\n\n", cot)
				}
				if err := img(fmt.Sprintf("%03d_%02d_image.png", idx, k), m); err != nil {
					return err
				}
			}
			idx++
		}
	}
	return gen.WriteFile(filepath.Join(out, "story.md"), []byte(md.String()))
}

// browseStory opens the window on a story's images.
func browseStory(c *cli.Context, st *storypb.Story, dir string) error {
	exts, err := viewer.Init()
	if err != nil {
		return fmt.Errorf("%w (to render files instead, pass --out DIR)", err)
	}
	o := vk.DefaultOptions()
	o.Device = c.Int("device")
	o.InstanceExtensions, o.DeviceExtensions = exts, viewer.DeviceExtensions
	d, err := vk.Open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	b := &browser{out: dir}
	add := func(m *storypb.ImageMeta, caption string) {
		data := m.GetImage().GetImageData()
		if len(data) == 0 {
			return
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		rgba := image.NewRGBA(img.Bounds())
		draw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, draw.Src)
		b.pages = append(b.pages, page{img: rgba, fullW: rgba.Bounds().Dx(), fullH: rgba.Bounds().Dy(), caption: caption})
	}
	for _, r := range st.ReferenceImages {
		add(r, "reference image")
	}
	for _, clip := range st.Clips {
		for _, seg := range clip.Segments {
			for _, m := range seg.Images {
				add(m, strings.TrimSpace(seg.Asr))
			}
		}
	}
	if len(b.pages) == 0 {
		return fmt.Errorf("the story has no images (use --out to render its text)")
	}
	w, h := b.pages[0].fullW, b.pages[0].fullH
	for w > 1024 || h > 1024 {
		w, h = w/2, h/2
	}
	win, err := viewer.Open(d, "emu35", max(w, 256), max(h, 256))
	if err != nil {
		return err
	}
	defer win.Close()
	b.win = win
	hold := time.Duration(c.Float64("view-hold") * float64(time.Second))
	start := time.Now()
	for hold == 0 || time.Since(start) < hold {
		keys, closed := win.Poll()
		if closed || b.handle(keys, nil) {
			return nil
		}
		p := b.pages[b.cur]
		title := fmt.Sprintf("emu35 · %s · image %d/%d", st.Question, b.cur+1, len(b.pages))
		if p.caption != "" {
			title += " · " + p.caption
		}
		win.SetTitle(title)
		if err := win.Show(p.img, p.fullW, p.fullH); err != nil {
			return err
		}
		time.Sleep(30 * time.Millisecond)
	}
	return nil
}
