package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/transfer"
	"github.com/ckpt-dev/ckpt/internal/units"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a checkpoint to one archive file, to move it to another host",
		ArgsUsage: "CONTAINER[:NAME]",
		Description: `Writes checkpoint NAME of CONTAINER (by default its newest complete one) as
one archive, for ckpt import on another host. Every file is checked against
the checkpoint's manifest on the way. The archive is compressed with zstd
unless --compress says otherwise, and encrypted with age to each --recipient,
or with the passphrase in --passphrase-file. Checkpoints hold the memory of
the container's processes, and so their keys, passwords and tokens: encrypt
every archive that leaves the host.

-o FILE writes FILE (mode 0600) only when the export is complete: nothing
is left behind on error or interruption; --overwrite replaces a FILE that
exists. -o - writes to standard output. The bytes written are shown about
once a second on a terminal.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the archive to `FILE`, or - for standard output"},
			&cli.StringFlag{Name: "compress", Value: string(transfer.Zstd), Usage: "compress with `ALGORITHM`: zstd, gzip or none"},
			&cli.GenericFlag{Name: "recipient", Aliases: []string{"r"}, Value: &repeated{},
				Usage: "encrypt to `RECIPIENT`: an age recipient (age1...), an SSH public key (ssh-ed25519 or ssh-rsa), or a file of them; repeatable"},
			&cli.StringFlag{Name: "passphrase-file", Usage: "encrypt with the passphrase on the first line of `FILE`"},
			&cli.BoolFlag{Name: "overwrite", Usage: "replace the -o file if it exists"},
			&cli.BoolFlag{Name: "force", Hidden: true, Usage: "the old name of --overwrite"},
		}, progressFlags()...),
		Action: func(c *cli.Context) error {
			if err := flagsFirst(c); err != nil {
				return err
			}
			if c.NArg() != 1 {
				return usagef("export takes one CONTAINER[:NAME]")
			}
			container, name, err := store.ParseRef(c.Args().First())
			if err != nil {
				return usageError{err: err}
			}
			output := c.String("output")
			if output == "" {
				return usagef("export needs -o FILE, or -o - for standard output")
			}
			comp, err := transfer.ParseCompression(c.String("compress"))
			if err != nil {
				return usagef("--compress takes zstd, gzip or none, not %q", c.String("compress"))
			}
			recipients := *c.Generic("recipient").(*repeated)
			passFile := c.String("passphrase-file")
			if len(recipients) > 0 && passFile != "" {
				return usagef("--recipient and --passphrase-file do not go together: give one of them")
			}
			if output == "-" && isTerminal(c.App.Writer) {
				return usagef("standard output is a terminal: redirect it, or give -o FILE")
			}
			if output == "-" && c.Bool("json") {
				return usagef("-o - writes the archive where --json writes its lines: give -o FILE")
			}
			overwrite := c.Bool("overwrite")
			if c.Bool("force") {
				warnDeprecated(c, "export --force", "--overwrite")
				overwrite = true
			}

			opts := transfer.ExportOptions{Compression: comp}
			if opts.Recipients, err = transfer.ParseRecipients(recipients); err != nil {
				return err
			}
			if passFile != "" {
				if opts.Passphrase, err = readPassphrase(passFile); err != nil {
					return err
				}
			}
			if output != "-" && !overwrite {
				if _, err := os.Lstat(output); err == nil {
					return exists(output)
				}
			}
			st, ck, err := openCheckpoint(c, container, name)
			if err != nil {
				return err
			}
			if opts.Signature, err = st.SignatureFor(ck); err != nil {
				return err
			}

			start := time.Now()
			js := jsonOut(c)
			m := startMeter(c, js, ck.Container, ck.Name, "export", 0)
			var stats transfer.Stats
			write := func(w io.Writer) (err error) {
				stats, err = transfer.Export(c.Context, m.writer(w), ck, opts)
				return err
			}
			where := "standard output"
			if output == "-" {
				err = write(c.App.Writer)
			} else {
				where = output
				existing := atomicfile.NoReplace
				if overwrite {
					existing = atomicfile.Replace
				}
				err = atomicfile.Write(output, 0o600, existing, write)
				if errors.Is(err, atomicfile.ErrExist) {
					err = exists(output)
				}
			}
			m.done()
			if err != nil {
				return err
			}
			took := time.Since(start)
			if js != nil {
				js.result(exportResult{Container: ck.Container, Checkpoint: ck.Name, Ref: refString(ck.Container, ck.Name),
					Output: output, Files: stats.Files, Bytes: stats.Bytes, ArchiveBytes: m.n.Load(),
					Compression: string(opts.Compression), Encryption: encryptionKind(opts), ElapsedMS: took.Milliseconds()}, nil)
				return nil
			}
			fmt.Fprintf(c.App.ErrWriter, "exported %s to %s: %d files, %s -> %s (%s) in %s\n",
				refString(ck.Container, ck.Name), where, stats.Files, units.Bytes(stats.Bytes), units.Bytes(m.n.Load()),
				describeExport(opts), units.Duration(took))
			return nil
		},
	}
}

// describeExport says how an archive was written: "zstd", "gzip, encrypted
// with a passphrase", ...
func describeExport(o transfer.ExportOptions) string {
	s := string(o.Compression)
	if o.Compression == transfer.None {
		s = "uncompressed"
	}
	switch n := len(o.Recipients); {
	case o.Passphrase != "":
		s += ", encrypted with a passphrase"
	case n == 1:
		s += ", encrypted to 1 recipient"
	case n > 1:
		s += fmt.Sprintf(", encrypted to %d recipients", n)
	}
	return s
}

// exportResult is the result line of ckpt export --json.
type exportResult struct {
	Container    string `json:"container"`
	Checkpoint   string `json:"checkpoint"`
	Ref          string `json:"ref"`
	Output       string `json:"output"`
	Files        int    `json:"files"`
	Bytes        int64  `json:"bytes"`
	ArchiveBytes int64  `json:"archiveBytes"`
	Compression  string `json:"compression"`
	Encryption   string `json:"encryption"`
	ElapsedMS    int64  `json:"elapsedMs"`
}

// encryptionKind says how an archive is encrypted: "none", "recipients"
// or "passphrase".
func encryptionKind(o transfer.ExportOptions) string {
	switch {
	case o.Passphrase != "":
		return "passphrase"
	case len(o.Recipients) > 0:
		return "recipients"
	}
	return "none"
}

func exists(path string) error {
	return hint.New(path+" already exists", "give another -o FILE, or --overwrite to replace it")
}

// readPassphrase returns the first line of the file at path, without its
// line ending.
func readPassphrase(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", hint.New("passphrase file "+path+": its first line is empty", "write the passphrase on the first line of the file")
	}
	return line, nil
}

// repeated is a flag that can be given many times. Unlike cli's slice
// flags, it does not split values at commas, which SSH key comments may
// hold.
type repeated []string

// serializedRepeated starts what Serialize returns.
const serializedRepeated = "repeated:"

func (r *repeated) Set(v string) error {
	// The command line library copies a flag's value to its aliases with
	// Set(Serialize()).
	if s, ok := strings.CutPrefix(v, serializedRepeated); ok {
		var all []string
		if err := json.Unmarshal([]byte(s), &all); err == nil {
			*r = all
			return nil
		}
	}
	*r = append(*r, v)
	return nil
}

func (r *repeated) String() string { return "" }

func (r *repeated) Serialize() string {
	b, _ := json.Marshal([]string(*r))
	return serializedRepeated + string(b)
}

// flagsFirst refuses what looks like a flag among the arguments. Main moves
// the command's own flags in front of its arguments (flagsBeforeArgs), so
// such an argument is a flag the command does not have.
func flagsFirst(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") && a != "-" {
			return usagef("flag provided but not defined: %s", a)
		}
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
