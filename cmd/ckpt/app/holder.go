package app

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// holderCommand is the process of a network holder container (see
// docs/engines.md): it holds the container's network namespace, and so its
// addresses and published ports, and does nothing else until it is stopped.
// Hidden: ckpt runs it inside the holder image it makes from itself.
func holderCommand() *cli.Command {
	return &cli.Command{
		Name:   "holder",
		Usage:  "hold a network namespace (the process of a network holder container)",
		Hidden: true,
		Action: func(c *cli.Context) error {
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			<-sig
			return nil
		},
	}
}
