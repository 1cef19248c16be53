package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/fault"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/sign"
)

// SHA256 is the hex sha256 of what was written to f so far; of a chunked
// file, the sha256 of its chunk list, once it is closed.
func (f *File) SHA256() string {
	if f.cw != nil {
		return f.sum
	}
	return hex.EncodeToString(f.h.Sum(nil))
}

// Manifest completes m for a save into p and returns the manifest to pass
// to Commit: it sets m.Name to p's name, m.FormatVersion to format.Version
// and m.Files to the files written into p so far (by Create, WriteJSON and
// Adopt), sorted by path, and encodes m as indented JSON ending in a
// newline. Files written after Manifest make Commit refuse the manifest.
func (p *Pending) Manifest(m *format.Manifest) ([]byte, error) {
	m.Files = sortedFiles(p.files)
	m.FormatVersion = format.Version
	m.Name = p.Name
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(raw, '\n'), nil
}

// Commit writes manifest, byte for byte, and its checksum into p, and
// renames p into place as a checkpoint. The manifest is a save's, from
// Manifest, or an imported checkpoint's, stored unchanged so that its
// checksum and everything that refers to it stay valid. It must be of a
// format version this ckpt reads, name p, and list exactly the files
// written into p (same paths, sizes and sha256, as computed while they were
// written); otherwise Commit writes nothing and returns an error naming the
// first difference, and p is left for the caller to Abort. After Commit
// returns a checkpoint, it is complete and durable.
func (p *Pending) Commit(manifest []byte) (*Checkpoint, error) {
	var m format.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", format.ManifestFile, err)
	}
	switch {
	case m.FormatVersion < 1 || m.FormatVersion > format.Version:
		return nil, fmt.Errorf("%s: format version %d; this ckpt writes 1 to %d", format.ManifestFile, m.FormatVersion, format.Version)
	case m.Name != p.Name:
		return nil, fmt.Errorf("%s names checkpoint %q, not %q", format.ManifestFile, m.Name, p.Name)
	}
	if err := sameFiles(m.Files, p.files); err != nil {
		return nil, fmt.Errorf("checkpoint %s:%s: %w", p.container, p.Name, err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("checkpoint %s:%s: %w", p.container, p.Name, err)
	}
	origin := format.Origin{Imported: p.Imported, Time: time.Now().UTC()}
	originJSON, err := json.Marshal(origin)
	if err != nil {
		return nil, err
	}
	sig := p.Signature
	if p.Signer != nil {
		if sig, err = sign.Sign(p.Signer, manifest); err != nil {
			return nil, err
		}
	}
	if len(sig) > sign.MaxSignature {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", format.SignatureFile, len(sig), sign.MaxSignature)
	}
	sum := sha256.Sum256(manifest)
	writes := []struct {
		name string
		data []byte
	}{
		{format.OriginFile, originJSON},
		{format.ManifestFile, manifest},
		{format.ManifestSumFile, []byte(hex.EncodeToString(sum[:]) + "\n")},
	}
	if sig != nil {
		writes = append(writes, struct {
			name string
			data []byte
		}{format.SignatureFile, sig})
	}
	for _, w := range writes {
		if err := atomicfile.WriteFile(filepath.Join(p.dir, w.name), w.data, FileMode, atomicfile.Replace); err != nil {
			return nil, err
		}
	}
	if err := syncTree(p.dir); err != nil {
		return nil, err
	}
	if err := p.dirs.sync(); err != nil {
		return nil, err
	}
	fault.Point("store:commit")
	if err := os.Rename(p.dir, p.final); err != nil {
		return nil, err
	}
	if err := atomicfile.SyncDir(filepath.Dir(p.final)); err != nil {
		return nil, err
	}
	p.release()
	// The engine's files now in chunks: a crash before they are gone
	// leaves files the manifest does not list, which nothing reads.
	for _, rel := range p.replaced {
		os.Remove(filepath.Join(p.final, filepath.FromSlash(rel)))
	}
	ck := &Checkpoint{Container: p.container, Name: p.Name, Dir: p.final, Manifest: &m, Origin: origin, chunks: p.pool}
	ck.Trust = p.store.trustOf(ck)
	return ck, nil
}

// sortedFiles returns a copy of files sorted by path (nil for none).
func sortedFiles(files []format.File) []format.File {
	s := slices.Clone(files)
	slices.SortFunc(s, func(a, b format.File) int { return strings.Compare(a.Path, b.Path) })
	return s
}

// sameFiles says how the files a manifest lists differ from those written.
func sameFiles(listed, written []format.File) error {
	l, w := sortedFiles(listed), sortedFiles(written)
	for i := 0; i < len(l) || i < len(w); i++ {
		switch {
		case i > 0 && i < len(l) && l[i].Path == l[i-1].Path:
			return fmt.Errorf("%s lists %s twice", format.ManifestFile, l[i].Path)
		case i == len(w) || (i < len(l) && l[i].Path < w[i].Path):
			return fmt.Errorf("%s lists %s, which was not written", format.ManifestFile, l[i].Path)
		case i == len(l) || w[i].Path < l[i].Path:
			return fmt.Errorf("%s was written, and %s does not list it", w[i].Path, format.ManifestFile)
		case l[i].Size != w[i].Size:
			return fmt.Errorf("%s has %d bytes, %s says %d", w[i].Path, w[i].Size, format.ManifestFile, l[i].Size)
		case l[i].SHA256 != w[i].SHA256:
			return fmt.Errorf("%s: sha256 mismatch", w[i].Path)
		case !slices.Equal(l[i].Chunks, w[i].Chunks):
			return fmt.Errorf("%s: its chunks are not those %s lists", w[i].Path, format.ManifestFile)
		}
	}
	return nil
}
