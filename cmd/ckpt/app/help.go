package app

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// helpCommand is "ckpt help [COMMAND...]": ckpt --help, or the --help of
// the command named.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show the help of ckpt, or of one of its commands",
		ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		Description: `ckpt help is ckpt --help; ckpt help rm is ckpt rm --help; ckpt help trust
add is ckpt trust add --help.`,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 {
				return cli.ShowAppHelp(c)
			}
			cmds := c.App.Commands
			for i, a := range args {
				cmd := findCommand(cmds, a)
				if cmd == nil || cmd.Hidden {
					return usagef("unknown command %q", strings.Join(args[:i+1], " "))
				}
				cmds = cmd.Subcommands
			}
			return c.App.RunContext(c.Context, append(append([]string{c.App.Name}, args...), "--help"))
		},
	}
}
