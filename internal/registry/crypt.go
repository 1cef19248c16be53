package registry

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
// is sealed with ChaCha20-Poly1305 under a 32-byte key, with the hex
// sha256 of its clear bytes (for the config, "manifest.json") as the
// associated data and a nonce derived from those bytes (HMAC-SHA256 under
// a key of its own), so that the same chunk sealed under the same data key
// is the same blob: pushes that share a data key share their unchanged
// chunks, as clear pushes do. A sealed blob is the 12-byte nonce, then the
// sealed bytes (16 more than the clear ones). The data key is the first
// layer, encrypted with age to the push's recipients or passphrase; the
// pusher keeps it in the store (KeysDir), one per repository and recipient
// set. Equal chunks show as equal blobs, and the names, sizes and dates of
// the OCI manifest are in the clear; the bytes are not.
//
// The media type of the data key layer says how the keys of the sealing
// come from the data key. Version 2 (what pushes write) derives two
// independent subkeys with HKDF-SHA256, one for the nonce's HMAC and one
// for ChaCha20-Poly1305. Version 1 (what earlier pushes wrote, still read)
// used the data key itself for both.

// Media types of encrypted checkpoints: the clear ones with this suffix,
// and the data key, by version.
const (
	EncryptedSuffix = ".encrypted"
	// KeyMediaType is the data key of version 1: the data key is the key
	// of the nonce's HMAC and of the AEAD. Pulls still read it.
	KeyMediaType = "application/vnd.ckpt.checkpoint.key.v1+age"
	// KeyMediaTypeV2 is the data key of version 2: the nonce's HMAC and
	// the AEAD have subkeys of their own (HKDF). Pushes write it.
	KeyMediaTypeV2 = "application/vnd.ckpt.checkpoint.key.v2+age"
)

// The HKDF-SHA256 info strings of the subkeys of version 2 (no salt: the
// data key is random).
const (
	nonceKeyInfo = "ckpt registry v2 nonce"
	sealKeyInfo  = "ckpt registry v2 seal"
)

// keyVersion is the version of a data key layer of media type t: 1, 2, or
// 0 for a media type that is not a data key's.
func keyVersion(t string) int {
	switch t {
	case KeyMediaType:
		return 1
	case KeyMediaTypeV2:
		return 2
	}
	return 0
}

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

// saltFile, in the keys directory, holds the store's salt: 32 random
// bytes that name the key files.
const (
	saltFile = "salt"
	saltSize = 32
)

// dataKey returns the data key of pushes to repo for e's recipients,
// making it the first time. Its file in e.KeyDir is named by the hex
// HMAC-SHA256, under the store's salt, of the repository and the sorted
// set, so that the name says nothing of a passphrase without the salt. A
// key file of before the salt (named by the plain sha256 of the same text)
// is renamed to its salted name.
func dataKey(repo string, e *Encryption) ([]byte, error) {
	set := slices.Clone(e.Set)
	slices.Sort(set)
	text := []byte("ckpt registry data key\n" + repo + "\n" + strings.Join(set, "\n"))
	if err := os.MkdirAll(e.KeyDir, 0o700); err != nil {
		return nil, err
	}
	salt, err := keySalt(e.KeyDir)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, salt)
	m.Write(text)
	path := filepath.Join(e.KeyDir, hex.EncodeToString(m.Sum(nil)))
	k, err := readKey(path)
	if k != nil || (err != nil && !errors.Is(err, fs.ErrNotExist)) {
		return k, err
	}
	existing := atomicfile.NoReplace
	if err == nil {
		existing = atomicfile.Replace // there, and not a data key
	}
	legacy := sha256.Sum256(text)
	legacyPath := filepath.Join(e.KeyDir, hex.EncodeToString(legacy[:]))
	if lk, _ := readKey(legacyPath); lk != nil {
		// Another push may rename it first: either way the key is then
		// under the salted name.
		err := os.Rename(legacyPath, path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("renaming the data key %s: %w", legacyPath, err)
		}
		if err := atomicfile.SyncDir(e.KeyDir); err != nil {
			return nil, err
		}
		if k, _ := readKey(path); k != nil {
			return k, nil
		}
	}
	k = make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	err = atomicfile.WriteFile(path, k, 0o600, existing)
	if errors.Is(err, atomicfile.ErrExist) {
		// Another push made it in the meantime: use its key.
		if k, _ := readKey(path); k != nil {
			return k, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// readKey returns the data key in the file at path: nil and no error when
// the file is there but holds no data key.
func readKey(path string) ([]byte, error) {
	k, err := os.ReadFile(path)
	if err != nil || len(k) != chacha20poly1305.KeySize {
		return nil, err
	}
	return k, nil
}

// keySalt returns the salt of the keys directory dir, making it the first
// time. Pushes that make it at once all end up with the one written first.
func keySalt(dir string) ([]byte, error) {
	path := filepath.Join(dir, saltFile)
	s, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		s = make([]byte, saltSize)
		if _, err := rand.Read(s); err != nil {
			return nil, err
		}
		err = atomicfile.WriteFile(path, s, 0o600, atomicfile.NoReplace)
		if errors.Is(err, atomicfile.ErrExist) {
			s, err = os.ReadFile(path) // another push's, written first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the salt of the data keys: %w", err)
	}
	if len(s) != saltSize {
		return nil, hint.New(fmt.Sprintf("%s has %d bytes, not %d", path, len(s), saltSize),
			"remove it: the next encrypted pushes then make new data keys, and send their chunks again")
	}
	return s, nil
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
	nonceKey []byte // the HMAC key of the nonces
	aead     cipher.AEAD
}

// newSealer returns the sealer of data key k in a data key layer of media
// type keyMediaType, which says how its keys come from k.
func newSealer(k []byte, keyMediaType string) (*sealer, error) {
	nonceKey, sealKey := k, k
	switch keyVersion(keyMediaType) {
	case 1:
	case 2:
		var err error
		if nonceKey, sealKey, err = subkeys(k); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%q is not the media type of a data key", keyMediaType)
	}
	a, err := chacha20poly1305.New(sealKey)
	if err != nil {
		return nil, err
	}
	return &sealer{nonceKey: nonceKey, aead: a}, nil
}

// subkeys returns the keys of the nonce's HMAC and of the AEAD of version
// 2, derived from data key k.
func subkeys(k []byte) (nonceKey, sealKey []byte, err error) {
	if nonceKey, err = hkdf.Key(sha256.New, k, nil, nonceKeyInfo, chacha20poly1305.KeySize); err != nil {
		return nil, nil, err
	}
	if sealKey, err = hkdf.Key(sha256.New, k, nil, sealKeyInfo, chacha20poly1305.KeySize); err != nil {
		return nil, nil, err
	}
	return nonceKey, sealKey, nil
}

// seal returns the blob of clear bytes b, whose label is its hex sha256
// (or "manifest.json").
func (s *sealer) seal(b []byte, label string) []byte {
	m := hmac.New(sha256.New, s.nonceKey)
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
