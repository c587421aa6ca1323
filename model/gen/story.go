package gen

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/emu35/emu35/model/gen/storypb"
)

// Decoded is a parsed item with its image decoded.
type Decoded struct {
	Item
	Image image.Image
}

// Story builds the reference's Story message (§7.2) for a question, its
// reference images and the parsed, decoded output.
func Story(question string, refs []image.Image, items []Decoded) (*storypb.Story, error) {
	st := &storypb.Story{Question: question}
	for _, r := range refs {
		im, err := pbImage(r)
		if err != nil {
			return nil, err
		}
		st.ReferenceImages = append(st.ReferenceImages, &storypb.ImageMeta{Image: im})
	}
	lastClip := func() *storypb.Clip {
		if len(st.Clips) == 0 {
			st.Clips = append(st.Clips, &storypb.Clip{ClipId: fmt.Sprintf("clip_%04d", 0), Segments: []*storypb.Segment{{}}})
		}
		return st.Clips[len(st.Clips)-1]
	}
	for _, it := range items {
		switch it.Kind {
		case "global_cot":
			st.Summary = it.Text
		case "text":
			st.Clips = append(st.Clips, &storypb.Clip{ClipId: fmt.Sprintf("clip_%04d", len(st.Clips)),
				Segments: []*storypb.Segment{{Asr: it.Text}}})
		case "image_cot":
			seg := lastClip().Segments[0]
			seg.Images = append(seg.Images, &storypb.ImageMeta{ChainOfThought: it.Text})
		case "image":
			im, err := pbImage(it.Image)
			if err != nil {
				return nil, err
			}
			seg := lastClip().Segments[0]
			if n := len(seg.Images); n > 0 && seg.Images[n-1].Image == nil {
				seg.Images[n-1].Image = im // fills a pending chain-of-thought entry
			} else {
				seg.Images = append(seg.Images, &storypb.ImageMeta{Image: im})
			}
		}
	}
	if len(st.Clips) == 0 {
		st.Clips = []*storypb.Clip{{ClipId: "clip_0000", Segments: []*storypb.Segment{{}}}}
	}
	seg := st.Clips[len(st.Clips)-1].Segments[0]
	if n := len(seg.Images); n > 0 && seg.Images[n-1].Image == nil {
		seg.Images = seg.Images[:n-1] // a trailing chain of thought without its image
	}
	return st, nil
}

func pbImage(img image.Image) (*storypb.Image, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return &storypb.Image{Width: int32(img.Bounds().Dx()), Height: int32(img.Bounds().Dy()),
		Format: storypb.ImageFormat_PNG, ImageData: b.Bytes()}, nil
}

// WriteFile writes b to path atomically.
func WriteFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Save writes a result directory: image_NN.png for each image, text.md with the
// text, chains of thought and image links in order, and story.pb.
func Save(dir, question string, refs []image.Image, items []Decoded) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "**Question:** %s\n\n", question)
	n := 0
	for _, it := range items {
		switch it.Kind {
		case "text":
			md.WriteString(it.Text + "\n\n")
		case "global_cot", "image_cot":
			fmt.Fprintf(&md, "> (%s) %s\n\n", strings.ReplaceAll(it.Kind, "_", " "), it.Text)
		case "image":
			n++
			name := fmt.Sprintf("image_%02d.png", n)
			var b bytes.Buffer
			if err := png.Encode(&b, it.Image); err != nil {
				return err
			}
			if err := WriteFile(filepath.Join(dir, name), b.Bytes()); err != nil {
				return err
			}
			note := ""
			if it.Partial {
				note = " (partial: generation stopped inside this image)"
			}
			fmt.Fprintf(&md, "![image %d](%s)%s\n\n", n, name, note)
		}
	}
	if err := WriteFile(filepath.Join(dir, "text.md"), []byte(md.String())); err != nil {
		return err
	}
	st, err := Story(question, refs, items)
	if err != nil {
		return err
	}
	b, err := proto.Marshal(st)
	if err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, "story.pb"), b)
}
