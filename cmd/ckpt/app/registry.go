package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/registry"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/transfer"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// registryFlags say how to reach a registry: push, pull and resume --from
// take them.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ca-file", Usage: "trust the certificate authorities in PEM `FILE` for the registry (besides the system's and /etc/docker/certs.d/HOST/ca.crt)"},
		&cli.BoolFlag{Name: "insecure", Usage: "do not verify the registry's TLS certificate"},
		&cli.BoolFlag{Name: "plain-http", Usage: "talk plain HTTP to the registry, not HTTPS"},
	}
}

func registryOptions(c *cli.Context) registry.Options {
	r, _ := reporter(c)
	return registry.Options{CAFile: c.String("ca-file"), Insecure: c.Bool("insecure"), PlainHTTP: c.Bool("plain-http"), Progress: r, Warn: func(s string) { fmt.Fprintf(c.App.ErrWriter, "ckpt: warning: %s\n", s) }}
}

// encryptFlags are push's: to whom it encrypts.
func encryptFlags() []cli.Flag {
	return []cli.Flag{
		&cli.GenericFlag{Name: "recipient", Aliases: []string{"r"}, Value: &repeated{},
			Usage: "encrypt to `RECIPIENT`: an age recipient (age1...), an SSH public key (ssh-ed25519 or ssh-rsa), or a file of them; repeatable"},
		&cli.StringFlag{Name: "passphrase-file", Usage: "encrypt with the passphrase on the first line of `FILE`"},
	}
}

// decryptFlags are pull's and resume's: how to decrypt.
func decryptFlags() []cli.Flag {
	return []cli.Flag{
		&cli.GenericFlag{Name: "identity", Aliases: []string{"i"}, Value: &repeated{},
			Usage: "decrypt an encrypted checkpoint with the private key in `FILE`: an age identity file or an SSH private key; repeatable"},
		&cli.StringFlag{Name: "passphrase-file", Usage: "decrypt an encrypted checkpoint with the passphrase on the first line of `FILE`"},
	}
}

// encryption is what push's flags ask for, or nil.
func encryption(c *cli.Context, st *store.Store) (*registry.Encryption, error) {
	values := *c.Generic("recipient").(*repeated)
	passFile := c.String("passphrase-file")
	if len(values) == 0 && passFile == "" {
		return nil, nil
	}
	if len(values) > 0 && passFile != "" {
		return nil, usagef("--recipient and --passphrase-file do not go together: give one of them")
	}
	e := &registry.Encryption{KeyDir: filepath.Join(st.Root, format.KeysDir)}
	if passFile != "" {
		pass, err := readPassphrase(passFile)
		if err != nil {
			return nil, err
		}
		r, err := age.NewScryptRecipient(pass)
		if err != nil {
			return nil, err
		}
		e.Recipients, e.Set = []age.Recipient{r}, []string{"passphrase\n" + pass}
		return e, nil
	}
	var err error
	if e.Recipients, err = transfer.ParseRecipients(values); err != nil {
		return nil, err
	}
	for _, v := range values {
		if b, err := os.ReadFile(v); err == nil {
			v = string(b) // a file of recipients: what it holds
		}
		e.Set = append(e.Set, v)
	}
	return e, nil
}

// decryption is what pull's and resume's flags give to decrypt with.
func decryption(c *cli.Context) (*registry.Decryption, error) {
	ids, pass, err := decryptFlagValues(c)
	if err != nil || pass == "" {
		return &registry.Decryption{Identities: ids}, err
	}
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, err
	}
	return &registry.Decryption{Identities: append(ids, id)}, nil
}

// pullOptions are the options of a pull from c's flags.
func pullOptions(c *cli.Context) (registry.PullOptions, error) {
	o := registry.PullOptions{Options: registryOptions(c)}
	var err error
	o.Decrypt, err = decryption(c)
	return o, err
}

// isRegistryRef says whether --from names a registry reference rather
// than a checkpoint: checkpoint names have no '/'.
func isRegistryRef(s string) bool { return strings.Contains(s, "/") }

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "upload a checkpoint to an OCI registry",
		ArgsUsage: "CONTAINER[:NAME] HOST/REPOSITORY[:TAG]",
		Description: `Uploads checkpoint NAME of CONTAINER (by default its newest complete one)
to an OCI registry, tagged TAG (by default the checkpoint's name), for ckpt
pull or ckpt resume --from on any host that can reach the registry. Only
the blobs the registry lacks are sent: the chunks of a checkpoint that
changed a little since the last push are mostly there already. The tag is
set last, so an interrupted push publishes nothing, and pushing again sends
only what is still missing.

Credentials come from the docker CLI (docker login HOST; credential helpers
included). Checkpoints hold the memory of the container's processes, and so
their keys, passwords and tokens: push them only to a private repository
that only their owners can read.`,
		Flags: append(append(registryFlags(), encryptFlags()...), progressFlags()...),
		Action: func(c *cli.Context) error {
			if err := flagsFirst(c); err != nil {
				return err
			}
			if c.NArg() != 2 {
				return usagef("push takes CONTAINER[:NAME] and HOST/REPOSITORY[:TAG]")
			}
			container, name, err := store.ParseRef(c.Args().Get(0))
			if err != nil {
				return usageError{err: err}
			}
			st, ck, err := openCheckpoint(c, container, name)
			if err != nil {
				return err
			}
			ref := c.Args().Get(1)
			opts := registryOptions(c)
			if opts.Encrypt, err = encryption(c, st); err != nil {
				return err
			}
			if opts.Signature, err = st.SignatureFor(ck); err != nil {
				return err
			}
			stats, err := registry.Push(c.Context, ck, ref, opts)
			if js := jsonOut(c); js != nil {
				js.result(pushResult{Container: ck.Container, Checkpoint: ck.Name, Ref: refString(ck.Container, ck.Name), Transfer: transferJSON(ref, stats)}, err)
				if err != nil {
					return errReported
				}
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "pushed %s to %s (%s): %s\n", refString(ck.Container, ck.Name), ref, stats.Digest, describeTransfer(stats, "sent", "the registry had"))
			return nil
		},
	}
}

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "add a checkpoint from an OCI registry",
		ArgsUsage: "HOST/REPOSITORY:TAG",
		Description: `Brings a checkpoint pushed by ckpt push into the store, under the container
and checkpoint names it was pushed with, fetching only the chunks the store
lacks. Every blob is checked against the checkpoint's manifest before it is
stored, and the manifest as ckpt import checks it; nothing is added unless
all of it arrived and matched. Pulling a checkpoint the store already has
does nothing.

Resume it with ckpt resume, or pull and resume in one step with
ckpt resume --from HOST/REPOSITORY:TAG. A pulled checkpoint was made
elsewhere: it comes back whole only when the store that pushed it signed it
and is trusted here (ckpt trust add); any other comes back as data only, in
a plain container, unless resumed with --trust. The output says which.`,
		Flags: append(append(registryFlags(), decryptFlags()...), progressFlags()...),
		Action: func(c *cli.Context) error {
			if err := flagsFirst(c); err != nil {
				return err
			}
			if c.NArg() != 1 {
				return usagef("pull takes one HOST/REPOSITORY:TAG")
			}
			st, err := store.Open(c.String("store"))
			if err != nil {
				return err
			}
			ref := c.Args().First()
			opts, err := pullOptions(c)
			if err != nil {
				return err
			}
			ck, stats, err := registry.Pull(c.Context, st, ref, opts)
			if js := jsonOut(c); js != nil {
				l := pullResult{Transfer: transferJSON(ref, stats)}
				if ck != nil {
					l.Container, l.Checkpoint, l.Ref, l.Trust = ck.Container, ck.Name, refString(ck.Container, ck.Name), &ck.Trust
				}
				js.result(l, err)
				if err != nil {
					return errReported
				}
				return nil
			}
			if err != nil {
				return err
			}
			return printArrival(c, st, ck, fmt.Sprintf("pulled %s from %s: %s", refString(ck.Container, ck.Name), ref, describeTransfer(stats, "received", "the store had")))
		},
	}
}

// describeTransfer says what a push or pull moved.
func describeTransfer(s registry.Stats, moved, had string) string {
	return fmt.Sprintf("%d blobs, %s; %s %s (%s), %d blobs (%s) %s, in %s",
		s.Blobs, units.Bytes(s.Bytes), moved, units.Bytes(s.Sent()), units.Rate(s.Sent(), s.Elapsed),
		s.Skipped, units.Bytes(s.SkippedBytes), had, units.Duration(s.Elapsed))
}

// pushResult is the result line of ckpt push --json.
type pushResult struct {
	Container  string        `json:"container"`
	Checkpoint string        `json:"checkpoint"`
	Ref        string        `json:"ref"`
	Transfer   *transferLine `json:"transfer"`
}

// pullResult is the result line of ckpt pull --json; the checkpoint is
// not known when the pull failed early.
type pullResult struct {
	Container  string        `json:"container,omitempty"`
	Checkpoint string        `json:"checkpoint,omitempty"`
	Ref        string        `json:"ref,omitempty"`
	Trust      *store.Trust  `json:"trust,omitempty"`
	Transfer   *transferLine `json:"transfer"`
}

// transferLine is the result of a push or pull in --json output.
type transferLine struct {
	Ref          string `json:"ref"`
	Digest       string `json:"digest,omitempty"`
	Blobs        int    `json:"blobs"`
	Bytes        int64  `json:"bytes"`
	Skipped      int    `json:"blobsSkipped"`
	SkippedBytes int64  `json:"bytesSkipped"`
	Sent         int64  `json:"bytesMoved"`
	ElapsedMS    int64  `json:"elapsedMs"`
}

func transferJSON(ref string, s registry.Stats) *transferLine {
	return &transferLine{Ref: ref, Digest: s.Digest, Blobs: s.Blobs, Bytes: s.Bytes, Skipped: s.Skipped,
		SkippedBytes: s.SkippedBytes, Sent: s.Sent(), ElapsedMS: s.Elapsed.Milliseconds()}
}
