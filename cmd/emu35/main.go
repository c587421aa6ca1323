// Command emu35 runs BAAI's Emu3.5 on Vulkan. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/vk"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "emu35:", err)
		if errors.Is(err, vk.ErrNoVulkan) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

func app() *cli.App {
	return &cli.App{
		Name:  "emu35",
		Usage: "run BAAI's Emu3.5 on any Vulkan GPU",
		Commands: []*cli.Command{
			devicesCmd(),
			benchCmd(),
			logitsCmd(),
			vqCmd(),
			tokenizeCmd(),
			genCmd(),
			viewCmd(),
		},
	}
}

var deviceFlag = &cli.IntFlag{Name: "device", Value: -1, Usage: "Vulkan device index from `emu35 devices` (default: best; also EMU35_DEVICE)"}

func openDevice(c *cli.Context) (*vk.Device, error) {
	o := vk.DefaultOptions()
	o.Device = c.Int("device")
	o.PipelineStats = c.Bool("stats")
	return vk.Open(o)
}
