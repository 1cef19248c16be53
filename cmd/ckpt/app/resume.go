package app

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/registry"
	"github.com/ckpt-dev/ckpt/internal/steps"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/restore"
)

func resumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "bring saved containers back where they stopped",
		ArgsUsage: "CONTAINER[:NAME]...",
		Description: `Resumes each container from its newest complete checkpoint, or from
checkpoint NAME for CONTAINER:NAME. Verifies the checkpoint's checksums,
recreates the container (and its missing volumes and networks) if it no
longer exists, puts its writable layer back, and starts it from its
checkpoint. If memory cannot be restored, the container starts normally on
the restored data and ckpt says so, and exits 3; with --require-memory the
resume fails instead and undoes what it created.

A checkpoint comes back whole when it was made in this store, or signed by
a store trusted here (ckpt trust). Any other (brought by ckpt import or
pull, unsigned, signed by an unknown key, or altered after it was signed)
comes back as data only: its volumes and writable layer, in a plain
container that gets none of what reaches outside it (privileged mode,
capabilities, host namespaces, devices, host paths, security options,
sysctls, links, log drivers, annotations, volumes and networks it did not
bring), each named; never into a container that exists already. --trust
resumes it whole all the same.

--from HOST/REPOSITORY:TAG pulls the checkpoint from a registry first, as
ckpt pull does, and resumes the container it was pushed from; the container
name may then be left out.

Exit codes: 0 when every container came back with its memory (or from a
cold checkpoint, which holds none); 3 when every container came back but
at least one without its memory, on its data only; 1 when one failed.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "resume every stopped container that has a checkpoint"},
			&cli.StringFlag{Name: "project", Usage: "resume the containers of compose project `NAME`, dependencies first, with its networks"},
			&cli.StringFlag{Name: "from", Usage: "pull `HOST/REPOSITORY:TAG` from a registry (as ckpt pull) and resume that"},
			&cli.BoolFlag{Name: "require-memory", Usage: "fail, rather than start without memory, when memory cannot be restored (or the checkpoint is not trusted)"},
			&cli.BoolFlag{Name: "no-fallback", Hidden: true, Usage: "the old name of --require-memory"},
			&cli.BoolFlag{Name: "force", Usage: "resume a container that ran after its checkpoint was taken (its memory goes back, its newer files stay)"},
			&cli.BoolFlag{Name: "trust", Usage: "resume a checkpoint that is not trusted whole: its memory, and all its container asks for (privileged mode, host paths, devices, ...; ckpt import lists them)"},
		}, append(append(registryFlags(), decryptFlags()...), progressFlags()...)...),
		Action: func(c *cli.Context) error {
			from := c.String("from")
			var refs []checkpointRef
			if !isRegistryRef(from) {
				args, err := targets(c)
				if err != nil {
					return err
				}
				if refs, err = parseRefs(args); err != nil {
					return err
				}
				if from != "" {
					if len(refs) != 1 {
						return usagef("--from takes exactly one container")
					}
					if refs[0].name != "" {
						return usagef("%s names its checkpoint already: give CONTAINER:NAME or --from NAME, not both", refs[0])
					}
					refs[0].name = from
					warnDeprecated(c, "resume --from NAME", "ckpt resume "+refs[0].String())
				}
			} else {
				if c.NArg() > 1 || c.Bool("all") || c.String("project") != "" {
					return usagef("--from %s resumes one container: the one it was pushed from", from)
				}
				if c.NArg() == 1 {
					var err error
					if refs, err = parseRefs(c.Args().Slice()); err != nil {
						return err
					}
					if refs[0].name != "" {
						return usagef("--from %s names the checkpoint: give the container without :NAME", from)
					}
				}
			}
			if c.Bool("no-fallback") {
				warnDeprecated(c, "--no-fallback", "--require-memory")
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
				if js := jsonOut(c); js != nil && err != nil {
					js.result(resumeResult{Container: c.Args().First(), Transfer: transferJSON(from, stats)}, err)
					return errReported
				}
				if err != nil {
					return err
				}
				if len(refs) == 1 && refs[0].container != ck.Container {
					return usagef("%s holds a checkpoint of %s, not of %s", from, ck.Container, refs[0].container)
				}
				if !c.Bool("json") && !c.Bool("quiet") {
					fmt.Fprintf(c.App.ErrWriter, "ckpt: %s: pulled %s from %s: %s\n", ck.Container, ck.Name, from, describeTransfer(stats, "received", "the store had"))
				}
				refs = []checkpointRef{{ck.Container, ck.Name}}
			}
			if p := c.String("project"); p != "" {
				names, err := restore.Project(st, p)
				if err != nil {
					return err
				}
				for _, n := range names {
					refs = append(refs, checkpointRef{container: n})
				}
			}
			opts := restore.Options{
				Store: st, Engine: eng, All: c.Bool("all"),
				NoFallback: c.Bool("require-memory") || c.Bool("no-fallback"), Trust: c.Bool("trust"), Force: c.Bool("force"),
			}
			var js *jsonWriter
			opts.Progress, js = reporter(c)
			var results []restore.Result
			if opts.All {
				results, err = restore.Resume(c.Context, opts)
			} else {
				// Each container from the checkpoint given for it, in turn.
				results, err = steps.Each(c.Context, refStrings(refs), func(ref string) restore.Result {
					o := opts
					container, name, _ := strings.Cut(ref, ":")
					o.From = name
					return restore.ResumeContainer(c.Context, o, container)
				}, func(r restore.Result) (string, error) { return r.Container, r.Err })
			}
			if len(results) == 0 {
				return err
			}
			if js != nil {
				for _, r := range results {
					l := resumeResult{Container: r.Container, Checkpoint: r.Checkpoint, Recreated: r.Recreated, Notes: r.Notes, Dropped: r.Dropped}
					if r.Checkpoint != "" {
						l.Ref, l.Trust = refString(r.Container, r.Checkpoint), &r.Trust
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
				return withoutMemory(results)
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
			return withoutMemory(results)
		},
	}
}

// withoutMemory is errNoMemory when one of results came back without the
// memory its checkpoint holds (exit code 3), nil otherwise. A cold
// checkpoint holds none.
func withoutMemory(results []restore.Result) error {
	for _, r := range results {
		if r.Err == nil && !r.MemoryRestored && !r.Cold {
			return errNoMemory
		}
	}
	return nil
}

// resumeResult is a result line of ckpt resume --json.
type resumeResult struct {
	Container      string        `json:"container,omitempty"`
	Checkpoint     string        `json:"checkpoint,omitempty"`
	Ref            string        `json:"ref,omitempty"`
	Mode           format.Mode   `json:"mode,omitempty"`
	MemoryRestored *bool         `json:"memoryRestored,omitempty"`
	Recreated      bool          `json:"recreated,omitempty"`
	Notes          []string      `json:"notes,omitempty"`
	Dropped        []string      `json:"dropped,omitempty"`
	Trust          *store.Trust  `json:"trust,omitempty"`
	Transfer       *transferLine `json:"transfer,omitempty"`
}
