// Package app builds ckpt's command line. The binary, the tests and the
// documentation generator share New.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// Version is set at build time with -ldflags "-X .../app.Version=...".
var Version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks errors in how ckpt was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// reported marks an error whose details were already printed.
var errReported = errors.New("failed")

// New returns ckpt's command-line application.
func New(stdout, stderr io.Writer) *cli.App {
	onUsage := func(c *cli.Context, err error, isSubcommand bool) error { return usageError{err} }
	app := &cli.App{
		Name:    "ckpt",
		Usage:   "save Docker containers whole and resume them where they stopped",
		Version: Version,
		Description: `ckpt saves a running container's process memory (through the engine's
checkpoint API and CRIU), its named volumes and its writable layer as one
verified checkpoint in a store on the host, and resumes it later: in the same
container, or in a recreated one after docker rm, an engine restart or a
reboot.`,
		Writer:               stdout,
		ErrWriter:            stderr,
		OnUsageError:         onUsage,
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "store",
				Usage:   "checkpoint store `DIR`",
				EnvVars: []string{"CKPT_STORE"},
				Value:   store.DefaultRoot,
			},
		},
		Commands: []*cli.Command{
			saveCommand(),
			resumeCommand(),
			lsCommand(),
			rmCommand(),
			exportCommand(),
			importCommand(),
			pushCommand(),
			pullCommand(),
			trustCommand(),
			pruneCommand(),
			hookCommand(),
			policyCommand(),
			inspectCommand(),
			doctorCommand(),
			genDocsCommand(),
			holderCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // Main maps errors to exit codes
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
	var setUsage func([]*cli.Command)
	setUsage = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = onUsage
			setUsage(c.Subcommands)
		}
	}
	setUsage(app.Commands)
	return app
}

// Main runs ckpt with args and returns its exit code. SIGINT, SIGTERM and
// SIGHUP (a terminal or an ssh session gone) cancel the work, which then
// cleans up before returning. SIGPIPE is ignored: a reader of the output
// that goes away (ckpt save web | head) does not kill ckpt between the
// steps of a save; its writes fail instead, and the work goes on.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "ckpt: %s: cleaning up\n", s)
			cancel()
		case <-ctx.Done():
		}
	}()
	args, done := asPlugin(args, stdout)
	if done {
		return exitOK
	}
	app := New(stdout, stderr)
	err := app.RunContext(ctx, flagsBeforeArgs(app, args))
	return report(stderr, err)
}

// report prints err for a person and returns the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errReported) {
		return exitError
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "ckpt: error: %s\nckpt: hint: see ckpt --help\n", firstLower(ue.Error()))
		return exitUsage
	}
	printError(stderr, "", err)
	return exitError
}

// printError prints "ckpt: error: ..." and, when there is one, "ckpt: hint: ...".
func printError(w io.Writer, prefix string, err error) { printProblem(w, "error", prefix, err) }

// printWarning is printError for problems that did not make ckpt fail.
func printWarning(w io.Writer, prefix string, err error) { printProblem(w, "warning", prefix, err) }

func printProblem(w io.Writer, level, prefix string, err error) {
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintf(w, "ckpt: %s: %s%s\n", level, prefix, err)
	if h := hintFor(err); h != "" {
		fmt.Fprintf(w, "ckpt: hint: %s\n", h)
	}
}

func firstLower(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// openAll opens the store and connects to the engine, checking that it can
// take and restore checkpoints.
func openAll(c *cli.Context) (*store.Store, *engine.Engine, error) {
	criu.Prefetch()
	st, err := store.Open(c.String("store"))
	if err != nil {
		return nil, nil, err
	}
	eng, err := engine.Connect(c.Context)
	if err != nil {
		return nil, nil, err
	}
	if err := preflight.Engine(eng.System()); err != nil {
		eng.Close()
		return nil, nil, err
	}
	return st, eng, nil
}

// targets checks that exactly one of CONTAINER..., --all and --project
// says what to work on.
func targets(c *cli.Context) ([]string, error) {
	args := c.Args().Slice()
	n := 0
	for _, given := range []bool{len(args) > 0, c.Bool("all"), c.String("project") != ""} {
		if given {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, usagef("give container names, --all or --project, only one of them")
	case n == 0:
		return nil, usagef("%s needs a container name (or --all, or --project)", c.Command.Name)
	}
	return args, nil
}
