package sign

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
)

// Signer is one entry of an allowed-signers file: a name people know the
// key by, the key, and a comment.
type Signer struct {
	Name    string
	Key     ssh.PublicKey
	Comment string
}

// String is the signer as a line of an allowed-signers file.
func (s Signer) String() string {
	line := fmt.Sprintf("%s namespaces=%q %s", s.Name, Namespace, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.Key))))
	if s.Comment != "" {
		line += " " + s.Comment
	}
	return line
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$`)

// ValidName reports whether name can name a signer: letters, digits and
// _.@:- , 64 characters at most, no spaces or commas (ssh-keygen's
// principals are a comma-separated list).
func ValidName(name string) bool { return validName.MatchString(name) }

// ParseKey parses a public key line as in authorized_keys or a .pub file
// ("ssh-ed25519 AAAA... comment") and returns the key and its comment.
func ParseKey(line string) (ssh.PublicKey, string, error) {
	k, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, "", fmt.Errorf("not an SSH public key: %v", err)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, "", errors.New("more than one key")
	}
	switch k.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
	default:
		return nil, "", fmt.Errorf("key type %s: use an ed25519, ECDSA or RSA key", k.Type())
	}
	return k, comment, nil
}

// ParseAllowed parses an allowed-signers file (ssh-keygen(1), ALLOWED
// SIGNERS): per line, principals, options, a key and a comment. Lines
// whose namespaces= option does not admit Namespace, and cert-authority
// lines, are not checkpoint signers and are left out; a line that does not
// parse is an error naming it.
func ParseAllowed(data []byte) ([]Signer, error) {
	var out []Signer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, ok, err := parseAllowedLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

func parseAllowedLine(line string) (Signer, bool, error) {
	principals, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	var opts string
	if !isKeyType(firstField(rest)) {
		opts, rest = splitOptions(rest)
	}
	k, comment, err := ParseKey(rest)
	if err != nil {
		return Signer{}, false, err
	}
	admits := true
	for _, o := range splitList(opts) {
		name, value, _ := strings.Cut(o, "=")
		switch strings.ToLower(name) {
		case "cert-authority":
			return Signer{}, false, nil
		case "namespaces":
			admits = false
			for _, ns := range strings.Split(strings.Trim(value, `"`), ",") {
				if ok, _ := filepath.Match(ns, Namespace); ok {
					admits = true
				}
			}
		}
	}
	return Signer{Name: principals, Key: k, Comment: comment}, admits, nil
}

func firstField(s string) string {
	f, _, _ := strings.Cut(s, " ")
	return f
}

func isKeyType(s string) bool {
	return strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-") || strings.HasPrefix(s, "sk-")
}

// splitOptions splits the options field, which may hold quoted spaces,
// from what follows it.
func splitOptions(s string) (opts, rest string) {
	quoted := false
	for i, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			return s[:i], strings.TrimSpace(s[i:])
		}
	}
	return s, ""
}

// splitList splits comma-separated options outside quotes.
func splitList(s string) []string {
	var out []string
	quoted, start := false, 0
	for i, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// ReadAllowed reads the allowed-signers file at path; a missing file
// lists no one.
func ReadAllowed(path string) ([]Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	s, err := ParseAllowed(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// WriteAllowed writes signers to path (mode 0600), atomically.
func WriteAllowed(path string, signers []Signer) error {
	var b strings.Builder
	b.WriteString("# Checkpoint signers this ckpt store trusts: managed with ckpt trust add|rm.\n")
	b.WriteString("# Each line is an ssh-keygen allowed signer (ssh-keygen -Y verify -f FILE -n " + Namespace + ").\n")
	for _, s := range signers {
		b.WriteString(s.String() + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(b.String()), 0o600, atomicfile.Replace)
}

// LoadOrCreate returns the signing key in the OpenSSH private key file at
// path, creating an ed25519 key with comment there (mode 0600, its
// directory 0700) and the public key beside it (path + ".pub") when there
// is none. Two processes that create it at once end up with the same key.
func LoadOrCreate(path, comment string) (ssh.Signer, error) {
	if s, err := Load(path); !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	pemKey, err := NewKey(comment)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(path, pemKey, 0o600, atomicfile.NoReplace); err != nil && !errors.Is(err, atomicfile.ErrExist) {
		return nil, fmt.Errorf("cannot create the store's signing key: %w", err)
	}
	s, err := Load(path)
	if err != nil {
		return nil, err
	}
	pub := ssh.MarshalAuthorizedKey(s.PublicKey())
	pub = append(bytes.TrimSpace(pub), []byte(" "+comment+"\n")...)
	if err := atomicfile.WriteFile(path+".pub", pub, 0o600, atomicfile.Replace); err != nil {
		return nil, err
	}
	return s, nil
}

// Load reads the OpenSSH private key file at path.
func Load(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
