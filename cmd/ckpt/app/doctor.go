package app

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/doctor"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check that this host can save and resume containers",
		Description: `Checks the engine (reachable, experimental features on, overlay2), CRIU
(installed, its version, criu check, new enough for this kernel), the cgroup
version, runc's CRIU configuration, free space in the store against the
largest running container, and leftover copies of restored checkpoints in
/tmp. Each check prints ok, warn, FAIL (or skip, when it needs what failed
before it) with what it found and, when not ok, the fix. Exits 1 when a
check fails: saves or resumes would fail too. Changes nothing.`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("doctor takes no arguments")
			}
			results := doctor.Run(c.Context, doctor.Options{Store: c.String("store"), StoreSetting: "--store DIR or CKPT_STORE"})
			if js := jsonOut(c); js != nil {
				var failed, warnings int
				for _, r := range results {
					js.item(r)
					switch r.Status {
					case doctor.Fail:
						failed++
					case doctor.Warn:
						warnings++
					}
				}
				js.summary(doctorSummary{Failed: failed, Warnings: warnings}, failed == 0)
			} else {
				printDoctor(c.App.Writer, results)
			}
			if doctor.Failed(results) {
				return errReported
			}
			return nil
		},
	}
}

// doctorSummary is the summary line of ckpt doctor --json: how many checks
// failed, and how many warned.
type doctorSummary struct {
	Failed   int `json:"failed"`
	Warnings int `json:"warnings"`
}

// printDoctor writes one line per check and, under a check that is not ok,
// its fix.
func printDoctor(w io.Writer, results []doctor.Result) {
	for _, r := range results {
		label := string(r.Status)
		if r.Status == doctor.Fail {
			label = "FAIL"
		}
		fmt.Fprintf(w, "%-6s%s: %s\n", label, r.Check, r.Finding)
		if r.Fix != "" && r.Status != doctor.OK {
			fmt.Fprintf(w, "      fix: %s\n", r.Fix)
		}
	}
}
