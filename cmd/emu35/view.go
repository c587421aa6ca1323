package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"google.golang.org/protobuf/proto"

	"github.com/emu35/emu35/model/gen"
	"github.com/emu35/emu35/model/gen/storypb"
)

func viewCmd() *cli.Command {
	return &cli.Command{
		Name:      "view",
		Usage:     "render a Story .pb (emu35's or the reference's) to PNGs and a Markdown page",
		ArgsUsage: "FILE.pb",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "out", Usage: "output directory (default: FILE without .pb)"}},
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
			out := c.String("out")
			if out == "" {
				out = strings.TrimSuffix(in, filepath.Ext(in))
			}
			return renderStory(&st, out)
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
