package app

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/registry"
	"github.com/ckpt-dev/ckpt/restore"
)

func resumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "bring saved containers back where they stopped",
		ArgsUsage: "CONTAINER...",
		Description: `Verifies the checkpoint's checksums, recreates the container (and its
missing volumes and networks) if it no longer exists, puts its writable layer
back, and starts it from its checkpoint. If memory cannot be restored, the
container starts normally on the restored data and ckpt says so; with
--no-fallback the resume fails instead and undoes what it created.

A checkpoint comes back whole when it was made in this store, or signed by
a store trusted here (ckpt trust). Any other (brought by ckpt import or
pull, unsigned, signed by an unknown key, or altered after it was signed)
comes back as data only: its volumes and writable layer, in a plain
container that gets none of what reaches outside it (privileged mode,
capabilities, host namespaces, devices, host paths, security options,
sysctls, links, log drivers, annotations, volumes and networks it did not
bring), each named; never into a container that exists already. --trust
resumes it whole all the same.

--from HOST/REPOSITORY:TAG (anything with a '/') pulls the checkpoint from a
registry first, as ckpt pull does, and resumes the container it was pushed
from; the container name may then be left out.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "resume every stopped container that has a checkpoint"},
			&cli.StringFlag{Name: "project", Usage: "resume the containers of compose project `NAME`, dependencies first, with its networks"},
			&cli.StringFlag{Name: "from", Usage: "resume checkpoint `NAME` instead of the newest; or pull HOST/REPOSITORY:TAG from a registry (as ckpt pull) and resume that"},
			&cli.BoolFlag{Name: "no-fallback", Usage: "fail, rather than start without memory, when memory cannot be restored"},
			&cli.BoolFlag{Name: "force", Usage: "resume a container that ran after its checkpoint was taken (its memory goes back, its newer files stay)"},
			&cli.BoolFlag{Name: "trust", Usage: "resume a checkpoint that is not trusted whole: its memory, and all its container asks for (privileged mode, host paths, devices, ...; ckpt import lists them)"},
		}, append(append(registryFlags(), decryptFlags()...), progressFlags()...)...),
		Action: func(c *cli.Context) error {
			from := c.String("from")
			var names []string
			var err error
			if !isRegistryRef(from) {
				if names, err = targets(c); err != nil {
					return err
				}
				if from != "" && len(names) != 1 {
					return usagef("--from takes exactly one container")
				}
			} else if c.NArg() > 1 || c.Bool("all") || c.String("project") != "" {
				return usagef("--from %s resumes one container: the one it was pushed from", from)
			}
			st, eng, err := openAll(c)
			if err != nil {
				return err
			}
			defer eng.Close()
			if isRegistryRef(from) {
				opts, err := pullOptions(c)
				if err != nil {
					return err
				}
				ck, stats, err := registry.Pull(c.Context, st, from, opts)
				if _, js := reporter(c); js != nil && err != nil {
					js.result(jsonLine{Container: c.Args().First(), Transfer: transferJSON(from, stats)}, err)
					return errReported
				}
				if err != nil {
					return err
				}
				if c.NArg() == 1 && c.Args().First() != ck.Container {
					return usagef("%s holds a checkpoint of %s, not of %s", from, ck.Container, c.Args().First())
				}
				if !c.Bool("json") && !c.Bool("quiet") {
					fmt.Fprintf(c.App.ErrWriter, "ckpt: %s: pulled %s from %s: %s\n", ck.Container, ck.Name, from, describeTransfer(stats, "received", "the store had"))
				}
				names, from = []string{ck.Container}, ck.Name
			}
			if p := c.String("project"); p != "" {
				if names, err = restore.Project(st, p); err != nil {
					return err
				}
			}
			opts := restore.Options{
				Store: st, Engine: eng, Containers: names, All: c.Bool("all"),
				From: from, NoFallback: c.Bool("no-fallback"), Trust: c.Bool("trust"), Force: c.Bool("force"),
			}
			var js *jsonWriter
			opts.Progress, js = reporter(c)
			results, err := restore.Resume(c.Context, opts)
			if len(results) == 0 {
				return err
			}
			if js != nil {
				for _, r := range results {
					l := jsonLine{Container: r.Container, Checkpoint: r.Checkpoint, Recreated: r.Recreated, Notes: r.Notes, Dropped: r.Dropped}
					if r.Checkpoint != "" {
						l.Trust = &r.Trust
					}
					if r.Err == nil {
						restored := r.MemoryRestored
						l.MemoryRestored, l.Mode = &restored, format.ModeHot
						if r.Cold {
							l.Mode = format.ModeCold
						}
					}
					if r.Fallback != nil {
						l.Notes = append(l.Notes, "memory was not restored: "+r.Fallback.Error())
					}
					js.result(l, r.Err)
				}
				if err != nil {
					return errReported
				}
				return nil
			}
			failed := 0
			for _, r := range results {
				if r.Err != nil {
					failed++
					for _, n := range r.Notes { // what a recovery did, first
						fmt.Fprintf(c.App.ErrWriter, "ckpt: %s\n", n)
					}
					printError(c.App.ErrWriter, prefix(results, r.Container), r.Err)
					continue
				}
				how := "memory restored"
				switch {
				case r.Untrusted && r.Cold:
					how = "started fresh on its saved data (cold checkpoint), in a plain container: it is not trusted"
				case r.Untrusted:
					how = "data only, in a plain container: it is not trusted (" + r.Trust.Reason + ")"
				case r.Cold:
					how = "started fresh on its saved data (cold checkpoint)"
				case !r.MemoryRestored:
					how = "memory NOT restored, started normally on the restored data"
				}
				if r.Recreated {
					how += ", container recreated"
				}
				if r.Checkpoint == "" {
					// Brought back by finishing an interrupted save or
					// resume: the note says how.
					fmt.Fprintf(c.App.Writer, "resumed %s without a checkpoint:\n", r.Container)
				} else {
					fmt.Fprintf(c.App.Writer, "resumed %s from %s: %s\n", r.Container, r.Checkpoint, how)
				}
				for _, n := range r.Notes {
					fmt.Fprintf(c.App.Writer, "  %s\n", n)
				}
				for _, d := range r.Dropped {
					fmt.Fprintf(c.App.Writer, "  left out: %s\n", d)
				}
				if r.Untrusted {
					fmt.Fprintf(c.App.ErrWriter, "ckpt: %s: to resume it whole, %s\n", r.Container, trustAdvice(r.Trust))
				} else if r.Fallback != nil {
					printWarning(c.App.ErrWriter, "memory of "+r.Container+" was not restored: ", r.Fallback)
				}
			}
			if failed > 0 {
				return errReported
			}
			return nil
		},
	}
}
