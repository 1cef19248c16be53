// Package transfer moves checkpoints between stores, and so between hosts,
// as single self-describing archives: Export writes one checkpoint as an
// archive, Import reads one and commits it into a store.
//
// # Archive layout
//
// From the outside in:
//
//  1. Optional age encryption (https://age-encryption.org/v1), to X25519 or
//     SSH recipients or with a passphrase (scrypt). Import also reads the
//     ASCII-armored form ("-----BEGIN AGE ENCRYPTED FILE-----").
//  2. Optional compression: zstd (the default; one frame, with its checksum)
//     or gzip.
//  3. A POSIX tar archive (PAX format) whose entries are, in this order:
//     - ckpt-export.json: a JSON object
//     {"kind": "ckpt-export", "formatVersion": 1, "container": NAME,
//     "checkpoint": NAME, "created": TIME, "manifestSha256": HEX,
//     "signature": SIG}, where formatVersion is the store format of the
//     manifest (format.Version), created is the manifest's,
//     manifestSha256 is the sha256 of the manifest.json entry, and the
//     optional signature is the armored SSH signature of that entry by the
//     store that made the checkpoint (internal/sign; an importer decides
//     by it whether the checkpoint comes back whole: docs/security.md);
//     - manifest.json, byte for byte as in the store;
//     - manifest.json.sha256: the hex sha256 of manifest.json and a newline;
//     - every file the manifest lists, in the manifest's order, at its
//     manifest path (slash-separated, relative).
//
// Every entry is a regular file with mode 0600, uid and gid 0, no user or
// group names, and the manifest's created time as its modification time.
// There are no directory, link or device entries. The tar archive ends with
// its end-of-archive marker (two zero blocks).
//
// Import tells the layers apart by their first bytes: "age-encryption.org/v1"
// or "-----BEGIN AGE ENCRYPTED FILE-----" (age), 28 B5 2F FD (zstd), 1F 8B
// (gzip), anything else is read as tar. It refuses an archive that does not
// follow this layout exactly, and checks every byte it can: sizes and sha256
// of every file against the manifest, the manifest against both checksums,
// the tar padding, the end-of-archive marker, and the compression's and
// encryption's own checksums (what follows the compressed or encrypted stream
// is refused as damage; bytes after the end of a plain tar are ignored).
package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
)

// Compression of an export.
type Compression string

// Compressions.
const (
	Zstd Compression = "zstd"
	Gzip Compression = "gzip"
	None Compression = "none"
)

// ParseCompression returns the compression named s ("" is the default,
// zstd).
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case "":
		return Zstd, nil
	case Zstd, Gzip, None:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q: use zstd, gzip or none", s)
}

// Stats counts the payload of an archive: the checkpoint's files (not the
// manifest) and their bytes, uncompressed.
type Stats struct {
	Files int
	Bytes int64
}

// Names of the entries that precede the checkpoint's files.
const (
	// HeaderFile is the first entry: it says what the archive is.
	HeaderFile = "ckpt-export.json"
	// Kind is the value of the header's "kind".
	Kind = "ckpt-export"
)

// header is the content of HeaderFile.
type header struct {
	Kind string `json:"kind"`
	// FormatVersion is the store format of the manifest.
	FormatVersion int    `json:"formatVersion"`
	Container     string `json:"container"`
	Checkpoint    string `json:"checkpoint"`
	// Created is the manifest's created time, also every entry's mtime.
	Created time.Time `json:"created"`
	// ManifestSHA256 is the hex sha256 of the manifest.json entry.
	ManifestSHA256 string `json:"manifestSha256"`
	// Signature is the armored SSH signature of the manifest.json entry by
	// the store that made the checkpoint; empty for none.
	Signature string `json:"signature,omitempty"`
}

// Limits on what Import holds in memory.
const (
	maxHeaderSize   = 64 << 10
	maxManifestSize = 64 << 20
)

// reserved are the names a manifest may not list: they are the archive's or
// the checkpoint directory's own.
var reserved = map[string]bool{HeaderFile: true, format.ManifestFile: true, format.ManifestSumFile: true, format.OriginFile: true, format.SignatureFile: true}

// Kinds of archives Import refuses; test with errors.Is.
var (
	// ErrNotExport is a file that is not a ckpt export archive at all.
	ErrNotExport = errors.New("not a ckpt export archive")
	// ErrNewer is an archive written by a newer ckpt.
	ErrNewer = errors.New("the archive was written by a newer ckpt")
	// ErrTruncated is an archive that ends early.
	ErrTruncated = errors.New("the archive is truncated")
	// ErrDamaged is an archive whose bytes changed after it was written.
	ErrDamaged = errors.New("the archive is damaged")
	// ErrUnsafe is an archive with entries that ckpt export never writes and
	// that could reach outside the checkpoint: absolute paths, "..",
	// links, devices, FIFOs, directories.
	ErrUnsafe = errors.New("the archive is unsafe")
	// ErrInvalid is an archive whose entries do not agree with its manifest
	// or with the layout.
	ErrInvalid = errors.New("the archive is invalid")
	// ErrEncrypted is an encrypted archive and nothing to decrypt it with
	// (see DecryptError).
	ErrEncrypted = errors.New("the archive is encrypted, and no identity or passphrase was given to decrypt it")
	// ErrCannotEncrypt is an export whose recipients age refuses.
	ErrCannotEncrypt = errors.New("cannot encrypt")
	// ErrNoIdentityMatch is an encrypted archive that none of the given
	// identities or passphrases decrypts.
	ErrNoIdentityMatch = errors.New("cannot decrypt the archive: no identity matches")
)

// Hints for people, by kind.
var hints = map[error]string{
	ErrNotExport: "ckpt import reads the archives that ckpt export writes",
	ErrNewer:     "nothing was imported; import it with a ckpt at least as new as the one that exported it",
	ErrTruncated: "nothing was imported; the archive ends early: copy it again, whole (compare its size or sha256sum with the original)",
	ErrDamaged:   "nothing was imported; copy the archive again (compare its sha256sum with the original), or export the checkpoint again",
	ErrUnsafe:    "nothing was imported; ckpt export never writes such entries: this archive was made or altered by something else",
	ErrInvalid:   "nothing was imported; ckpt export never writes such archives: this one was made or altered by something else",
}

// archiveError is a refused archive: a kind (one of the Err values) and what
// exactly is wrong.
type archiveError struct {
	kind   error
	detail string
}

func (e *archiveError) Error() string {
	if e.detail == "" {
		return e.kind.Error()
	}
	return e.kind.Error() + ": " + e.detail
}

func (e *archiveError) Unwrap() error { return e.kind }

// refuse returns an error of kind, with the kind's hint.
func refuse(kind error, f string, args ...any) error {
	return hint.Wrap(&archiveError{kind: kind, detail: fmt.Sprintf(f, args...)}, hints[kind])
}

// ctxReader fails reads once ctx is done, so that long copies stop promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// entryTime is the modification time of every entry of an export of a
// checkpoint created at t. (tar cannot tell the zero time from the Unix
// epoch; no checkpoint has either.)
func entryTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0)
	}
	return t
}

// copyBufferSize is the size of the buffers files are copied with.
const copyBufferSize = 1 << 20
