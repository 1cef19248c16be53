package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/retention"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
	"github.com/ckpt-dev/ckpt/policy"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:      "prune",
		Usage:     "remove checkpoints the retention policy does not keep",
		ArgsUsage: "[CONTAINER]",
		Description: `Removes the complete checkpoints that the retention section of the policy
file does not keep: those beyond keep_last for their container, those older
than max_age, and then, oldest first, as many as it takes to bring the store
under max_bytes. The newest checkpoint of each container is always kept.
Incomplete and damaged checkpoints are left alone (ckpt rm removes them).
With CONTAINER, only its checkpoints are considered, and max_bytes applies to
their total.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would be removed, remove nothing"},
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE`", Value: policy.DefaultFile},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("prune takes at most one container name")
			}
			container := c.Args().First()
			if container != "" && !store.ValidName(container) {
				return usagef("invalid container name %q", container)
			}
			file := c.String("policy")
			pol, err := policy.Load(file)
			if err != nil {
				return err
			}
			js := jsonOut(c)
			if pol.Retention == (policy.Retention{}) {
				if js != nil {
					js.summary(pruneSummary{DryRun: c.Bool("dry-run")}, true)
					return nil
				}
				fmt.Fprintf(c.App.Writer, "the policy keeps every checkpoint (no retention set in %s)\n", file)
				return nil
			}
			st, err := store.Open(c.String("store"))
			if err != nil {
				return err
			}
			if js != nil {
				return pruneJSON(c.Context, js, st, pol, container, c.Bool("dry-run"), time.Now())
			}
			return prune(c.Context, c.App.Writer, c.App.ErrWriter, st, pol, container, c.Bool("dry-run"), time.Now())
		},
	}
}

// prune applies pol's retention at time now to the complete checkpoints of
// container (of every container when it is ""), printing one line per
// checkpoint to stdout as the work goes and then a total. With dryRun it only
// says what would go. Failures (a container it cannot lock, a checkpoint it
// cannot remove) are printed on stderr and the others go on; prune then
// returns errReported.
func prune(ctx context.Context, stdout, stderr io.Writer, st *store.Store, pol *policy.Policy, container string, dryRun bool, now time.Time) error {
	plan, err := retention.NewPlan(st, pol.Retention, container, now)
	if err != nil {
		return err
	}

	removeVerb := "remove"
	if dryRun {
		removeVerb = "would remove"
	}
	// Widths are known up front, so that lines can be printed as the work
	// goes and still line up.
	nameW, sizeW := 0, 0
	for _, v := range plan.Verdicts {
		nameW = max(nameW, len(v.Container)+1+len(v.Name))
		sizeW = max(sizeW, len(units.Bytes(v.Size)))
	}
	opts := retention.Options{
		DryRun: dryRun,
		OnOutcome: func(o retention.Outcome) {
			verb := "keep"
			switch o.Action {
			case retention.Kept:
			case retention.Removed:
				verb = removeVerb
			default:
				return // a failure, printed on stderr
			}
			fmt.Fprintf(stdout, "%-*s %-*s  %*s  (%s)\n", len(removeVerb), verb, nameW, o.Container+":"+o.Name, sizeW, units.Bytes(o.Size), o.Reason)
		},
		OnFailure: func(f retention.Failure) {
			prefix := ""
			if f.Name != "" {
				prefix = f.Container + ":" + f.Name + ": "
			}
			printError(stderr, prefix, f.Err)
		},
	}
	res, err := plan.Execute(ctx, st, opts)
	if err != nil {
		return err
	}
	if dryRun {
		fmt.Fprintf(stdout, "would remove %s, freeing %s\n", nCheckpoints(res.Removed), units.Bytes(res.Freed))
	} else {
		fmt.Fprintf(stdout, "removed %s, freed %s\n", nCheckpoints(res.Removed), units.Bytes(res.Freed))
		if res.Chunks > 0 {
			fmt.Fprintf(stdout, "removed %d unused chunks (%s)\n", res.Chunks, units.Bytes(res.ChunksFreed))
		}
	}
	if res.Failed() {
		return errReported
	}
	return nil
}

// pruneJSON is prune with --json: a result line per checkpoint, kept or
// removed (or not, with its error), then a summary line.
func pruneJSON(ctx context.Context, js *jsonWriter, st *store.Store, pol *policy.Policy, container string, dryRun bool, now time.Time) error {
	plan, err := retention.NewPlan(st, pol.Retention, container, now)
	if err != nil {
		return err
	}
	kept := 0
	opts := retention.Options{
		DryRun: dryRun,
		OnOutcome: func(o retention.Outcome) {
			l := pruneResult{Container: o.Container, Checkpoint: o.Name, Ref: refString(o.Container, o.Name),
				Action: "keep", Reason: o.Reason, SizeBytes: o.Size, DryRun: dryRun}
			switch o.Action {
			case retention.Kept:
				kept++
			case retention.Removed:
				l.Action = "remove"
			default:
				return // a failure: OnFailure writes it
			}
			js.result(l, nil)
		},
		OnFailure: func(f retention.Failure) {
			l := pruneResult{Container: f.Container, DryRun: dryRun}
			if f.Name != "" {
				l.Checkpoint, l.Ref = f.Name, refString(f.Container, f.Name)
			}
			js.result(l, f.Err)
		},
	}
	res, err := plan.Execute(ctx, st, opts)
	if err != nil {
		return err
	}
	js.summary(pruneSummary{Removed: res.Removed, Kept: kept, FreedBytes: res.Freed, DryRun: dryRun,
		Chunks: res.Chunks, ChunkBytes: res.ChunksFreed}, !res.Failed())
	if res.Failed() {
		return errReported
	}
	return nil
}

// pruneResult is a result line of ckpt prune --json: one per checkpoint
// the retention considered.
type pruneResult struct {
	Container  string `json:"container"`
	Checkpoint string `json:"checkpoint,omitempty"`
	Ref        string `json:"ref,omitempty"`
	// Action is "keep" or "remove" (with --dry-run: would remove).
	Action    string `json:"action,omitempty"`
	Reason    string `json:"reason,omitempty"`
	SizeBytes int64  `json:"sizeBytes,omitempty"`
	DryRun    bool   `json:"dryRun,omitempty"`
}

// pruneSummary is the summary line of ckpt prune --json.
type pruneSummary struct {
	Removed    int   `json:"removed"`
	Kept       int   `json:"kept"`
	FreedBytes int64 `json:"freedBytes"`
	DryRun     bool  `json:"dryRun"`
	Chunks     int   `json:"chunks,omitempty"`
	ChunkBytes int64 `json:"chunkBytes,omitempty"`
}

// nCheckpoints says "1 checkpoint" or "N checkpoints".
func nCheckpoints(n int) string {
	if n == 1 {
		return "1 checkpoint"
	}
	return fmt.Sprintf("%d checkpoints", n)
}
