package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/emu35/emu35/vk"
)

func devicesCmd() *cli.Command {
	return &cli.Command{
		Name:  "devices",
		Usage: "list Vulkan devices and the capabilities emu35 uses",
		Action: func(c *cli.Context) error {
			caps, err := vk.ListDevices()
			if err != nil {
				return err
			}
			if len(caps) == 0 {
				return fmt.Errorf("%w: the Vulkan loader found no device; install a driver (`apt-get install mesa-vulkan-drivers` for the lavapipe CPU device, or the NVIDIA driver)", vk.ErrNoVulkan)
			}
			usable := 0
			for i, cp := range caps {
				fmt.Printf("[%d] %s\n", i, cp.Report())
				if len(cp.Missing()) == 0 {
					usable++
				}
			}
			if usable == 0 {
				return fmt.Errorf("%w: no device has the features emu35 needs (see above)", vk.ErrNoVulkan)
			}
			return nil
		},
	}
}
