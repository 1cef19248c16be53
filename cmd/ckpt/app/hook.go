package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/hook"
	"github.com/ckpt-dev/ckpt/internal/preflight"
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
			js := jsonOut(c)
			if c.Bool("dry-run") {
				out, err := dryRunHook(c, js, which, pol)
				return hookJSON(js, out, err, true)
			}
			st, eng, err := openForHook(c, which == "boot")
			if err != nil {
				return err
			}
			defer eng.Close()
			o := hookOptions(c, js)
			o.Store, o.Engine, o.Policy = st, eng, pol
			if which == "boot" {
				out, err := hook.Boot(c.Context, o)
				return hookJSON(js, out, err, false)
			}
			out, err := hook.Shutdown(c.Context, o)
			if pol.Retention != (policy.Retention{}) {
				stdout := c.App.Writer
				if js != nil {
					stdout = c.App.ErrWriter // the lines are the hook's
				}
				if perr := prune(c.Context, stdout, c.App.ErrWriter, st, pol, "", false, time.Now()); perr != nil {
					err = errors.Join(err, perr)
				}
			}
			return hookJSON(js, out, err, false)
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
one line per container, for the journal.

With --dry-run it changes nothing: no save, no record, no restart policy, no
retention. It asks the engine for the running containers and says, for each,
what the hook would do (hot, cold or skip) and why (a rule and its line, a
label, the default), in the order the hook would save them, with the
deadline and how many are saved at a time. It also prints the policy's
warnings (see ckpt policy check). It exits 1 when the hook would fail for a
container (a bad label) or on an ordering cycle.`,
				Flags:  []cli.Flag{policyFlag(), dryRunFlag("save"), jsonFlag()},
				Action: run("shutdown"),
			},
			{
				Name:  "boot",
				Usage: "resume what the last shutdown hook saved",
				Description: `Resumes what the last shutdown hook saved, dependencies first, waiting up
to two minutes for the engine. Prints one line per container.

With --dry-run it changes nothing and does not wait for the engine: it says
which interrupted saves and resumes the hook would finish or undo first, and
which containers it would resume, in order, hot or cold, or leave alone
because they run.`,
				Flags:  []cli.Flag{policyFlag(), dryRunFlag("resume"), jsonFlag()},
				Action: run("boot"),
			},
		},
	}
}

func dryRunFlag(what string) cli.Flag {
	return &cli.BoolFlag{Name: "dry-run", Usage: "say what the hook would " + what + " and why; change nothing"}
}

// hookResult is the result line of one container under --json.
type hookResult struct {
	Container      string `json:"container"`
	Action         string `json:"action"`
	Checkpoint     string `json:"checkpoint,omitempty"`
	Ref            string `json:"ref,omitempty"`
	Mode           string `json:"mode,omitempty"`
	Reason         string `json:"reason,omitempty"`
	MemoryRestored *bool  `json:"memoryRestored,omitempty"`
	ElapsedMS      int64  `json:"elapsedMs,omitempty"`
	DryRun         bool   `json:"dryRun,omitempty"`
}

// hookSummary is the summary line of a hook under --json.
type hookSummary struct {
	Counts hookCounts `json:"counts"`
	DryRun bool       `json:"dryRun,omitempty"`
}

type hookCounts struct {
	Hot     int `json:"hot"`
	Cold    int `json:"cold"`
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
}

// hookOptions are the hook's options for c: its lines on stdout, or with
// --json (js) a result line per container instead.
func hookOptions(c *cli.Context, js *jsonWriter) hook.Options {
	o := hook.Options{Out: c.App.Writer}
	if js != nil {
		o.Out = io.Discard
		o.Events = func(e hook.Event) {
			r := hookResult{Container: e.Container, Action: e.Action, Checkpoint: e.Checkpoint, Mode: string(e.Mode),
				Reason: e.Reason, MemoryRestored: e.MemoryRestored, ElapsedMS: e.Elapsed.Milliseconds(), DryRun: e.DryRun}
			if e.Checkpoint != "" {
				r.Ref = e.Container + ":" + e.Checkpoint
			}
			js.result(r, e.Err)
		}
	}
	return o
}

// hookJSON ends a hook's --json output with its summary: the outcome, and
// whether it failed. When containers failed, their result lines say how;
// any other failure becomes an error line.
func hookJSON(js *jsonWriter, out hook.Outcome, err error, dryRun bool) error {
	if js == nil {
		return err
	}
	js.summary(hookSummary{Counts: hookCounts{Hot: out.Hot, Cold: out.Cold, Skipped: out.Skipped, Failed: out.Failed}, DryRun: dryRun}, err == nil)
	if err != nil && out.Failed > 0 {
		return errReported
	}
	return err
}

// dryRunHook runs hook which ("shutdown" or "boot") as a dry run: it
// connects to the engine and reads the store, which it does not create.
func dryRunHook(c *cli.Context, js *jsonWriter, which string, pol *policy.Policy) (hook.Outcome, error) {
	root, err := filepath.Abs(c.String("store"))
	if err != nil {
		return hook.Outcome{}, err
	}
	eng, err := engine.Connect(c.Context)
	if err != nil {
		return hook.Outcome{}, err
	}
	defer eng.Close()
	if err := preflight.Engine(eng.System()); err != nil {
		return hook.Outcome{}, err
	}
	o := hookOptions(c, js)
	o.Store, o.Engine, o.Policy = &store.Store{Root: root}, eng, pol
	if which == "boot" {
		return hook.DryRunBoot(c.Context, o)
	}
	warnings, err := policyWarnings(pol, c.String("policy"), defaultUnitDir)
	if err != nil {
		return hook.Outcome{}, err
	}
	printPolicyWarnings(c.App.ErrWriter, warnings)
	out, err := hook.DryRunShutdown(c.Context, o)
	if pol.Retention != (policy.Retention{}) {
		fmt.Fprintf(o.Out, "then the policy's retention would apply: ckpt prune --dry-run --policy %s lists what it removes now\n",
			shellJoin([]string{c.String("policy")}))
	}
	return out, err
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
