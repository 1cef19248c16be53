package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/hint"
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
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would go, remove nothing"},
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE`", Value: policy.DefaultFile},
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
			if pol.Retention == (policy.Retention{}) {
				fmt.Fprintf(c.App.Writer, "the policy keeps every checkpoint (no retention set in %s)\n", file)
				return nil
			}
			st, err := store.Open(c.String("store"))
			if err != nil {
				return err
			}
			return prune(c.Context, c.App.Writer, c.App.ErrWriter, st, pol, container, c.Bool("dry-run"), time.Now())
		},
	}
}

// prune applies pol's retention at time now to the complete checkpoints of
// container (of every container when it is ""), printing one line per
// checkpoint to stdout and then a total. It removes what retention does not
// keep, holding each container's lock; with dryRun it only says what would
// go. A container it cannot lock, or a checkpoint it cannot remove, is
// reported on stderr and the others go on; prune then returns errReported.
func prune(ctx context.Context, stdout, stderr io.Writer, st *store.Store, pol *policy.Policy, container string, dryRun bool, now time.Time) error {
	ents, err := st.List(container)
	if err != nil {
		return err
	}
	var items []policy.Item
	for _, e := range ents {
		if e.State != store.StateComplete {
			continue // never touched: ckpt rm is for those
		}
		ck := e.Checkpoint
		items = append(items, policy.Item{Container: ck.Container, Name: ck.Name, Created: ck.Manifest.Created, Size: ck.Size()})
	}
	verdicts := policy.ApplyRetention(items, pol.Retention, now)

	removeVerb := "remove"
	if dryRun {
		removeVerb = "would remove"
	}
	// Widths are known up front, so that lines can be printed as the work
	// goes and still line up.
	nameW, sizeW := 0, 0
	for _, v := range verdicts {
		nameW = max(nameW, len(v.Container)+1+len(v.Name))
		sizeW = max(sizeW, len(units.Bytes(v.Size)))
	}
	line := func(verb string, v policy.Verdict) {
		fmt.Fprintf(stdout, "%-*s %-*s  %*s  (%s)\n", len(removeVerb), verb, nameW, v.Container+":"+v.Name, sizeW, units.Bytes(v.Size), v.Reason)
	}

	var removed int
	var freed int64
	failed := false
	// List groups checkpoints by container: one group, one lock.
	for start := 0; start < len(verdicts); {
		end := start + 1
		for end < len(verdicts) && verdicts[end].Container == verdicts[start].Container {
			end++
		}
		group := verdicts[start:end]
		start = end

		if dryRun || !anyToRemove(group) {
			for _, v := range group {
				if v.Keep {
					line("keep", v)
				} else {
					line(removeVerb, v)
					removed++
					freed += v.Size
				}
			}
			continue
		}
		c := group[0].Container
		lock, err := st.Lock(c, "prune")
		if err != nil {
			printError(stderr, "", err)
			failed = true
			for _, v := range group {
				if v.Keep {
					line("keep", v)
				}
			}
			continue
		}
		// What is to be kept must still be there: removing the others
		// after a concurrent ckpt rm could leave the container nothing.
		if err := keptStillThere(st, group); err != nil {
			lock.Unlock()
			printError(stderr, "", err)
			failed = true
			continue
		}
		for _, v := range group {
			if v.Keep {
				line("keep", v)
				continue
			}
			if err := ctx.Err(); err != nil {
				lock.Unlock()
				return err
			}
			if err := st.Remove(v.Container, v.Name); err != nil {
				printError(stderr, v.Container+":"+v.Name+": ", err)
				failed = true
				continue
			}
			line(removeVerb, v)
			removed++
			freed += v.Size
		}
		lock.Unlock()
	}

	if dryRun {
		fmt.Fprintf(stdout, "would remove %s, freeing %s\n", nCheckpoints(removed), units.Bytes(freed))
	} else {
		fmt.Fprintf(stdout, "removed %s, freed %s\n", nCheckpoints(removed), units.Bytes(freed))
	}
	if failed {
		return errReported
	}
	return nil
}

func anyToRemove(vs []policy.Verdict) bool {
	for _, v := range vs {
		if !v.Keep {
			return true
		}
	}
	return false
}

// keptStillThere checks, under the container's lock, that the checkpoints
// retention keeps are still complete.
func keptStillThere(st *store.Store, group []policy.Verdict) error {
	for _, v := range group {
		if !v.Keep {
			continue
		}
		if _, err := st.Load(v.Container, v.Name); err != nil {
			return hint.Wrap(fmt.Errorf("checkpoints of %s changed during prune; none removed: %w", v.Container, err),
				"run ckpt prune again")
		}
	}
	return nil
}

// nCheckpoints says "1 checkpoint" or "N checkpoints".
func nCheckpoints(n int) string {
	if n == 1 {
		return "1 checkpoint"
	}
	return fmt.Sprintf("%d checkpoints", n)
}
