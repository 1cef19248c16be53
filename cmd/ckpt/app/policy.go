package app

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/systemd"
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
			Description: `Reads a policy file as the hooks do and reports every problem with its line.

Errors make it exit 1; the hooks and hook install refuse such a file. They
are: YAML that does not parse; unknown or repeated keys; values of the wrong
kind; bad modes, on_failure values, name globs, durations and sizes; a
deadline or timeout that is not positive; parallel below 1; a negative
keep_last; a rule without a match.

Warnings leave the exit status at 0. They are:
  - a hot rule, or a hot default, whose timeout is not shorter than the
    deadline: the shutdown hook saves a container hot only while its whole
    timeout fits in what is left of the deadline, so it always saves
    these containers cold;
  - a deadline longer than systemd allows: the shutdown unit gives the hook
    the deadline plus 30s, and systemd forces the power-off when the whole
    shutdown takes more than 30min (JobTimeoutSec= of poweroff.target and
    reboot.target);
  - a shutdown unit in --unit-dir, written by ckpt hook install for this
    file, whose TimeoutStopSec= is shorter than the deadline plus 30s:
    systemd would stop the hook first;
  - a rule that never matches because earlier rules match every container
    it would (the first rule that matches decides): one that matches
    everything (names: ["*"], an empty list or mapping), or ones that
    between them list each of its names (or a glob that matches it) and
    each of its projects, and ask for no label it does not ask for;
  - a default that never applies, because a rule matches every container.

Container labels can change a container's mode and timeout; the check does
not see them: ckpt hook run shutdown --dry-run shows what each running
container gets.`,
			Flags: []cli.Flag{unitDirFlag(), jsonFlag()},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usagef("policy check takes one file")
				}
				file := c.Args().First()
				js := jsonOut(c)
				pol, err := policy.Load(file)
				var errs policy.Errors
				if errors.As(err, &errs) {
					for _, e := range errs {
						if js != nil {
							js.item(policyProblem(file, "error", e))
						} else {
							fmt.Fprintf(c.App.ErrWriter, "ckpt: error: %s\n", e)
						}
					}
					if js != nil {
						js.result(policyResult{File: file}, fmt.Errorf("%d errors in %s", len(errs), file))
					}
					return errReported
				} else if err != nil {
					return err
				}
				warnings, err := policyWarnings(pol, file, c.String("unit-dir"))
				if err != nil {
					return err
				}
				if js != nil {
					for _, w := range warnings {
						it := policyProblem(w.file, "warning", w.err)
						if w.line > 0 {
							it.Line = w.line
						}
						js.item(it)
					}
					js.result(policyResult{File: file, Rules: len(pol.Rules), DefaultMode: string(pol.Default.Mode),
						Deadline: pol.Deadline.String(), Parallel: pol.Parallel}, nil)
					return nil
				}
				printPolicyWarnings(c.App.ErrWriter, warnings)
				fmt.Fprintf(c.App.Writer, "%s: ok: %d rules, default %s, deadline %s, parallel %d",
					file, len(pol.Rules), pol.Default.Mode, pol.Deadline, pol.Parallel)
				switch len(warnings) {
				case 0:
					fmt.Fprintln(c.App.Writer)
				case 1:
					fmt.Fprintln(c.App.Writer, "; 1 warning")
				default:
					fmt.Fprintf(c.App.Writer, "; %d warnings\n", len(warnings))
				}
				return nil
			},
		}},
	}
}

// policyItem is one problem of a policy file under --json.
type policyItem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Level   string `json:"level"`
	Message string `json:"message"`
}

// policyResult is the outcome of a policy check under --json.
type policyResult struct {
	File        string `json:"file"`
	Rules       int    `json:"rules,omitempty"`
	DefaultMode string `json:"defaultMode,omitempty"`
	Deadline    string `json:"deadline,omitempty"`
	Parallel    int    `json:"parallel,omitempty"`
}

// policyProblem is err, about file, as an item: its "FILE:LINE: " prefix
// (the loader's errors have one) becomes the line; with the hint, when it
// has one.
func policyProblem(file, level string, err error) policyItem {
	it := policyItem{File: file, Level: level, Message: err.Error()}
	if rest, ok := strings.CutPrefix(it.Message, file+":"); ok {
		if n, msg, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				it.Line, it.Message = line, msg
			}
		}
	}
	if h := hint.Of(err); h != "" {
		it.Message += " (" + h + ")"
	}
	return it
}

// policyWarning is a warning about a policy file, at a line of it (0 for
// the file as a whole).
type policyWarning struct {
	file string
	line int
	err  error
}

// printPolicyWarnings prints each warning as "ckpt: warning: FILE:LINE:
// text" and its hint.
func printPolicyWarnings(w io.Writer, warnings []policyWarning) {
	for _, pw := range warnings {
		prefix := pw.file + ": "
		if pw.line > 0 {
			prefix = fmt.Sprintf("%s:%d: ", pw.file, pw.line)
		}
		printWarning(w, prefix, pw.err)
	}
}

// policyWarnings returns what in pol, read from file, makes the hooks do
// something else than its author most likely meant: pol.Warnings, a
// deadline beyond systemd's limit for a shutdown, and, when unitDir holds a
// shutdown unit that runs the hook with file, a TimeoutStopSec= too short
// for the deadline.
func policyWarnings(pol *policy.Policy, file, unitDir string) ([]policyWarning, error) {
	var ws []policyWarning
	for _, w := range pol.Warnings() {
		ws = append(ws, policyWarning{file, w.Line, hint.New(w.Text, w.Hint)})
	}
	needs := time.Duration(systemd.StopTimeout(pol.Deadline)) * time.Second
	if needs > systemd.JobTimeout {
		ws = append(ws, policyWarning{file, pol.DeadlineLine, hint.New(fmt.Sprintf(
			"deadline %s: the shutdown unit gives the hook %s (the deadline plus %s), more than the %s systemd allows "+
				"the whole shutdown (JobTimeoutSec= of poweroff.target and reboot.target): systemd forces the power-off "+
				"while the hook may still be saving",
			pol.Deadline, needs, systemd.StopGrace, systemd.JobTimeout),
			fmt.Sprintf("keep the deadline under %s, with time to spare for the rest of the shutdown", systemd.JobTimeout-systemd.StopGrace))})
	}
	if unitDir == "" {
		return ws, nil
	}
	unit, err := systemd.ReadShutdownUnit(unitDir)
	if err != nil {
		return ws, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return ws, err
	}
	if unit != nil && unit.RunsPolicy(abs) && unit.StopTimeout != 0 && unit.StopTimeout < needs {
		ws = append(ws, policyWarning{file, pol.DeadlineLine, hint.New(fmt.Sprintf(
			"%s stops the hook after %s (TimeoutStopSec=), but the deadline %s needs %s (the deadline plus %s "+
				"to finish the save in progress): systemd stops the hook first",
			unit.Path, unit.StopTimeout, pol.Deadline, needs, systemd.StopGrace),
			"run ckpt hook install again: it sets TimeoutStopSec= from the deadline")})
	}
	return ws, nil
}
