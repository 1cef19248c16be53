package app

import (
	"context"
	"errors"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/hook"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/policy"
)

func hookCommand() *cli.Command {
	return &cli.Command{
		Name:  "hook",
		Usage: "host hooks: save selected containers before shutdown, resume them at boot",
		Subcommands: []*cli.Command{
			hookRunCommand(),
			hookInstallCommand(),
			hookUninstallCommand(),
		},
	}
}

func policyFlag() cli.Flag {
	return &cli.StringFlag{Name: "policy", Usage: "policy `FILE`", Value: policy.DefaultFile}
}

func hookRunCommand() *cli.Command {
	run := func(which string) cli.ActionFunc {
		return func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("hook run %s takes no arguments", which)
			}
			pol, err := policy.Load(c.String("policy"))
			if err != nil {
				return err
			}
			st, eng, err := openForHook(c, which == "boot")
			if err != nil {
				return err
			}
			defer eng.Close()
			o := hook.Options{Store: st, Engine: eng, Policy: pol, Out: c.App.Writer}
			if which == "boot" {
				_, err = hook.Boot(c.Context, o)
				return err
			}
			_, err = hook.Shutdown(c.Context, o)
			if pol.Retention != (policy.Retention{}) {
				if perr := prune(c.Context, c.App.Writer, c.App.ErrWriter, st, pol, "", false, time.Now()); perr != nil {
					err = errors.Join(err, perr)
				}
			}
			return err
		}
	}
	return &cli.Command{
		Name:  "run",
		Usage: "run the shutdown or the boot hook now",
		Action: func(c *cli.Context) error {
			return usagef("hook run takes shutdown or boot")
		},
		Subcommands: []*cli.Command{
			{
				Name:  "shutdown",
				Usage: "save the running containers the policy selects",
				Description: `Saves every running container the policy selects — hot, cold or not at
all — dependents first, in parallel, within the policy's deadline, and records
what it saved for the boot hook; then applies the policy's retention. Prints
one line per container, for the journal.`,
				Flags:  []cli.Flag{policyFlag()},
				Action: run("shutdown"),
			},
			{
				Name:  "boot",
				Usage: "resume what the last shutdown hook saved",
				Description: `Resumes what the last shutdown hook saved, dependencies first, waiting up
to two minutes for the engine. Prints one line per container.`,
				Flags:  []cli.Flag{policyFlag()},
				Action: run("boot"),
			},
		},
	}
}

// openForHook is openAll; at boot it waits up to two minutes for the engine,
// which may still be starting.
func openForHook(c *cli.Context, wait bool) (*store.Store, *engine.Engine, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, eng, err := openAll(c)
		if err == nil || !wait || time.Now().After(deadline) {
			return st, eng, err
		}
		select {
		case <-c.Context.Done():
			return nil, nil, context.Cause(c.Context)
		case <-time.After(2 * time.Second):
		}
	}
}
