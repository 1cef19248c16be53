package store

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// FuzzManifest feeds manifest.json contents, with a matching checksum file,
// to Load: it must never panic, and a manifest it accepts must have a valid
// format version and only file paths inside the checkpoint.
func FuzzManifest(f *testing.F) {
	for _, seed := range []string{
		`{"formatVersion": 1, "name": "cp", "files": [{"path": "criu/pages-1.img", "size": 4096, "sha256": "` + strings.Repeat("ab", 32) + `"}]}`,
		`{"formatVersion": 1, "files": [{"path": "../escape"}]}`,
		`{"formatVersion": 1, "files": [{"path": "/etc/passwd"}]}`,
		`{"formatVersion": 1, "files": [{"path": "a/../../b"}, {"path": ""}, {"path": "."}]}`,
		`{"formatVersion": 2}`,
		`{"formatVersion": 0}`,
		`{"formatVersion": -1, "files": null}`,
		`{"formatVersion": 1e400}`,
		`{"formatVersion": 1, "created": "not a time"}`,
		`null`,
		`[]`,
		``,
		"\xff\xfe{",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(s.checkpointsDir("web"), "cp")
		if err := os.MkdirAll(dir, DirMode); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(raw)
		if err := os.WriteFile(filepath.Join(dir, format.ManifestFile), raw, FileMode); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, format.ManifestSumFile), []byte(hex.EncodeToString(sum[:])+"\n"), FileMode); err != nil {
			t.Fatal(err)
		}
		ck, err := s.Load("web", "cp")
		if err != nil {
			return
		}
		if v := ck.Manifest.FormatVersion; v < 1 || v > format.Version {
			t.Errorf("accepted format version %d", v)
		}
		for _, f := range ck.Manifest.Files {
			if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
				t.Errorf("accepted file path %q", f.Path)
			}
			rel, err := filepath.Rel(ck.Dir, ck.Path(f.Path))
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
				t.Errorf("file path %q resolves to %s, outside %s", f.Path, ck.Path(f.Path), ck.Dir)
			}
		}
	})
}
