package app

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/ckpt-dev/ckpt/internal/sign"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/restore"
)

func trustCommand() *cli.Command {
	return &cli.Command{
		Name:  "trust",
		Usage: "choose whose checkpoints come back whole",
		Description: `Every store signs the checkpoints it saves with a key of its own (made on
first use, in the store's keys/identity/ directory). A checkpoint from elsewhere
(ckpt import, ckpt pull, ckpt resume --from) comes back whole, with its
memory and everything its container asks for, only when the store that made
it is trusted here; any other comes back as data only, in a plain container.

On the host that saves:    ckpt trust key
On the host that resumes:  ckpt trust add NAME 'ssh-ed25519 AAAA...'

The keys are SSH keys and the signatures SSH signatures: ssh-keygen -Y
verify checks them too (security.md, in /usr/share/doc/ckpt or docs/ in ckpt's
source).`,
		Subcommands: []*cli.Command{
			{
				Name:      "key",
				Usage:     "print this store's public key, for ckpt trust add on other hosts",
				ArgsUsage: " ",
				Flags:     []cli.Flag{jsonFlag()},
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("trust key takes no arguments")
					}
					st, err := store.Open(c.String("store"))
					if err != nil {
						return err
					}
					line, err := st.PublicKeyLine()
					if err != nil {
						return err
					}
					if js := jsonOut(c); js != nil {
						k, comment, err := sign.ParseKey(line)
						if err != nil {
							return err
						}
						js.result(trustEntry{Key: authorizedKey(k), Fingerprint: sign.Fingerprint(k), Comment: comment}, nil)
						return nil
					}
					fmt.Fprintln(c.App.Writer, line)
					return nil
				},
			},
			{
				Name:      "add",
				Usage:     "trust the checkpoints signed by a key",
				ArgsUsage: "NAME KEY|FILE",
				Flags:     []cli.Flag{jsonFlag()},
				Description: `Trusts the checkpoints signed by KEY (a public key line, as ckpt trust key
prints it, or a file holding one, such as another store's
keys/identity/ckpt_ed25519.pub) under NAME, a name for people: the host, say.
Checkpoints already imported that it signed are trusted from now on.

A trusted signer's checkpoints run as they were saved, with their memory,
capabilities and host access: trust only stores whose root you trust.`,
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usagef("trust add takes NAME and KEY (a public key line, or a file holding one)")
					}
					name, keyArg := c.Args().Get(0), c.Args().Get(1)
					line := keyArg
					if !strings.Contains(keyArg, " ") {
						b, err := readSmallFile(keyArg)
						if err != nil {
							return usagef("%s is neither a public key line nor a readable file: %v", keyArg, err)
						}
						line = strings.TrimSpace(string(b))
					}
					key, comment, err := sign.ParseKey(line)
					if err != nil {
						return usagef("%s: %v", keyArg, err)
					}
					st, err := store.Open(c.String("store"))
					if err != nil {
						return err
					}
					if err := st.AddSigner(sign.Signer{Name: name, Key: key, Comment: comment}); err != nil {
						return err
					}
					if js := jsonOut(c); js != nil {
						js.result(trustEntry{Name: name, Fingerprint: sign.Fingerprint(key), Comment: comment}, nil)
						return nil
					}
					fmt.Fprintf(c.App.Writer, "trusted %s: key %s (%s); its checkpoints come back whole\n", name, sign.Fingerprint(key), orUnknown(comment, "no comment"))
					return nil
				},
			},
			{
				Name:      "ls",
				Usage:     "list the trusted signers",
				ArgsUsage: " ",
				Flags:     []cli.Flag{jsonFlag()},
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("trust ls takes no arguments")
					}
					st, err := store.Open(c.String("store"))
					if err != nil {
						return err
					}
					signers, err := st.Signers()
					if err != nil {
						return err
					}
					own, err := st.PublicKey()
					if err != nil {
						return err
					}
					var out []trustEntry
					if own != nil {
						out = append(out, trustEntry{Name: store.SelfSigner, Fingerprint: sign.Fingerprint(own), Key: authorizedKey(own)})
					}
					for _, s := range signers {
						out = append(out, trustEntry{Name: s.Name, Fingerprint: sign.Fingerprint(s.Key), Key: authorizedKey(s.Key), Comment: s.Comment})
					}
					if js := jsonOut(c); js != nil {
						for _, e := range out {
							js.item(e)
						}
						return nil
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tKEY\tCOMMENT")
					for _, e := range out {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, e.Fingerprint, e.Comment)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "rm",
				Usage:     "stop trusting a signer",
				ArgsUsage: "NAME|FINGERPRINT",
				Flags:     []cli.Flag{jsonFlag()},
				Description: `Stops trusting the signer named NAME, or whose key has FINGERPRINT
(SHA256:..., as ckpt trust ls shows it). Its checkpoints already imported
come back as data only from now on.`,
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("trust rm takes one NAME or key FINGERPRINT")
					}
					st, err := store.Open(c.String("store"))
					if err != nil {
						return err
					}
					s, err := st.RemoveSigner(c.Args().First())
					if err != nil {
						return err
					}
					if js := jsonOut(c); js != nil {
						js.result(trustEntry{Name: s.Name, Fingerprint: sign.Fingerprint(s.Key)}, nil)
						return nil
					}
					fmt.Fprintf(c.App.Writer, "no longer trusted: %s, key %s\n", s.Name, sign.Fingerprint(s.Key))
					return nil
				},
			},
		},
	}
}

// trustEntry is a signer, or the store's key, under --json.
type trustEntry struct {
	Name        string `json:"name,omitempty"`
	Fingerprint string `json:"fingerprint"`
	Key         string `json:"key,omitempty"`
	Comment     string `json:"comment,omitempty"`
}

func authorizedKey(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// readSmallFile reads a key file, at most 64 KiB.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<10))
}

// printArrival says what came into the store (an import, a pull) and how
// it will come back: whole, or as data only, and what it then goes
// without.
func printArrival(c *cli.Context, st *store.Store, ck *store.Checkpoint, what string) error {
	resume := "ckpt resume " + refString(ck.Container, ck.Name)
	if latest, err := st.Latest(ck.Container); err == nil && latest.Name == ck.Name {
		resume = "ckpt resume " + ck.Container
	}
	w := c.App.Writer
	t := ck.Trust
	if t.Trusted() {
		fmt.Fprintf(w, "%s; %s: it comes back whole; resume it with: %s\n", what, t, resume)
		return nil
	}
	fmt.Fprintf(w, "%s; not trusted (%s): it comes back as data only, in a plain container; resume it with: %s\n", what, t.Reason, resume)
	powers, err := restore.Powers(ck)
	if err != nil {
		// It is in the store; resume finds it damaged and says so.
		fmt.Fprintf(w, "its container's configuration cannot be read: %v\n", err)
	} else if len(powers) > 0 {
		fmt.Fprintf(w, "its container asks for more, which it does not get unless trusted:\n")
		for _, p := range powers {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	fmt.Fprintf(w, "to resume it whole, %s\n", trustAdvice(t))
	return nil
}

// trustAdvice says how to have a checkpoint of trust t come back whole.
func trustAdvice(t store.Trust) string {
	switch {
	case t.Key != "":
		return "check that " + t.Key + " is the key of the store that made it (ckpt trust key there prints it), then: ckpt trust add NAME 'KEY'; or resume with --trust"
	case t.Reason == store.ReasonUnsigned:
		return "have it exported or pushed again by a ckpt that signs, and trust that store's key (ckpt trust key there, ckpt trust add NAME 'KEY' here); or resume with --trust"
	}
	return "get it again from where it came from: it is not what its signer signed; or resume with --trust"
}
