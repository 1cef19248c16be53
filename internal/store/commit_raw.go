package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/format"
)

// SHA256 is the hex sha256 of what was written to f so far.
func (f *File) SHA256() string { return hex.EncodeToString(f.h.Sum(nil)) }

// CommitRaw is Commit for a manifest written elsewhere, an imported
// checkpoint's: manifest is stored byte for byte, so its checksum and
// everything that refers to it stay valid. The manifest must name p and
// list exactly the files written into p (same paths, sizes and sha256, as
// computed while they were written); otherwise CommitRaw writes nothing and
// returns an error naming the first difference. After CommitRaw returns a
// checkpoint, it is complete and durable.
func (p *Pending) CommitRaw(manifest []byte) (*Checkpoint, error) {
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
	sum := sha256.Sum256(manifest)
	for _, w := range []struct {
		name string
		data []byte
	}{
		{format.ManifestFile, manifest},
		{format.ManifestSumFile, []byte(hex.EncodeToString(sum[:]) + "\n")},
	} {
		if err := writeFileSync(filepath.Join(p.dir, w.name), w.data); err != nil {
			return nil, err
		}
	}
	if err := syncTree(p.dir); err != nil {
		return nil, err
	}
	if err := os.Rename(p.dir, p.final); err != nil {
		return nil, err
	}
	if err := atomicfile.SyncDir(filepath.Dir(p.final)); err != nil {
		return nil, err
	}
	return p.Checkpoint(&m), nil
}

// sameFiles says how the files a manifest lists differ from those written.
func sameFiles(listed, written []format.File) error {
	sorted := func(fs []format.File) []format.File {
		s := append([]format.File(nil), fs...)
		sort.Slice(s, func(i, j int) bool { return s[i].Path < s[j].Path })
		return s
	}
	l, w := sorted(listed), sorted(written)
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
		}
	}
	return nil
}
