package transfer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/ckpt-dev/ckpt/internal/hint"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Keys as people have them, in files and on the command line, encrypt and
// decrypt.
func TestKeysFromFiles(t *testing.T) {
	ck := sample(t)
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ageKeyFile := writeFile(t, "key.txt", "# created: 2026-11-27T12:00:00Z\n# public key: "+x.Recipient().String()+"\n"+x.String()+"\n")
	edKeyFile := writeFile(t, "id_ed25519", string(sshPrivateKeyFile(t, edPriv, "")))
	rsaKeyFile := writeFile(t, "id_rsa", string(sshPrivateKeyFile(t, rsaKey, "")))
	edLine, rsaLine := sshPublicKeyLine(t, edPub), sshPublicKeyLine(t, &rsaKey.PublicKey)
	recipientsFile := writeFile(t, "recipients", "# the backup host\n\n"+rsaLine+"\n  "+edLine+"  \n")

	for _, tc := range []struct {
		name       string
		recipients []string
		identity   string
	}{
		{"age recipient", []string{x.Recipient().String()}, ageKeyFile},
		{"ssh-ed25519 line", []string{edLine}, edKeyFile},
		{"ssh-rsa line", []string{rsaLine}, rsaKeyFile},
		{"recipients file", []string{recipientsFile}, edKeyFile},
		{"recipients file, rsa", []string{recipientsFile}, rsaKeyFile},
		{"several", []string{x.Recipient().String(), recipientsFile}, ageKeyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := ParseRecipients(tc.recipients)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := ReadIdentities(tc.identity)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if _, err := Export(context.Background(), &b, ck, ExportOptions{Recipients: rs}); err != nil {
				t.Fatal(err)
			}
			got, _, err := importBytes(newStore(t), b.Bytes(), ImportOptions{Identities: ids})
			if err != nil {
				t.Fatal(err)
			}
			sameCheckpoint(t, ck, got)
		})
	}
}

func TestParseRecipientsRefuses(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		value, want string
	}{
		{"age1notarecipient", `recipient "age1notarecipient": malformed recipient`},
		{"ssh-ed25519 AAAAnotakey", `recipient "ssh-ed25519 AAAAnotakey": not an SSH public key`},
		{sshPublicKeyLine(t, &ecKey.PublicKey), "unsupported SSH key type: use an ed25519 or RSA key"},
		{filepath.Join(t.TempDir(), "missing"), "is not an age recipient (age1...), an SSH public key (ssh-ed25519 ..., ssh-rsa ...), or a file"},
		{writeFile(t, "empty", "# nothing\n\n"), "holds no recipients"},
		// A private key given by mistake is not repeated in the error.
		{writeFile(t, "private", x.String()+"\n"), "line 1: not an SSH public key"},
	} {
		_, err := ParseRecipients([]string{tc.value})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRecipients(%.40q) = %v, want %q", tc.value, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
			t.Errorf("the error repeats the private key: %v", err)
		}
		if hint.Of(err) == "" {
			t.Errorf("%v: no hint", err)
		}
	}
	if rs, err := ParseRecipients(nil); err != nil || len(rs) != 0 {
		t.Errorf("ParseRecipients(nil) = %v, %v", rs, err)
	}
}

func TestReadIdentitiesRefuses(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := age.GenerateX25519Identity()
	for _, tc := range []struct {
		path, want, hint string
	}{
		{filepath.Join(t.TempDir(), "missing"), "no such file or directory", ""},
		{writeFile(t, "pub", x.Recipient().String()+"\n"), "identity file", "give an age identity file"},
		{writeFile(t, "empty", ""), "no identities found", "give an age identity file"},
		{writeFile(t, "protected", string(sshPrivateKeyFile(t, edPriv, "secret"))), "the SSH private key is protected by a passphrase", "ckpt does not ask for passphrases"},
		{writeFile(t, "encrypted", "age-encryption.org/v1\n-> scrypt xxx 18\n"), "is itself encrypted with age", "decrypt it first"},
		{writeFile(t, "bad pem", "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n-----END OPENSSH PRIVATE KEY-----\n"), "identity file", "give an age identity file"},
	} {
		_, err := ReadIdentities(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(hint.Of(err), tc.hint) {
			t.Errorf("ReadIdentities(%s) = %v (hint %q), want %q (hint %q)", filepath.Base(tc.path), err, hint.Of(err), tc.want, tc.hint)
		}
	}
}
