package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
)

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove checkpoints",
		ArgsUsage: "CONTAINER:NAME... | --all CONTAINER...",
		Description: `Removes the checkpoints named CONTAINER:NAME, as ckpt ls lists them,
complete or not. --all CONTAINER removes every checkpoint of CONTAINER.
--dry-run says what would be removed and removes nothing. The containers
themselves are not touched. The chunks that no checkpoint uses any more are
removed too.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "remove every checkpoint of each CONTAINER given"},
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would be removed, remove nothing"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			targets, err := rmTargets(c)
			if err != nil {
				return err
			}
			st, err := store.Open(c.String("store"))
			if err != nil {
				return err
			}
			dryRun, js := c.Bool("dry-run"), jsonOut(c)
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			removed, failed := 0, 0
			fail := func(container, name string, err error) {
				failed++
				if js != nil {
					l := rmResult{Container: container}
					if name != "" {
						l.Checkpoint, l.Ref = name, refString(container, name)
					}
					js.result(l, err)
					return
				}
				p := ""
				if len(targets) > 1 || len(targets[0].names) > 1 {
					p = refString(container, name) + ": " // which one failed
				}
				printError(c.App.ErrWriter, p, err)
			}
			for _, t := range targets {
				names, missing, err := t.resolve(st)
				if err != nil {
					fail(t.container, "", err)
					continue
				}
				for _, n := range missing {
					fail(t.container, n, hint.New(fmt.Sprintf("no checkpoint %q for container %s", n, t.container), "ckpt ls "+t.container+" lists its checkpoints"))
				}
				if len(names) == 0 {
					continue
				}
				var lock *store.Lock
				if !dryRun {
					if lock, err = st.Lock(t.container, "rm"); err != nil {
						fail(t.container, "", err)
						continue
					}
				}
				for _, n := range names {
					if !dryRun {
						if err := st.Remove(t.container, n); err != nil {
							fail(t.container, n, err)
							continue
						}
					}
					removed++
					if js != nil {
						js.result(rmResult{Container: t.container, Checkpoint: n, Ref: refString(t.container, n), DryRun: dryRun}, nil)
					} else {
						fmt.Fprintf(c.App.Writer, "%s %s\n", verb, refString(t.container, n))
					}
				}
				if lock != nil {
					lock.Unlock()
				}
			}
			sum := rmSummary{Removed: removed, DryRun: dryRun}
			if !dryRun && removed > 0 {
				chunks, freed, _, err := st.CollectChunks()
				if err != nil {
					return fmt.Errorf("the checkpoints were removed, not all of the chunks they used: %w", err)
				}
				sum.Chunks, sum.ChunkBytes = chunks, freed
				if chunks > 0 && js == nil {
					fmt.Fprintf(c.App.Writer, "removed %d unused chunks (%s)\n", chunks, units.Bytes(freed))
				}
			}
			js.summary(sum, failed == 0)
			if failed > 0 {
				return errReported
			}
			return nil
		},
	}
}

// rmTarget is what rm removes of one container: the checkpoints named, or
// all of them.
type rmTarget struct {
	container string
	names     []string
	all       bool
}

// rmTargets reads what to remove from rm's arguments: CONTAINER:NAME...,
// or --all CONTAINER..., or the old CONTAINER NAME... (which warns).
// Removing all of a container's checkpoints takes --all.
func rmTargets(c *cli.Context) ([]rmTarget, error) {
	args := c.Args().Slice()
	if len(args) == 0 {
		return nil, usagef("rm needs CONTAINER:NAME, or --all CONTAINER")
	}
	refs, err := parseRefs(args)
	if err != nil {
		return nil, err
	}
	var targets []rmTarget
	if c.Bool("all") {
		for _, r := range refs {
			if r.name != "" {
				return nil, usagef("--all removes every checkpoint of a container: give %s, not %s", r.container, r)
			}
			if !slices.ContainsFunc(targets, func(t rmTarget) bool { return t.container == r.container }) {
				targets = append(targets, rmTarget{container: r.container, all: true})
			}
		}
		return targets, nil
	}
	named := slices.ContainsFunc(refs, func(r checkpointRef) bool { return r.name != "" })
	if len(refs) > 1 && !named {
		// The old form: CONTAINER NAME...
		t := rmTarget{container: refs[0].container}
		var with []string
		for _, r := range refs[1:] {
			t.names = appendNew(t.names, r.container)
			with = append(with, refString(t.container, r.container))
		}
		warnDeprecated(c, "rm CONTAINER NAME", "ckpt rm "+strings.Join(with, " "))
		return []rmTarget{t}, nil
	}
	for _, r := range refs {
		if r.name == "" {
			return nil, usagef("rm %s would remove every checkpoint of %s: give --all for that, or name one as %s:NAME", r.container, r.container, r.container)
		}
		i := slices.IndexFunc(targets, func(t rmTarget) bool { return t.container == r.container })
		if i < 0 {
			targets, i = append(targets, rmTarget{container: r.container}), len(targets)
		}
		targets[i].names = appendNew(targets[i].names, r.name)
	}
	return targets, nil
}

// resolve returns the names of the checkpoints of t that are in st, and
// those named that are not.
func (t rmTarget) resolve(st *store.Store) (names, missing []string, err error) {
	ents, err := st.List(t.container)
	if err != nil {
		return nil, nil, err
	}
	if len(ents) == 0 {
		return nil, nil, hint.New("no checkpoints for container "+t.container, "ckpt ls lists the checkpoints in the store")
	}
	if t.all {
		for _, e := range ents {
			names = append(names, e.Name)
		}
		return names, nil, nil
	}
	for _, n := range t.names {
		if slices.ContainsFunc(ents, func(e store.Entry) bool { return e.Name == n }) {
			names = append(names, n)
		} else {
			missing = append(missing, n)
		}
	}
	return names, missing, nil
}

// appendNew appends s to list unless it is there already.
func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// rmResult is a result line of ckpt rm --json: one per checkpoint.
type rmResult struct {
	Container  string `json:"container"`
	Checkpoint string `json:"checkpoint,omitempty"`
	Ref        string `json:"ref,omitempty"`
	DryRun     bool   `json:"dryRun,omitempty"`
}

// rmSummary is the summary line of ckpt rm --json.
type rmSummary struct {
	Removed    int   `json:"removed"`
	DryRun     bool  `json:"dryRun"`
	Chunks     int   `json:"chunks,omitempty"`
	ChunkBytes int64 `json:"chunkBytes,omitempty"`
}
