package app

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/policy"
)

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "policy files",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "validate a policy file",
			ArgsUsage: "FILE",
			Description: `Reports every problem with its line number: unknown keys, bad modes,
globs, durations and sizes, rules that match nothing. Exits 1 when there is
one. The hooks refuse to run with a policy that does not pass.`,
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usagef("policy check takes one file")
				}
				pol, err := policy.Load(c.Args().First())
				var errs policy.Errors
				if errors.As(err, &errs) {
					for _, e := range errs {
						fmt.Fprintf(c.App.ErrWriter, "ckpt: error: %s\n", e)
					}
					return errReported
				} else if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "%s: ok: %d rules, default %s, deadline %s, parallel %d\n",
					c.Args().First(), len(pol.Rules), pol.Default.Mode, pol.Deadline, pol.Parallel)
				return nil
			},
		}},
	}
}
