package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// rawManifest is the manifest of a checkpoint named name holding files,
// written by hand with its own formatting (not as Manifest would), as an
// imported checkpoint's is.
func rawManifest(t *testing.T, name string, files map[string]string) []byte {
	t.Helper()
	m := format.Manifest{FormatVersion: format.Version, Name: name, Mode: format.ModeHot,
		Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Container: format.Container{Name: "web"}}
	for path, data := range files {
		s := sha256.Sum256([]byte(data))
		m.Files = append(m.Files, format.File{Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(s[:])})
	}
	raw, err := json.Marshal(m) // compact: unlike Manifest's
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func writeAll(t *testing.T, p *Pending, files map[string]string) {
	t.Helper()
	for path, data := range files {
		f, err := p.Create(path)
		must(t, err)
		_, err = f.Write([]byte(data))
		must(t, err)
		if got, want := f.SHA256(), sum(data); got != want {
			t.Errorf("%s: SHA256() = %s, want %s", path, got, want)
		}
		must(t, f.Close())
	}
}

// An imported checkpoint's manifest is committed byte for byte.
func TestCommitImported(t *testing.T) {
	s := newStore(t)
	files := map[string]string{"criu/pages-1.img": "pages", "container.json": "{}", "empty": ""}
	raw := rawManifest(t, "cp1", files)
	p, err := s.Begin("web", "cp1")
	must(t, err)
	writeAll(t, p, files)
	ck, err := p.Commit(raw)
	must(t, err)
	if ck.Container != "web" || ck.Name != "cp1" || len(ck.Manifest.Files) != 3 {
		t.Errorf("Commit returned %+v", ck)
	}
	// The manifest is stored byte for byte, with its checksum.
	got, err := os.ReadFile(filepath.Join(ck.Dir, format.ManifestFile))
	must(t, err)
	if !bytes.Equal(got, raw) {
		t.Errorf("manifest.json is\n%s\nwant\n%s", got, raw)
	}
	gotSum, err := os.ReadFile(filepath.Join(ck.Dir, format.ManifestSumFile))
	must(t, err)
	if string(gotSum) != sum(string(raw))+"\n" {
		t.Errorf("manifest.json.sha256 is %q", gotSum)
	}
	for _, f := range []string{format.ManifestFile, format.ManifestSumFile} {
		if m := permOf(t, filepath.Join(ck.Dir, f)); m != FileMode {
			t.Errorf("%s: mode %v", f, m)
		}
	}
	loaded, err := s.Load("web", "cp1")
	must(t, err)
	must(t, loaded.Verify(context.Background()))
	if _, err := os.Lstat(p.Dir()); !os.IsNotExist(err) {
		t.Errorf("pending directory left: %v", err)
	}
}

// A manifest that does not match what was written, imported or made by
// Manifest and then tampered with or outdated, commits nothing.
func TestCommitRefuses(t *testing.T) {
	files := map[string]string{"a": "one", "b/c": "two"}
	imported := func(files map[string]string) func(*testing.T, *Pending) []byte {
		return func(t *testing.T, _ *Pending) []byte { return rawManifest(t, "cp1", files) }
	}
	// saved returns the manifest of a save, from Manifest, passed through
	// edit.
	saved := func(edit func(t *testing.T, p *Pending, raw []byte) []byte) func(*testing.T, *Pending) []byte {
		return func(t *testing.T, p *Pending) []byte {
			raw, err := p.Manifest(&format.Manifest{Mode: format.ModeCold})
			must(t, err)
			return edit(t, p, raw)
		}
	}
	replace := func(old, new string) func(*testing.T, *Pending, []byte) []byte {
		return func(t *testing.T, _ *Pending, raw []byte) []byte {
			if !bytes.Contains(raw, []byte(old)) {
				t.Fatalf("manifest does not hold %q:\n%s", old, raw)
			}
			return bytes.Replace(raw, []byte(old), []byte(new), 1)
		}
	}
	for _, tc := range []struct {
		name     string
		manifest func(t *testing.T, p *Pending) []byte
		want     string
	}{
		{"not JSON", func(*testing.T, *Pending) []byte { return []byte("{") }, "manifest.json: unexpected end of JSON input"},
		{"other name", func(t *testing.T, _ *Pending) []byte { return rawManifest(t, "cp2", files) }, `manifest.json names checkpoint "cp2", not "cp1"`},
		{"newer", func(t *testing.T, _ *Pending) []byte {
			return bytes.Replace(rawManifest(t, "cp1", files), []byte(fmt.Sprintf(`"formatVersion":%d`, format.Version)), []byte(fmt.Sprintf(`"formatVersion":%d`, format.Version+1)), 1)
		}, fmt.Sprintf("format version %d", format.Version+1)},
		{"missing file", imported(map[string]string{"a": "one", "b/c": "two", "d": "three"}), "manifest.json lists d, which was not written"},
		{"extra file", imported(map[string]string{"a": "one"}), "b/c was written, and manifest.json does not list it"},
		{"size", imported(map[string]string{"a": "one", "b/c": "twotwo"}), "b/c has 3 bytes, manifest.json says 6"},
		{"sha256", imported(map[string]string{"a": "one", "b/c": "owt"}), "b/c: sha256 mismatch"},
		{"twice", func(t *testing.T, _ *Pending) []byte {
			var m format.Manifest
			must(t, json.Unmarshal(rawManifest(t, "cp1", files), &m))
			m.Files = append(m.Files, m.Files[0])
			raw, err := json.Marshal(m)
			must(t, err)
			return raw
		}, "twice"},
		{"save: tampered sha256", saved(replace(sum("two"), sum("owt"))), "b/c: sha256 mismatch"},
		{"save: tampered size", saved(replace(`"size": 3,
      "sha256": "`+sum("two"), `"size": 4,
      "sha256": "`+sum("two"))), "b/c has 3 bytes, manifest.json says 4"},
		{"save: tampered name", saved(replace(`"name": "cp1"`, `"name": "cp2"`)), `manifest.json names checkpoint "cp2", not "cp1"`},
		{"save: file written after Manifest", saved(func(t *testing.T, p *Pending, raw []byte) []byte {
			writeAll(t, p, map[string]string{"late": "x"})
			return raw
		}), "late was written, and manifest.json does not list it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			p, err := s.Begin("web", "cp1")
			must(t, err)
			writeAll(t, p, files)
			ck, err := p.Commit(tc.manifest(t, p))
			if err == nil || !strings.Contains(err.Error(), tc.want) || ck != nil {
				t.Fatalf("Commit: %v, %v; want an error saying %q", ck, err, tc.want)
			}
			// Nothing was committed; the pending checkpoint is the caller's to
			// abort, and has no manifest.
			if _, err := os.Lstat(filepath.Join(s.checkpointsDir("web"), "cp1")); !os.IsNotExist(err) {
				t.Errorf("checkpoint committed: %v", err)
			}
			for _, f := range []string{format.ManifestFile, format.ManifestSumFile} {
				if _, err := os.Lstat(p.Path(f)); !os.IsNotExist(err) {
					t.Errorf("%s written: %v", f, err)
				}
			}
			must(t, p.Abort())
		})
	}
}
