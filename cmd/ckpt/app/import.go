package app

import (
	"fmt"
	"io"
	"os"
	"time"

	"filippo.io/age"
	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/transfer"
	"github.com/ckpt-dev/ckpt/internal/units"
	"github.com/ckpt-dev/ckpt/restore"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "add a checkpoint from an archive written by ckpt export",
		ArgsUsage: "FILE",
		Description: `Reads an archive written by ckpt export (FILE, or - for standard input) and
adds the checkpoint it holds to the store, under the same container and
checkpoint names. Nothing is added unless every file matches the checkpoint's
manifest; an archive that is damaged, truncated, or holds anything but the
checkpoint's files is refused. An encrypted archive needs --identity (the
private key of one of the export's recipients: an age identity file or an
SSH private key) or --passphrase-file.

Resume the checkpoint with ckpt resume: if the container does not exist on
this host, it is recreated from the saved configuration. The checkpoint comes
back whole (memory, and all its container asks for) only when the store that
made it signed it and is trusted here (ckpt trust add); any other comes back
as data only, in a plain container, unless resumed with --trust. The output
says which, before anything runs. The bytes read are shown about once a
second on a terminal.`,
		Flags: append([]cli.Flag{
			&cli.GenericFlag{Name: "identity", Aliases: []string{"i"}, Value: &repeated{},
				Usage: "decrypt with the private key in `FILE`: an age identity file or an SSH private key; repeatable"},
			&cli.StringFlag{Name: "passphrase-file", Usage: "decrypt with the passphrase on the first line of `FILE`"},
		}, progressFlags()...),
		Action: func(c *cli.Context) error {
			if err := flagsFirst(c); err != nil {
				return err
			}
			if c.NArg() != 1 {
				return usagef("import takes one FILE, or - for standard input")
			}
			path := c.Args().First()
			var in io.Reader = c.App.Reader
			if in == nil {
				in = os.Stdin
			}
			if path == "-" && isTerminal(in) {
				return usagef("standard input is a terminal: redirect it, or give a FILE")
			}

			var opts transfer.ImportOptions
			var err error
			if opts.Identities, opts.Passphrase, err = decryptFlagValues(c); err != nil {
				return err
			}
			var total int64
			if path != "-" {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
					total = fi.Size()
				}
			}
			st, err := store.Open(c.String("store"))
			if err != nil {
				return err
			}
			start, js := time.Now(), jsonOut(c)
			m := startMeter(c, js, "", "", "import", total)
			ck, stats, err := transfer.Import(c.Context, m.reader(in), st, opts)
			m.done()
			if err != nil {
				return err
			}
			if js != nil {
				l := importResult{Container: ck.Container, Checkpoint: ck.Name, Ref: refString(ck.Container, ck.Name),
					Files: stats.Files, Bytes: stats.Bytes, Trust: ck.Trust, ElapsedMS: time.Since(start).Milliseconds()}
				if !ck.Trust.Trusted() {
					// What it goes without; unreadable, resume finds it damaged.
					l.Asks, _ = restore.Powers(ck)
				}
				js.result(l, nil)
				return nil
			}
			return printArrival(c, st, ck, fmt.Sprintf("imported %s (%d files, %s)", refString(ck.Container, ck.Name), stats.Files, units.Bytes(stats.Bytes)))
		},
	}
}

// importResult is the result line of ckpt import --json.
type importResult struct {
	Container  string      `json:"container"`
	Checkpoint string      `json:"checkpoint"`
	Ref        string      `json:"ref"`
	Files      int         `json:"files"`
	Bytes      int64       `json:"bytes"`
	Trust      store.Trust `json:"trust"`
	// Asks is what its container asks for and does not get unless it
	// is trusted.
	Asks      []string `json:"asks,omitempty"`
	ElapsedMS int64    `json:"elapsedMs"`
}

// decryptFlagValues reads what --identity and --passphrase-file give.
func decryptFlagValues(c *cli.Context) (ids []age.Identity, passphrase string, err error) {
	for _, f := range *c.Generic("identity").(*repeated) {
		more, err := transfer.ReadIdentities(f)
		if err != nil {
			return nil, "", err
		}
		ids = append(ids, more...)
	}
	if f := c.String("passphrase-file"); f != "" {
		if passphrase, err = readPassphrase(f); err != nil {
			return nil, "", err
		}
	}
	return ids, passphrase, nil
}

// openCheckpoint opens the store and finds checkpoint name of container
// in it (its newest complete one for "").
func openCheckpoint(c *cli.Context, container, name string) (*store.Store, *store.Checkpoint, error) {
	st, err := store.Open(c.String("store"))
	if err != nil {
		return nil, nil, err
	}
	ck, err := st.Find(container, name)
	return st, ck, err
}
