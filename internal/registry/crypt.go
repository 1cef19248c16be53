package registry

import (
	"bytes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/hint"
)

// Encrypted checkpoints. Every blob (the config and each file and chunk)
// is sealed with ChaCha20-Poly1305 under a 32-byte data key, with the hex
// sha256 of its clear bytes (for the config, "manifest.json") as the
// associated data and a nonce derived from the key and those bytes
// (HMAC-SHA256), so that the same chunk sealed under the same key is the
// same blob: pushes that share a data key share their unchanged chunks,
// as clear pushes do. A sealed blob is the 12-byte nonce, then the sealed
// bytes (16 more than the clear ones). The data key is the first layer,
// encrypted with age to the push's recipients or passphrase; the pusher
// keeps it in the store (KeysDir), one per repository and recipient set.
// Equal chunks show as equal blobs, and the names, sizes and dates of the
// OCI manifest are in the clear; the bytes are not.

// Media types of encrypted checkpoints: the clear ones with this suffix,
// and the data key.
const (
	EncryptedSuffix = ".encrypted"
	KeyMediaType    = "application/vnd.ckpt.checkpoint.key.v1+age"
)

// maxSealed is the largest file an encrypted push seals (in memory): the
// files of a checkpoint of format 3 or later are chunks or small ones.
const maxSealed = 64 << 20

// Encryption says to whom a push encrypts.
type Encryption struct {
	// Recipients can decrypt: age recipients, or one scrypt recipient
	// (a passphrase).
	Recipients []age.Recipient
	// Set names the recipients (their texts; for a passphrase, something
	// derived from it): pushes to one repository for the same set reuse
	// their data key.
	Set []string
	// KeyDir keeps the data keys (the store's KeysDir).
	KeyDir string
}

// Decryption says how a pull decrypts.
type Decryption struct {
	Identities []age.Identity
}

// ErrEncrypted is an encrypted checkpoint and nothing to decrypt it with.
var ErrEncrypted = errors.New("the checkpoint is encrypted, and no identity or passphrase was given to decrypt it")

// dataKey returns the data key of pushes to repo for e's recipients,
// making it the first time.
func dataKey(repo string, e *Encryption) ([]byte, error) {
	set := slices.Clone(e.Set)
	slices.Sort(set)
	id := sha256.Sum256([]byte("ckpt registry data key\n" + repo + "\n" + strings.Join(set, "\n")))
	path := filepath.Join(e.KeyDir, hex.EncodeToString(id[:]))
	if k, err := os.ReadFile(path); err == nil && len(k) == chacha20poly1305.KeySize {
		return k, nil
	}
	k := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(e.KeyDir, 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(path, k, 0o600, atomicfile.Replace); err != nil {
		return nil, err
	}
	return k, nil
}

// keyBlob is the data key k encrypted to e's recipients.
func keyBlob(k []byte, e *Encryption) ([]byte, error) {
	var b bytes.Buffer
	w, err := age.Encrypt(&b, e.Recipients...)
	if err != nil {
		return nil, hint.Wrap(fmt.Errorf("cannot encrypt: %w", err), "a passphrase goes alone, without recipients")
	}
	if _, err := w.Write(k); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// openKey decrypts the data key in blob with d.
func openKey(blob []byte, d *Decryption) ([]byte, error) {
	if d == nil || len(d.Identities) == 0 {
		return nil, hint.Wrap(ErrEncrypted, "give --identity FILE (the private key of one of the push's recipients) or --passphrase-file FILE")
	}
	r, err := age.Decrypt(bytes.NewReader(blob), d.Identities...)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, hint.Wrap(fmt.Errorf("cannot decrypt the checkpoint: no identity matches: %w", err), "give the private key of one of the push's recipients, or the passphrase it was pushed with")
	}
	if err != nil {
		return nil, refuse(ErrInvalid, "its data key: %v", err)
	}
	k, err := io.ReadAll(io.LimitReader(r, chacha20poly1305.KeySize+1))
	if err != nil {
		return nil, refuse(ErrInvalid, "its data key: %v", err)
	}
	if len(k) != chacha20poly1305.KeySize {
		return nil, refuse(ErrInvalid, "its data key has %d bytes, not %d", len(k), chacha20poly1305.KeySize)
	}
	return k, nil
}

// sealer seals and opens blobs under one data key.
type sealer struct {
	key  []byte
	aead cipher.AEAD
}

func newSealer(k []byte) (*sealer, error) {
	a, err := chacha20poly1305.New(k)
	if err != nil {
		return nil, err
	}
	return &sealer{key: k, aead: a}, nil
}

// seal returns the blob of clear bytes b, whose label is its hex sha256
// (or "manifest.json").
func (s *sealer) seal(b []byte, label string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(b)
	nonce := m.Sum(nil)[:chacha20poly1305.NonceSize]
	out := make([]byte, 0, len(nonce)+len(b)+s.aead.Overhead())
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, b, []byte(label))
}

// open returns the clear bytes of blob, which must have been sealed with
// label.
func (s *sealer) open(blob []byte, label string) ([]byte, error) {
	if len(blob) < chacha20poly1305.NonceSize+s.aead.Overhead() {
		return nil, errors.New("too short for a sealed blob")
	}
	n := chacha20poly1305.NonceSize
	return s.aead.Open(nil, blob[:n], blob[n:], []byte(label))
}

// sealedSize is the size of the blob of n clear bytes.
func sealedSize(n int64) int64 {
	return n + chacha20poly1305.NonceSize + chacha20poly1305.Overhead
}
