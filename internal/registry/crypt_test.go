package registry

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

// The same chunk under the same data key is the same blob (so pushes
// share it); another key or label opens nothing, nor does a flipped byte.
func TestSeal(t *testing.T) {
	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := &Encryption{Recipients: []age.Recipient{id.Recipient()}, Set: []string{id.Recipient().String()}, KeyDir: filepath.Join(dir, "keys")}
	k1, err := dataKey("reg.example/web", e)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := dataKey("reg.example/web", e)
	k3, _ := dataKey("reg.example/db", e)
	if !bytes.Equal(k1, k2) || bytes.Equal(k1, k3) {
		t.Fatal("a repository's data key is not kept, or is another's")
	}
	if st, err := os.Stat(e.KeyDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("keys directory: %v %v", st, err)
	}
	s1, _ := newSealer(k1)
	s3, _ := newSealer(k3)
	clear := bytes.Repeat([]byte("memory "), 1000)
	a, b := s1.seal(clear, "x"), s1.seal(clear, "x")
	if !bytes.Equal(a, b) || int64(len(a)) != sealedSize(int64(len(clear))) || bytes.Contains(a, []byte("memory memory")) {
		t.Fatal("sealing is not deterministic, not of the size said, or not sealed")
	}
	if got, err := s1.open(a, "x"); err != nil || !bytes.Equal(got, clear) {
		t.Fatalf("open: %v", err)
	}
	if _, err := s1.open(a, "y"); err == nil {
		t.Error("opened under another label")
	}
	if _, err := s3.open(a, "x"); err == nil {
		t.Error("opened with another key")
	}
	a[len(a)/2] ^= 1
	if _, err := s1.open(a, "x"); err == nil {
		t.Error("opened a flipped byte")
	}

	kb, err := keyBlob(k1, e)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openKey(kb, &Decryption{Identities: []age.Identity{id}}); err != nil || !bytes.Equal(got, k1) {
		t.Fatalf("openKey: %v", err)
	}
	if _, err := openKey(kb, &Decryption{}); !errors.Is(err, ErrEncrypted) {
		t.Errorf("no identity: %v", err)
	}
	other, _ := age.GenerateX25519Identity()
	if _, err := openKey(kb, &Decryption{Identities: []age.Identity{other}}); err == nil {
		t.Error("another identity opened the data key")
	}
}
