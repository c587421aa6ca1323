package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/tokenizer"
)

var tokenizerFlag = &cli.StringFlag{Name: "tokenizer", Usage: "directory with emu3.tiktoken and emu3_vision_tokens.txt (default: the --model directory)"}

func tokenizeCmd() *cli.Command {
	return &cli.Command{
		Name:  "tokenize",
		Usage: "encode text to token ids (a JSON array), or --decode ids to text",
		Flags: []cli.Flag{tokenizerFlag,
			&cli.StringFlag{Name: "text", Usage: "text to encode (special tokens such as <|extra_203|> are recognised)"},
			&cli.StringFlag{Name: "decode", Usage: "ids to decode, comma-separated"}},
		Action: func(c *cli.Context) error {
			dir := c.String("tokenizer")
			if dir == "" {
				return fmt.Errorf("--tokenizer DIR is required")
			}
			tk, err := tokenizer.Load(dir)
			if err != nil {
				return err
			}
			if s := c.String("decode"); s != "" {
				ids, err := parseIDs("decode", s)
				if err != nil {
					return err
				}
				txt, err := tk.Decode(ids)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, txt)
				return nil
			}
			ids := tk.Encode(c.String("text"))
			if ids == nil {
				ids = []int32{}
			}
			b, _ := json.Marshal(ids)
			fmt.Fprintln(c.App.Writer, string(b))
			return nil
		},
	}
}
