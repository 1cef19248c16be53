package app

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/steps"
	"github.com/ckpt-dev/ckpt/internal/units"
)

func saveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "checkpoint containers: memory, volumes and writable layer",
		ArgsUsage: "CONTAINER[:NAME]...",
		Description: `Checkpoints each container into the store. By default the container stops,
as with docker checkpoint create; with --leave-running it is paused while its
state is captured and keeps running after. Restart policies are held off
until ckpt resume, so the engine does not restart a saved container.

CONTAINER:NAME names the checkpoint NAME; by default it is named after the
UTC time (20261127T114912Z). ckpt resume CONTAINER:NAME, ckpt rm and the
other commands name it so. With --all or --project, --name names them all.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "save every running container"},
			&cli.StringFlag{Name: "project", Usage: "save every running container of compose project `NAME`, dependents first"},
			&cli.BoolFlag{Name: "cold", Usage: "save data only: stop the containers gracefully, keep volumes and writable layer"},
			&cli.BoolFlag{Name: "leave-running", Usage: "keep the containers running (paused during the save)"},
			&cli.StringFlag{Name: "name", Usage: "name the checkpoints of --all or --project `NAME` (name one as CONTAINER:NAME)"},
		}, progressFlags()...),
		Action: func(c *cli.Context) error {
			args, err := targets(c)
			if err != nil {
				return err
			}
			refs, err := parseRefs(args)
			if err != nil {
				return err
			}
			if c.Bool("cold") && c.Bool("leave-running") {
				return usagef("--cold stops the containers; it does not go with --leave-running")
			}
			if name := c.String("name"); name != "" && len(refs) > 0 {
				var with []string
				for i, r := range refs {
					if r.name != "" {
						return usagef("%s names its checkpoint already: give CONTAINER:NAME or --name, not both", r)
					}
					refs[i].name = name
					with = append(with, refs[i].String())
				}
				warnDeprecated(c, "save --name", "ckpt save "+strings.Join(with, " "))
			}
			st, eng, err := openAll(c)
			if err != nil {
				return err
			}
			defer eng.Close()
			if p := c.String("project"); p != "" {
				containers, err := checkpoint.Project(c.Context, eng, p)
				if err != nil {
					return err
				}
				for _, ct := range containers {
					refs = append(refs, checkpointRef{ct, c.String("name")})
				}
			}
			mode := format.ModeHot
			if c.Bool("cold") {
				mode = format.ModeCold
			}
			opts := checkpoint.Options{Mode: mode,
				Store: st, Engine: eng, All: c.Bool("all"),
				LeaveRunning: c.Bool("leave-running"), Name: c.String("name"),
			}
			var js *jsonWriter
			opts.Progress, js = reporter(c)
			var results []checkpoint.Result
			if opts.All {
				results, err = checkpoint.Save(c.Context, opts)
			} else {
				// Each container with the name given for it, in turn.
				results, err = steps.Each(c.Context, refStrings(refs), func(ref string) checkpoint.Result {
					o := opts
					container, name, _ := strings.Cut(ref, ":")
					o.Name = name
					return checkpoint.SaveContainer(c.Context, o, container)
				}, func(r checkpoint.Result) (string, error) { return r.Container, r.Err })
			}
			if len(results) == 0 {
				return err
			}
			if js != nil {
				for _, r := range results {
					l := saveResult{Container: r.Container, ElapsedMS: r.Took.Milliseconds(), Recovery: r.Recovery}
					if r.Recovered != "" {
						l.Notes = append(l.Notes, r.Recovered)
					}
					if ck := r.Checkpoint; ck != nil {
						l.Checkpoint, l.Ref = ck.Name, refString(ck.Container, ck.Name)
						l.Mode, l.MemoryBytes = ck.Manifest.Mode, ck.Manifest.MemoryBytes
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
				if r.Recovered != "" {
					fmt.Fprintf(c.App.ErrWriter, "ckpt: %s\n", r.Recovered)
				}
				if r.Err != nil {
					failed++
					printError(c.App.ErrWriter, prefix(results, r.Container), r.Err)
					if r.Recovery != "" {
						fmt.Fprintf(c.App.ErrWriter, "ckpt: %s %s\n", r.Container, r.Recovery)
					}
					continue
				}
				m := r.Checkpoint.Manifest
				var vols []string
				for _, v := range m.Volumes {
					vols = append(vols, fmt.Sprintf("%s %s", v.Name, units.Bytes(v.Bytes)))
				}
				state := "stopped"
				switch {
				case m.LeftRunning:
					state = "left running"
				case m.Mode == format.ModeCold:
					state = "cold: data only, stopped"
				}
				fmt.Fprintf(c.App.Writer, "saved %s as %s in %s (%s): memory %s, volumes [%s], writable layer %d entries, %d deleted\n",
					r.Container, refString(r.Container, r.Checkpoint.Name), units.Duration(r.Took), state, units.Bytes(m.MemoryBytes),
					strings.Join(vols, ", "), m.Layer.Entries, m.Layer.Deleted)
				for _, s := range m.Skipped {
					fmt.Fprintf(c.App.ErrWriter, "ckpt: warning: %s: %s\n", r.Container, s)
				}
			}
			if failed > 0 {
				return errReported
			}
			return nil
		},
	}
}

// saveResult is a result line of ckpt save --json.
type saveResult struct {
	Container   string      `json:"container"`
	Checkpoint  string      `json:"checkpoint,omitempty"`
	Ref         string      `json:"ref,omitempty"`
	Mode        format.Mode `json:"mode,omitempty"`
	MemoryBytes int64       `json:"memoryBytes,omitempty"`
	ElapsedMS   int64       `json:"elapsedMs,omitempty"`
	Recovery    string      `json:"recovery,omitempty"`
	Notes       []string    `json:"notes,omitempty"`
}

// refStrings writes refs as they are written on the command line.
func refStrings(refs []checkpointRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return out
}

// prefix names the container in error lines when several were named.
func prefix[T any](results []T, name string) string {
	if len(results) < 2 {
		return ""
	}
	return name + ": "
}
