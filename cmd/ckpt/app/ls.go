package app

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// lsEntry is one item line of ckpt ls --json.
type lsEntry struct {
	Container   string       `json:"container"`
	Checkpoint  string       `json:"checkpoint"`
	Ref         string       `json:"ref"`
	State       string       `json:"state"`
	Created     *time.Time   `json:"created,omitempty"`
	Mode        format.Mode  `json:"mode,omitempty"`
	SizeBytes   int64        `json:"sizeBytes"`
	MemoryBytes int64        `json:"memoryBytes"`
	LeftRunning bool         `json:"leftRunning,omitempty"`
	Trust       *store.Trust `json:"trust,omitempty"`
	Error       string       `json:"error,omitempty"`
}

func lsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list checkpoints",
		ArgsUsage: "[CONTAINER]",
		Description: `Lists the checkpoints in the store, oldest first, each as CONTAINER:NAME,
the name ckpt resume, rm, export, push and inspect take. MODE is hot
(memory and data) or cold (data only). STATE is complete; incomplete (a save
in progress, or one that was killed: never resumed; the next save of that
container removes it); damaged (its manifest cannot be read, or does not
match its checksum: never resumed); or newer-format (written by a newer
ckpt, which resumes it). ORIGIN is "here" (made in this store),
"signed:NAME" (imported, signed by a store trusted as NAME: it comes back
whole) or "untrusted" (imported and not trusted: it comes back as data only;
ckpt inspect says why).`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usagef("ls takes at most one container name")
			}
			if c.NArg() == 1 && !store.ValidName(c.Args().First()) {
				return usagef("invalid container name %q", c.Args().First())
			}
			st, err := store.Open(c.String("store"))
			if err != nil {
				return err
			}
			ents, err := st.List(c.Args().First())
			if err != nil {
				return err
			}
			out := make([]lsEntry, 0, len(ents))
			for _, e := range ents {
				l := lsEntry{Container: e.Container, Checkpoint: e.Name, Ref: refString(e.Container, e.Name), State: e.State}
				if ck := e.Checkpoint; ck != nil {
					created := ck.Manifest.Created
					l.Created, l.Mode, l.LeftRunning = &created, ck.Manifest.Mode, ck.Manifest.LeftRunning
					l.SizeBytes, l.MemoryBytes = ck.Size(), ck.Manifest.MemoryBytes
					l.Trust = &ck.Trust
				}
				if e.Err != nil {
					l.Error = e.Err.Error()
				}
				out = append(out, l)
			}
			if js := jsonOut(c); js != nil {
				for _, l := range out {
					js.item(l)
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CHECKPOINT\tCREATED\tMODE\tSIZE\tMEMORY\tSTATE\tORIGIN")
			for _, l := range out {
				created, mode, size, mem, origin := "-", "-", "-", "-", "-"
				if l.Created != nil {
					created = l.Created.Local().Format(time.DateTime)
					size, mem = units.Bytes(l.SizeBytes), units.Bytes(l.MemoryBytes)
				}
				if l.Mode != "" {
					mode = string(l.Mode)
				}
				if l.Trust != nil {
					origin = originLabel(*l.Trust)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Ref, created, mode, size, mem, l.State, origin)
			}
			return tw.Flush()
		},
	}
}

// originLabel is the ORIGIN column of ckpt ls.
func originLabel(t store.Trust) string {
	switch t.Level {
	case format.TrustLocal:
		return "here"
	case format.TrustSigned:
		return "signed:" + t.Signer
	}
	return "untrusted"
}
