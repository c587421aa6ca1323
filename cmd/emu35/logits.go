package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/model/lm"
	"github.com/emu35/emu35/model/safetensors"
)

func logitsCmd() *cli.Command {
	return &cli.Command{
		Name:  "logits",
		Usage: "run token ids through the language model and write float32 logits to a safetensors file",
		Flags: []cli.Flag{
			deviceFlag, modelFlag, weightsFlag, kvFlag, tuningFlag,
			&cli.StringFlag{Name: "ids", Required: true, Usage: "prompt token ids, comma-separated: one batched prefill, logits at every position (prefill_logits)"},
			&cli.StringFlag{Name: "step-ids", Usage: "token ids fed one at a time through the KV cache afterwards (decode_logits)"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output .safetensors file"},
		},
		Action: func(c *cli.Context) error {
			ids, err := parseIDs("ids", c.String("ids"))
			if err != nil {
				return err
			}
			steps, err := parseIDs("step-ids", c.String("step-ids"))
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				return fmt.Errorf("--ids is empty")
			}
			d, err := openDevice(c)
			if err != nil {
				return err
			}
			defer d.Close()
			m, err := openModel(c, d, 1<<30)
			if err != nil {
				return err
			}
			defer m.Close()
			V := m.Cfg.VocabSize
			s, err := m.NewSession(1, len(ids)+len(steps), min(len(ids), 2048))
			if err != nil {
				return err
			}
			defer s.Close()
			r, err := s.Forward(c.Context, lm.Request{Inputs: []lm.Input{{Seq: 0, Tokens: ids}}, Logits: lm.LogitsAll})
			if err != nil {
				return err
			}
			out := []*safetensors.Tensor{safetensors.F32Tensor("prefill_logits", []int{len(ids), V}, flat(r.Logits[0]))}
			var dec [][]float32
			for _, id := range steps {
				r, err := s.Forward(c.Context, lm.Request{Inputs: []lm.Input{{Seq: 0, Tokens: []int32{id}}}})
				if err != nil {
					return err
				}
				dec = append(dec, r.Logits[0][0])
			}
			if len(steps) > 0 {
				out = append(out, safetensors.F32Tensor("decode_logits", []int{len(steps), V}, flat(dec)))
			}
			return safetensors.Write(c.String("out"), out)
		},
	}
}

func flat(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}
