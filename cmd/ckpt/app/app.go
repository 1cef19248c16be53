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
	"slices"
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

// Commit is the commit built from, set at build time like Version; when
// it is empty, ckpt version takes the one Go recorded (go build -buildvcs).
var Commit = ""

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	// exitNoMemory is a resume that brought every container back, but at
	// least one of them without the memory its checkpoint holds: on its
	// data only (memory could not be restored, or the checkpoint is not
	// trusted). Cold checkpoints hold no memory: they do not count.
	exitNoMemory = 3
)

// usageError marks errors in how ckpt was called. cmd is the command
// whose help tells how to call it ("rm", "trust add"); "" for ckpt's own.
type usageError struct {
	err error
	cmd string
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// help is the command line whose --help to see.
func (e usageError) help() string {
	if e.cmd == "" {
		return "ckpt"
	}
	return "ckpt " + e.cmd
}

func usagef(format string, args ...any) error { return usageError{err: fmt.Errorf(format, args...)} }

// errReported marks an error whose details were already printed.
var errReported = errors.New("failed")

// errNoMemory is a resume whose containers all came back, but not all of
// them with their memory; what they got was printed already.
var errNoMemory = errors.New("resumed, but memory was not restored")

// New returns ckpt's command-line application.
func New(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "ckpt",
		Usage:   "save Docker containers whole and resume them where they stopped",
		Version: Version,
		Description: `ckpt saves a running container's process memory (through the engine's
checkpoint API and CRIU), its named volumes and its writable layer as one
verified checkpoint in a store on the host, and resumes it later: in the same
container, or in a recreated one after docker rm, an engine restart or a
reboot.`,
		Writer:    stdout,
		ErrWriter: stderr,
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{err: err}
		},
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "store",
				Usage:   "checkpoint store `DIR`",
				EnvVars: []string{"CKPT_STORE"},
				Value:   store.DefaultRoot,
			},
			// Added by hand: the library adds it only when there is no
			// help command, and ckpt has one of its own.
			cli.HelpFlag,
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
			versionCommand(),
			helpCommand(),
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
	var wrap func(path string, cs []*cli.Command)
	wrap = func(path string, cs []*cli.Command) {
		for _, c := range cs {
			p := strings.TrimSpace(path + " " + c.Name)
			wrapCommand(c, p)
			wrap(p, c.Subcommands)
		}
	}
	wrap("", app.Commands)
	return app
}

// wrapCommand makes c's usage errors point at its own help (path is its
// command line without "ckpt": "trust add"), and, when c has --json,
// turns the errors its action returns into an error line.
func wrapCommand(c *cli.Command, path string) {
	c.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return usageError{err: err, cmd: path}
	}
	action := c.Action
	if action == nil {
		return
	}
	hasJSON := slices.ContainsFunc(c.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "json") })
	c.Action = func(ctx *cli.Context) error {
		err := action(ctx)
		var ue usageError
		if errors.As(err, &ue) && ue.cmd == "" {
			ue.cmd = path
			err = ue
		}
		if err != nil && hasJSON && ctx.Bool("json") && !errors.Is(err, errReported) && !errors.Is(err, errNoMemory) {
			newJSONWriter(ctx.App.Writer, path).fail(err)
		}
		return err
	}
}

// commandPath is the command line of c's command without "ckpt": "save",
// "trust ls".
func commandPath(c *cli.Context) string {
	var names []string
	for _, x := range c.Lineage() {
		if x.Command != nil {
			names = append(names, x.Command.Name)
		}
	}
	if len(names) > 0 {
		names = names[:len(names)-1] // the app's own
	}
	slices.Reverse(names)
	return strings.Join(names, " ")
}

// warnDeprecated says on stderr that old, a form of the command line that
// still works, will go: use new instead.
func warnDeprecated(c *cli.Context, old, new string) {
	fmt.Fprintf(c.App.ErrWriter, "ckpt: warning: %s is deprecated, use %s\n", old, new)
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
	args, code, done := asPlugin(args, stdout, stderr, cancel)
	if done {
		return code
	}
	app := New(stdout, stderr)
	err := app.RunContext(ctx, flagsBeforeArgs(app, args))
	return report(stderr, err)
}

// report prints err for a person and returns the exit code.
func report(stderr io.Writer, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errNoMemory):
		return exitNoMemory
	case errors.Is(err, errReported):
		return exitError
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "ckpt: error: %s\nckpt: hint: see %s --help\n", firstLower(ue.Error()), ue.help())
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
