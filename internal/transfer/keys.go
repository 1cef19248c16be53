package transfer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"

	"github.com/ckpt-dev/ckpt/internal/hint"
)

// maxKeyFileSize caps what is read of a recipients or identity file.
const maxKeyFileSize = 16 << 20

const recipientHint = "give age recipients (age1..., as age-keygen prints), SSH public keys (ssh-ed25519 or ssh-rsa lines, as in ~/.ssh/id_ed25519.pub), or files holding them one per line"

// ParseRecipients parses the values of --recipient. Each is an age
// recipient ("age1..."), an SSH public key line ("ssh-ed25519 AAAA...",
// "ssh-rsa AAAA..."), or the path of a file holding such lines, one per
// line; empty lines and lines starting with "#" are ignored.
func ParseRecipients(values []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, v := range values {
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "age1") || isSSHKey(v) {
			r, err := parseRecipient(v)
			if err != nil {
				return nil, hint.Wrap(fmt.Errorf("recipient %q: %v", v, err), recipientHint)
			}
			out = append(out, r)
			continue
		}
		rs, err := readRecipients(v)
		if err != nil {
			return nil, hint.Wrap(err, recipientHint)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// isSSHKey tells an SSH public key line from a file name.
func isSSHKey(s string) bool {
	for _, p := range []string{"ssh-", "ecdsa-", "sk-"} {
		if strings.HasPrefix(s, p) && strings.Contains(s, " ") {
			return true
		}
	}
	return false
}

// parseRecipient parses one age recipient or SSH public key line.
func parseRecipient(s string) (age.Recipient, error) {
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		return age.ParseHybridRecipient(s)
	case strings.HasPrefix(s, "age1"):
		return age.ParseX25519Recipient(s)
	}
	r, err := agessh.ParseRecipient(s)
	if err != nil {
		// agessh's message repeats the whole line.
		if _, _, _, _, perr := ssh.ParseAuthorizedKey([]byte(s)); perr != nil {
			return nil, fmt.Errorf("not an SSH public key: %v", perr)
		}
		return nil, errors.New("unsupported SSH key type: use an ed25519 or RSA key")
	}
	return r, nil
}

// readRecipients reads a recipients file.
func readRecipients(path string) ([]age.Recipient, error) {
	b, err := readKeyFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("recipient %q is not an age recipient (age1...), an SSH public key (ssh-ed25519 ..., ssh-rsa ...), or a file", path)
	} else if err != nil {
		return nil, err
	}
	var out []age.Recipient
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxKeyFileSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := parseRecipient(line)
		if err != nil {
			// Not the line itself: it may be a private key given by mistake.
			return nil, fmt.Errorf("recipients file %s, line %d: %v", path, n, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("recipients file %s: %v", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("recipients file %s holds no recipients", path)
	}
	return out, nil
}

// ReadIdentities reads the private keys of an identity file: an age
// identity file (lines "AGE-SECRET-KEY-1...", as age-keygen writes; empty
// lines and lines starting with "#" are ignored) or an SSH private key
// (ed25519 or RSA) without a passphrase.
func ReadIdentities(path string) ([]age.Identity, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	const usage = "give an age identity file (AGE-SECRET-KEY-1..., as age-keygen writes) or an SSH private key (ed25519 or RSA) without a passphrase"
	trimmed := bytes.TrimSpace(b)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")) && bytes.Contains(trimmed, []byte("PRIVATE KEY-----")):
		id, err := agessh.ParseIdentity(trimmed)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, hint.Wrap(fmt.Errorf("identity file %s: the SSH private key is protected by a passphrase", path),
				"ckpt does not ask for passphrases: use an age identity file (age-keygen), or a copy of the key without a passphrase that only root can read")
		}
		if err != nil {
			return nil, hint.Wrap(fmt.Errorf("identity file %s: %v", path, err), usage)
		}
		return []age.Identity{id}, nil
	case bytes.HasPrefix(trimmed, ageMagic) || bytes.HasPrefix(trimmed, armorMagic):
		return nil, hint.Wrap(fmt.Errorf("identity file %s is itself encrypted with age", path),
			"decrypt it first (age -d -o KEYFILE), to a file only root can read")
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, hint.Wrap(fmt.Errorf("identity file %s: %v", path, err), usage)
	}
	return ids, nil
}

// readKeyFile reads a key file of at most maxKeyFileSize bytes.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a key file", path, maxKeyFileSize)
	}
	return b, nil
}
