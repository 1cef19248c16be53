package app

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/units"
)

func saveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "checkpoint containers: memory, volumes and writable layer",
		ArgsUsage: "CONTAINER...",
		Description: `Checkpoints each container into the store. By default the container stops,
as with docker checkpoint create; with --leave-running it is paused while its
state is captured and keeps running after. Restart policies are held off
until ckpt resume, so the engine does not restart a saved container.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "save every running container"},
			&cli.StringFlag{Name: "project", Usage: "save every running container of compose project `NAME`, dependents first"},
			&cli.BoolFlag{Name: "cold", Usage: "save data only: stop the containers gracefully, keep volumes and writable layer"},
			&cli.BoolFlag{Name: "leave-running", Usage: "keep the containers running (paused during the save)"},
			&cli.StringFlag{Name: "name", Usage: "checkpoint `NAME` (default: the UTC time)"},
		}, progressFlags()...),
		Action: func(c *cli.Context) error {
			refs, err := targets(c)
			if err != nil {
				return err
			}
			if c.Bool("cold") && c.Bool("leave-running") {
				return usagef("--cold stops the containers; it does not go with --leave-running")
			}
			st, eng, err := openAll(c)
			if err != nil {
				return err
			}
			defer eng.Close()
			if p := c.String("project"); p != "" {
				if refs, err = checkpoint.Project(c.Context, eng, p); err != nil {
					return err
				}
			}
			mode := format.ModeHot
			if c.Bool("cold") {
				mode = format.ModeCold
			}
			opts := checkpoint.Options{Mode: mode,
				Store: st, Engine: eng, Containers: refs, All: c.Bool("all"),
				LeaveRunning: c.Bool("leave-running"), Name: c.String("name"),
			}
			var js *jsonWriter
			opts.Progress, js = reporter(c)
			results, err := checkpoint.Save(c.Context, opts)
			if len(results) == 0 {
				return err
			}
			if js != nil {
				for _, r := range results {
					l := jsonLine{Container: r.Container, Recovery: r.Recovery}
					if r.Recovered != "" {
						l.Notes = append(l.Notes, r.Recovered)
					}
					if ck := r.Checkpoint; ck != nil {
						l.Checkpoint, l.Mode, l.MemoryBytes = ck.Name, ck.Manifest.Mode, ck.Manifest.MemoryBytes
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
					r.Container, r.Checkpoint.Name, units.Duration(r.Took), state, units.Bytes(m.MemoryBytes),
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

// prefix names the container in error lines when several were named.
func prefix[T any](results []T, name string) string {
	if len(results) < 2 {
		return ""
	}
	return name + ": "
}
