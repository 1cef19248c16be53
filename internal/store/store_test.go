package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newStore opens a store in a fresh temporary directory.
func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "store"))
	must(t, err)
	return s
}

// permOf returns the permission bits of path, not following symlinks.
func permOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	must(t, err)
	return st.Mode().Perm()
}

func sum(data string) string {
	h := sha256.Sum256([]byte(data))
	return hex.EncodeToString(h[:])
}

// wantErr fails unless err is non-nil and its text contains every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// commit completes m for a save into p and commits p, as a save does.
func commit(t *testing.T, p *Pending, m *format.Manifest) *Checkpoint {
	t.Helper()
	raw, err := p.Manifest(m)
	must(t, err)
	ck, err := p.Commit(raw)
	must(t, err)
	return ck
}

// save writes a complete checkpoint holding files (path -> content).
func save(t *testing.T, s *Store, container, name string, created time.Time, files map[string]string) *Checkpoint {
	t.Helper()
	p, err := s.Begin(container, name)
	must(t, err)
	for _, path := range slices.Sorted(maps.Keys(files)) {
		f, err := p.Create(path)
		must(t, err)
		_, err = f.Write([]byte(files[path]))
		must(t, err)
		must(t, f.Close())
	}
	commit(t, p, &format.Manifest{Created: created, Mode: format.ModeCold})
	ck, err := s.Load(container, name)
	must(t, err)
	return ck
}

// writeManifest replaces the manifest of the checkpoint in dir with m and a
// matching checksum file.
func writeManifest(t *testing.T, dir string, m any) {
	t.Helper()
	raw, err := json.MarshalIndent(m, "", "  ")
	must(t, err)
	writeRawManifest(t, dir, raw)
}

func writeRawManifest(t *testing.T, dir string, raw []byte) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(dir, format.ManifestFile), raw, FileMode))
	must(t, os.WriteFile(filepath.Join(dir, format.ManifestSumFile), []byte(sum(string(raw))+"\n"), FileMode))
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"web", true},
		{"20240102T030405Z-2", true},
		{"a_b.c-d", true},
		{"9", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{".hidden", false},
		{"-x", false},
		{"_x", false},
		{"../x", false},
		{"a/b", false},
		{"a b", false},
		{".tmp-x", false},
		{"é", false},
	} {
		if got := ValidName(tc.name); got != tc.want {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
	}{
		{"missing", func(t *testing.T, root string) {}},
		{"missing parents", nil},
		{"existing 0755", func(t *testing.T, root string) {
			must(t, os.Mkdir(root, 0o755))
			must(t, os.Chmod(root, 0o755))
		}},
		{"existing 0755 with containers 0777", func(t *testing.T, root string) {
			must(t, os.MkdirAll(filepath.Join(root, format.ContainersDir), 0o755))
			must(t, os.Chmod(root, 0o755))
			must(t, os.Chmod(filepath.Join(root, format.ContainersDir), 0o777))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			if tc.setup == nil {
				root = filepath.Join(t.TempDir(), "a", "b", "store")
			} else {
				tc.setup(t, root)
			}
			s, err := Open(root)
			must(t, err)
			if s.Root != root {
				t.Errorf("Root = %q, want %q", s.Root, root)
			}
			for _, d := range []string{root, filepath.Join(root, format.ContainersDir)} {
				st, err := os.Stat(d)
				must(t, err)
				if !st.IsDir() {
					t.Errorf("%s is not a directory", d)
				}
				if got := st.Mode().Perm(); got != DirMode {
					t.Errorf("%s has mode %v, want %v", d, got, DirMode)
				}
			}
		})
	}
}

func TestOpenRelative(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s, err := Open("rel")
	must(t, err)
	if want := filepath.Join(dir, "rel"); s.Root != want {
		t.Errorf("Root = %q, want the absolute %q", s.Root, want)
	}
}

func TestOpenNotADirectory(t *testing.T) {
	root := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(root, nil, 0o600))
	_, err := Open(root)
	wantErr(t, err, "cannot create the store")
}

func TestCommit(t *testing.T) {
	s := newStore(t)
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	p, err := s.Begin("web", "cp1")
	must(t, err)
	if p.Name != "cp1" {
		t.Errorf("Name = %q", p.Name)
	}
	wantTmp := filepath.Join(s.Root, format.ContainersDir, "web", format.CheckpointsDir, format.TempPrefix+"cp1")
	if p.Dir() != wantTmp {
		t.Errorf("Dir() = %q, want %q", p.Dir(), wantTmp)
	}
	if got := p.Path("a/b.txt"); got != filepath.Join(wantTmp, "a", "b.txt") {
		t.Errorf("Path = %q", got)
	}

	// Written out of order, in several writes, one in a nested directory.
	big := strings.Repeat("0123456789", 100_000)
	f, err := p.Create("z/deep/big.bin")
	must(t, err)
	for i := 0; i < len(big); i += 65536 {
		_, err := f.Write([]byte(big[i:min(i+65536, len(big))]))
		must(t, err)
	}
	if f.Size() != int64(len(big)) {
		t.Errorf("Size() = %d, want %d", f.Size(), len(big))
	}
	must(t, f.Close())
	must(t, f.Close()) // harmless, and not recorded twice
	type doc struct {
		A string `json:"a"`
	}
	must(t, p.WriteJSON("container.json", doc{A: "x"}))
	empty, err := p.Create("a/empty")
	must(t, err)
	must(t, empty.Close())
	if _, err := p.Create("container.json"); err == nil {
		t.Error("Create of an existing file succeeded")
	}

	// Not a checkpoint yet.
	ents, err := s.List("web")
	must(t, err)
	if len(ents) != 1 || ents[0].State != StateIncomplete || ents[0].Name != "cp1" || ents[0].Container != "web" || ents[0].Checkpoint != nil {
		t.Fatalf("List before Commit = %+v, want one incomplete cp1", ents)
	}
	if _, err := s.Latest("web"); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("Latest before Commit: err = %v, want no checkpoint", err)
	}

	m := &format.Manifest{Created: created, Mode: format.ModeHot, MemoryBytes: 12345, FormatVersion: 42, Name: "ignored"}
	manifest, err := p.Manifest(m)
	must(t, err)
	if want, err := json.MarshalIndent(m, "", "  "); err != nil || string(manifest) != string(want)+"\n" {
		t.Errorf("Manifest returned\n%s\nwant m as indented JSON and a newline:\n%s", manifest, want)
	}
	committed, err := p.Commit(manifest)
	must(t, err)
	if committed.Container != "web" || committed.Name != "cp1" || committed.Dir != filepath.Join(s.Root, format.ContainersDir, "web", format.CheckpointsDir, "cp1") ||
		!reflect.DeepEqual(committed.Manifest, m) {
		t.Errorf("Commit returned %+v with manifest %+v, want %+v", committed, committed.Manifest, m)
	}
	if _, err := os.Lstat(wantTmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary directory still there after Commit: %v", err)
	}

	wantJSON := "{\n  \"a\": \"x\"\n}\n"
	wantFiles := []format.File{
		{Path: "a/empty", Size: 0, SHA256: sum("")},
		{Path: "container.json", Size: int64(len(wantJSON)), SHA256: sum(wantJSON)},
		{Path: "z/deep/big.bin", Size: int64(len(big)), SHA256: sum(big)},
	}
	if !reflect.DeepEqual(m.Files, wantFiles) {
		t.Errorf("Commit set Files = %+v, want %+v", m.Files, wantFiles)
	}
	if m.FormatVersion != format.Version || m.Name != "cp1" {
		t.Errorf("Commit set FormatVersion %d, Name %q", m.FormatVersion, m.Name)
	}

	ents, err = s.List("web")
	must(t, err)
	if len(ents) != 1 || ents[0].State != StateComplete || ents[0].Name != "cp1" || ents[0].Err != nil {
		t.Fatalf("List after Commit = %+v, want one complete cp1", ents)
	}
	ck := ents[0].Checkpoint
	if ck.Container != "web" || ck.Name != "cp1" {
		t.Errorf("Checkpoint = %+v", ck)
	}
	got := ck.Manifest
	if got.FormatVersion != format.Version || got.Name != "cp1" || !got.Created.Equal(created) ||
		got.Mode != format.ModeHot || got.MemoryBytes != 12345 {
		t.Errorf("Manifest = %+v", got)
	}
	if !reflect.DeepEqual(got.Files, wantFiles) {
		t.Errorf("Manifest.Files = %+v, want %+v", got.Files, wantFiles)
	}
	if want := int64(len(wantJSON) + len(big)); ck.Size() != want {
		t.Errorf("Size() = %d, want %d", ck.Size(), want)
	}
	var d doc
	must(t, ck.ReadJSON("container.json", &d))
	if d.A != "x" {
		t.Errorf("ReadJSON = %+v", d)
	}
	must(t, ck.Verify(context.Background()))

	// The checksum file holds the manifest's sha256 and a newline.
	raw, err := os.ReadFile(ck.Path(format.ManifestFile))
	must(t, err)
	sumFile, err := os.ReadFile(ck.Path(format.ManifestSumFile))
	must(t, err)
	if string(sumFile) != sum(string(raw))+"\n" {
		t.Errorf("%s = %q, want the sha256 of the manifest", format.ManifestSumFile, sumFile)
	}
	if !bytes.Equal(raw, manifest) {
		t.Errorf("%s holds\n%s\nwant what Manifest returned\n%s", format.ManifestFile, raw, manifest)
	}

	// Everything under the container's directory is private.
	n := 0
	must(t, filepath.WalkDir(filepath.Join(s.Root, format.ContainersDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		want := FileMode
		if d.IsDir() {
			want = DirMode
		} else if !d.Type().IsRegular() {
			t.Errorf("%s: unexpected %v", path, d.Type())
		}
		if got := permOf(t, path); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
		return nil
	}))
	if n < 10 {
		t.Errorf("walked only %d entries", n)
	}

	if l, err := s.Latest("web"); err != nil || l.Name != "cp1" {
		t.Errorf("Latest = %v, %v", l, err)
	}
}

func TestCommitNoFiles(t *testing.T) {
	s := newStore(t)
	p, err := s.Begin("web", "empty")
	must(t, err)
	commit(t, p, &format.Manifest{})
	ck, err := s.Load("web", "empty")
	must(t, err)
	if len(ck.Manifest.Files) != 0 || ck.Size() != 0 {
		t.Errorf("Files = %+v", ck.Manifest.Files)
	}
	must(t, ck.Verify(context.Background()))
}

func TestAbort(t *testing.T) {
	s := newStore(t)
	p, err := s.Begin("web", "cp1")
	must(t, err)
	must(t, p.WriteJSON("x.json", 1))
	must(t, p.Abort())
	if _, err := os.Lstat(p.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Abort left %s: %v", p.Dir(), err)
	}
	must(t, p.Abort()) // twice is harmless
	ents, err := s.List("web")
	must(t, err)
	if len(ents) != 0 {
		t.Errorf("List after Abort = %+v", ents)
	}
	// The name is free again.
	p, err = s.Begin("web", "cp1")
	must(t, err)
	commit(t, p, &format.Manifest{})
}

func TestBeginReplacesStaleTemp(t *testing.T) {
	s := newStore(t)
	p, err := s.Begin("web", "cp1")
	must(t, err)
	must(t, p.WriteJSON("stale.json", 1))
	// A killed save left p behind; a new save of the same name starts afresh.
	p2, err := s.Begin("web", "cp1")
	must(t, err)
	if _, err := os.Lstat(p2.Path("stale.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale file survived Begin: %v", err)
	}
	commit(t, p2, &format.Manifest{})
	ck, err := s.Load("web", "cp1")
	must(t, err)
	if len(ck.Manifest.Files) != 0 {
		t.Errorf("Files = %+v", ck.Manifest.Files)
	}
}

func TestBeginRefuses(t *testing.T) {
	s := newStore(t)
	save(t, s, "web", "cp1", time.Now(), nil)
	for _, tc := range []struct {
		container, name string
		want            string
		hint            string
	}{
		{"web", "cp1", `checkpoint "cp1" of web already exists`, ""}, // an ExistsError: the CLI adds the hint
		{"web", "../x", `invalid checkpoint name "../x"`, "starting with a letter or digit"},
		{"web", ".hidden", `invalid checkpoint name ".hidden"`, "starting with a letter or digit"},
		{"web", "a/b", `invalid checkpoint name "a/b"`, "starting with a letter or digit"},
		{"web", "", `invalid checkpoint name ""`, "starting with a letter or digit"},
		{"web", ".tmp-cp2", `invalid checkpoint name ".tmp-cp2"`, "starting with a letter or digit"},
		{"../etc", "cp1", `cannot store container name "../etc"`, ""},
		{"a/b", "cp1", `cannot store container name "a/b"`, ""},
		{"", "cp1", `cannot store container name ""`, ""},
	} {
		t.Run(tc.container+":"+tc.name, func(t *testing.T) {
			p, err := s.Begin(tc.container, tc.name)
			if err == nil {
				p.Abort()
			}
			wantErr(t, err, tc.want)
			if h := hint.Of(err); !strings.Contains(h, tc.hint) {
				t.Errorf("hint %q does not contain %q", h, tc.hint)
			}
			var exists *ExistsError
			if errors.As(err, &exists) != (tc.name == "cp1" && tc.container == "web") {
				t.Errorf("ExistsError: %v", err)
			}
		})
	}
	// Nothing was created outside the store, and cp1 is intact.
	if _, err := os.Lstat(filepath.Join(s.Root, "etc")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Begin created %s", filepath.Join(s.Root, "etc"))
	}
	ents, err := s.List("web")
	must(t, err)
	if len(ents) != 1 || ents[0].State != StateComplete {
		t.Errorf("List = %+v", ents)
	}
}

func TestLoadDamaged(t *testing.T) {
	files := []format.File{{Path: "a.txt", Size: 5, SHA256: sum("hello")}}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string
		is     error
	}{
		{
			name: "byte changed in manifest",
			damage: func(t *testing.T, dir string) {
				path := filepath.Join(dir, format.ManifestFile)
				raw, err := os.ReadFile(path)
				must(t, err)
				i := strings.Index(string(raw), `"cold"`)
				if i < 0 {
					t.Fatalf("no mode in %s", raw)
				}
				raw[i+1] = 'C'
				must(t, os.WriteFile(path, raw, FileMode))
			},
			want: []string{"manifest.json: sha256 mismatch"},
		},
		{
			name: "checksum file changed",
			damage: func(t *testing.T, dir string) {
				must(t, os.WriteFile(filepath.Join(dir, format.ManifestSumFile), []byte(sum("other")+"\n"), FileMode))
			},
			want: []string{"manifest.json: sha256 mismatch"},
		},
		{
			name: "missing checksum file",
			damage: func(t *testing.T, dir string) {
				must(t, os.Remove(filepath.Join(dir, format.ManifestSumFile)))
			},
			want: []string{"manifest.json.sha256: "},
			is:   fs.ErrNotExist,
		},
		{
			name: "missing manifest",
			damage: func(t *testing.T, dir string) {
				must(t, os.Remove(filepath.Join(dir, format.ManifestFile)))
			},
			want: []string{"manifest.json: "},
			is:   fs.ErrNotExist,
		},
		{
			name: "not JSON",
			damage: func(t *testing.T, dir string) {
				writeRawManifest(t, dir, []byte("{not json\n"))
			},
			want: []string{"manifest.json: "},
		},
		{
			name: "format version 0",
			damage: func(t *testing.T, dir string) {
				writeManifest(t, dir, format.Manifest{FormatVersion: 0, Name: "cp1", Files: files})
			},
			want: []string{"format version 0 is not valid"},
		},
		{
			name: "path leaves the checkpoint",
			damage: func(t *testing.T, dir string) {
				writeManifest(t, dir, format.Manifest{FormatVersion: format.Version, Name: "cp1",
					Files: append(files, format.File{Path: "../x", Size: 1, SHA256: sum("x")})})
			},
			want: []string{`file "../x": path leaves the checkpoint directory`},
		},
		{
			name: "nested path leaves the checkpoint",
			damage: func(t *testing.T, dir string) {
				writeManifest(t, dir, format.Manifest{FormatVersion: format.Version, Name: "cp1",
					Files: []format.File{{Path: "criu/../../../x", Size: 1, SHA256: sum("x")}}})
			},
			want: []string{`file "criu/../../../x": path leaves the checkpoint directory`},
		},
		{
			name: "absolute path",
			damage: func(t *testing.T, dir string) {
				writeManifest(t, dir, format.Manifest{FormatVersion: format.Version, Name: "cp1",
					Files: []format.File{{Path: "/etc/passwd", Size: 1, SHA256: sum("x")}}})
			},
			want: []string{`file "/etc/passwd": absolute path`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			ck := save(t, s, "web", "cp1", time.Now(), map[string]string{"a.txt": "hello"})
			tc.damage(t, ck.Dir)
			_, err := s.Load("web", "cp1")
			wantErr(t, err, append([]string{"checkpoint web:cp1 is damaged: "}, tc.want...)...)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if de := (*DamagedError)(nil); !errors.As(err, &de) || de.Container != "web" || de.Name != "cp1" {
				t.Errorf("error %v is not a DamagedError of web:cp1", err)
			}
			ents, err := s.List("web")
			must(t, err)
			if len(ents) != 1 || ents[0].State != StateDamaged || ents[0].Err == nil || ents[0].Checkpoint != nil {
				t.Errorf("List = %+v, want one damaged", ents)
			}
			if _, err := s.Latest("web"); err == nil {
				t.Error("Latest returned a damaged checkpoint")
			}
		})
	}
}

func TestLoadValidManifestWrittenByHand(t *testing.T) {
	// The crafting helper itself produces loadable checkpoints.
	s := newStore(t)
	ck := save(t, s, "web", "cp1", time.Now(), map[string]string{"a.txt": "hello"})
	m := *ck.Manifest
	m.Mode = format.ModeHot
	writeManifest(t, ck.Dir, m)
	got, err := s.Load("web", "cp1")
	must(t, err)
	if got.Manifest.Mode != format.ModeHot {
		t.Errorf("Mode = %q", got.Manifest.Mode)
	}
	must(t, got.Verify(context.Background()))
}

func TestLoadUnknown(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		container, name, want string
	}{
		{"web", "nope", `no checkpoint "nope" for container web`},
		{"web", "../x", "invalid checkpoint name"},
		{"..", "x", "invalid checkpoint name"},
	} {
		_, err := s.Load(tc.container, tc.name)
		wantErr(t, err, tc.want)
	}
}

func TestVerify(t *testing.T) {
	const content = "0123456789abcdef"
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"intact", func(t *testing.T, path string) {}, ""},
		{"flipped byte", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			must(t, err)
			b[3] ^= 0x01
			must(t, os.WriteFile(path, b, FileMode))
		}, "sub/b.bin: sha256 mismatch"},
		{"truncated", func(t *testing.T, path string) {
			must(t, os.Truncate(path, 10))
		}, fmt.Sprintf("sub/b.bin has 10 bytes, the manifest says %d", len(content))},
		{"grown", func(t *testing.T, path string) {
			must(t, os.WriteFile(path, []byte(content+"x"), FileMode))
		}, fmt.Sprintf("sub/b.bin has %d bytes, the manifest says %d", len(content)+1, len(content))},
		{"missing", func(t *testing.T, path string) {
			must(t, os.Remove(path))
		}, "sub/b.bin is missing"},
		{"symlink", func(t *testing.T, path string) {
			// Even a symlink to identical content is refused.
			other := filepath.Join(t.TempDir(), "copy")
			must(t, os.WriteFile(other, []byte(content), FileMode))
			must(t, os.Remove(path))
			must(t, os.Symlink(other, path))
		}, "sub/b.bin is not a regular file"},
		{"directory", func(t *testing.T, path string) {
			must(t, os.Remove(path))
			must(t, os.Mkdir(path, DirMode))
		}, "sub/b.bin is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			ck := save(t, s, "web", "cp1", time.Now(), map[string]string{"a.txt": "hello", "sub/b.bin": content})
			tc.damage(t, ck.Path("sub/b.bin"))
			// Load only checks the manifest.
			ck, err := s.Load("web", "cp1")
			must(t, err)
			err = ck.Verify(context.Background())
			if tc.want == "" {
				must(t, err)
				return
			}
			wantErr(t, err, "checkpoint web:cp1 is damaged: "+tc.want)
			if de := (*DamagedError)(nil); !errors.As(err, &de) || de.Container != "web" || de.Name != "cp1" {
				t.Errorf("error %v is not a DamagedError of web:cp1", err)
			}
		})
	}
}

func TestVerifyCanceled(t *testing.T) {
	s := newStore(t)
	ck := save(t, s, "web", "cp1", time.Now(), map[string]string{"a.txt": "hello"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ck.Verify(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify = %v, want context.Canceled", err)
	}
}

func TestListAndLatest(t *testing.T) {
	s := newStore(t)
	t0 := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	// Names sort against creation order.
	save(t, s, "web", "c-oldest", t0, nil)
	save(t, s, "web", "a-newest", t0.Add(2*time.Hour), nil)
	save(t, s, "web", "b-middle", t0.Add(time.Hour), nil)
	_, err := s.Begin("web", "0-incomplete")
	must(t, err)
	save(t, s, "db", "z", t0.Add(24*time.Hour), nil)
	// Not a container directory or checkpoint: ignored.
	must(t, os.WriteFile(filepath.Join(s.Root, format.ContainersDir, "web", format.CheckpointsDir, "stray-file"), nil, FileMode))
	must(t, os.Mkdir(filepath.Join(s.Root, format.ContainersDir, ".hidden"), DirMode))
	// A container directory without checkpoints (only a lock).
	l, err := s.Lock("idle", "rm")
	must(t, err)
	must(t, l.Unlock())

	type row struct{ container, name, state string }
	rows := func(ents []Entry) []row {
		var out []row
		for _, e := range ents {
			out = append(out, row{e.Container, e.Name, e.State})
		}
		return out
	}
	for _, tc := range []struct {
		container string
		want      []row
	}{
		{"web", []row{
			{"web", "c-oldest", StateComplete},
			{"web", "b-middle", StateComplete},
			{"web", "a-newest", StateComplete},
			{"web", "0-incomplete", StateIncomplete},
		}},
		{"db", []row{{"db", "z", StateComplete}}},
		{"idle", nil},
		{"unknown", nil},
		{"", []row{
			{"db", "z", StateComplete},
			{"web", "c-oldest", StateComplete},
			{"web", "b-middle", StateComplete},
			{"web", "a-newest", StateComplete},
			{"web", "0-incomplete", StateIncomplete},
		}},
	} {
		ents, err := s.List(tc.container)
		must(t, err)
		if got := rows(ents); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %v, want %v", tc.container, got, tc.want)
		}
	}

	names, err := s.Containers()
	must(t, err)
	if want := []string{"db", "idle", "web"}; !slices.Equal(names, want) {
		t.Errorf("Containers() = %v, want %v", names, want)
	}

	for _, tc := range []struct{ container, want string }{
		{"web", "a-newest"},
		{"db", "z"},
	} {
		ck, err := s.Latest(tc.container)
		must(t, err)
		if ck.Name != tc.want || ck.Container != tc.container {
			t.Errorf("Latest(%q) = %s:%s, want %s", tc.container, ck.Container, ck.Name, tc.want)
		}
	}
	for _, c := range []string{"idle", "unknown"} {
		_, err := s.Latest(c)
		wantErr(t, err, "no checkpoint for container "+c)
		if h := hint.Of(err); !strings.Contains(h, "ckpt save "+c) {
			t.Errorf("Latest(%q) hint = %q", c, h)
		}
	}
}

func TestListSameCreated(t *testing.T) {
	// Equal creation times fall back to name order.
	s := newStore(t)
	t0 := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	save(t, s, "web", "b", t0, nil)
	save(t, s, "web", "a", t0, nil)
	ents, err := s.List("web")
	must(t, err)
	if len(ents) != 2 || ents[0].Name != "a" || ents[1].Name != "b" {
		t.Errorf("List = %+v", ents)
	}
	ck, err := s.Latest("web")
	must(t, err)
	if ck.Name != "b" {
		t.Errorf("Latest = %s", ck.Name)
	}
}

func TestNewName(t *testing.T) {
	s := newStore(t)
	tm := time.Date(2024, 1, 2, 3, 4, 5, 999, time.FixedZone("X", 2*3600))
	const base = "20240102T010405Z"
	for _, want := range []string{base, base + "-2", base + "-3"} {
		got := s.NewName("web", tm)
		if got != want {
			t.Fatalf("NewName = %q, want %q", got, want)
		}
		if !ValidName(got) {
			t.Errorf("NewName gave invalid %q", got)
		}
		save(t, s, "web", got, tm, nil)
	}
	// An incomplete checkpoint does not take the name; a complete one of
	// another container does not either.
	_, err := s.Begin("db", base)
	must(t, err)
	if got := s.NewName("db", tm); got != base {
		t.Errorf("NewName(db) = %q", got)
	}
	if got := s.NewName("web", tm.Add(time.Second)); got != "20240102T010406Z" {
		t.Errorf("NewName one second later = %q", got)
	}
}

func TestRemove(t *testing.T) {
	s := newStore(t)
	save(t, s, "web", "done", time.Now(), map[string]string{"a": "1"})
	_, err := s.Begin("web", "pending")
	must(t, err)
	save(t, s, "web", "keep", time.Now(), nil)

	for _, tc := range []struct {
		name string
		want string
	}{
		{"done", ""},
		{"pending", ""},
		{"done", `no checkpoint "done" for container web`},
		{"unknown", `no checkpoint "unknown" for container web`},
		{"../keep", "invalid checkpoint name"},
	} {
		err := s.Remove("web", tc.name)
		if tc.want == "" {
			must(t, err)
			continue
		}
		wantErr(t, err, tc.want)
	}
	wantErr(t, s.Remove("nobody", "x"), `no checkpoint "x" for container nobody`)
	if h := hint.Of(s.Remove("web", "unknown")); h != "ckpt ls web lists its checkpoints" {
		t.Errorf("hint = %q", h)
	}
	ents, err := s.List("web")
	must(t, err)
	if len(ents) != 1 || ents[0].Name != "keep" {
		t.Errorf("List = %+v, want only keep", ents)
	}
	dir := filepath.Join(s.Root, format.ContainersDir, "web", format.CheckpointsDir)
	got, err := os.ReadDir(dir)
	must(t, err)
	if len(got) != 1 || got[0].Name() != "keep" {
		t.Errorf("%s holds %v", dir, got)
	}
}

func TestRemoveIncomplete(t *testing.T) {
	s := newStore(t)
	save(t, s, "web", "done", time.Now(), nil)
	for _, n := range []string{"p1", "p2"} {
		p, err := s.Begin("web", n)
		must(t, err)
		must(t, p.WriteJSON("x/y.json", n))
	}
	save(t, s, "web", "done2", time.Now(), nil)
	must(t, s.RemoveIncomplete("web"))
	must(t, s.RemoveIncomplete("web"))
	must(t, s.RemoveIncomplete("nobody"))
	ents, err := s.List("web")
	must(t, err)
	var names []string
	for _, e := range ents {
		if e.State != StateComplete {
			t.Errorf("left %+v", e)
		}
		names = append(names, e.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"done", "done2"}) {
		t.Errorf("left %v", names)
	}
}

func TestLock(t *testing.T) {
	s := newStore(t)
	l, err := s.Lock("web", "save")
	must(t, err)
	lockFile := filepath.Join(s.Root, format.ContainersDir, "web", format.LockFile)
	if got := permOf(t, lockFile); got != FileMode {
		t.Errorf("lock file mode %v", got)
	}
	if got := permOf(t, filepath.Dir(lockFile)); got != DirMode {
		t.Errorf("container dir mode %v", got)
	}

	for _, op := range []string{"save", "resume"} {
		l2, err := s.Lock("web", op)
		if err == nil {
			l2.Unlock()
			t.Fatal("second Lock succeeded")
		}
		want := fmt.Sprintf("container web is busy: ckpt save (pid %d) since ", os.Getpid())
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q does not start with %q", err, want)
		}
		if h := hint.Of(err); h != "wait until it finishes and try again" {
			t.Errorf("hint = %q", h)
		}
	}

	// Another container is not affected.
	l3, err := s.Lock("db", "rm")
	must(t, err)
	must(t, l3.Unlock())

	must(t, l.Unlock())
	if b, err := os.ReadFile(lockFile); err != nil || len(b) != 0 {
		t.Errorf("lock file after Unlock: %q, %v", b, err)
	}
	l, err = s.Lock("web", "resume")
	must(t, err)
	b, err := os.ReadFile(lockFile)
	must(t, err)
	if want := fmt.Sprintf("ckpt resume (pid %d) since ", os.Getpid()); !strings.HasPrefix(string(b), want) || !strings.HasSuffix(string(b), "\n") {
		t.Errorf("lock file holds %q, want %q...", b, want)
	}
	must(t, l.Unlock())
}

func TestLockUnknownHolder(t *testing.T) {
	s := newStore(t)
	l, err := s.Lock("web", "save")
	must(t, err)
	defer l.Unlock()
	// A holder that wrote nothing (or whose line was lost).
	must(t, os.Truncate(filepath.Join(s.Root, format.ContainersDir, "web", format.LockFile), 0))
	_, err = s.Lock("web", "rm")
	if err == nil || err.Error() != "container web is busy: another ckpt process" {
		t.Errorf("err = %v", err)
	}
}

func TestLockInvalidName(t *testing.T) {
	s := newStore(t)
	for _, c := range []string{"", "../x", "a/b", ".hidden"} {
		l, err := s.Lock(c, "save")
		if err == nil {
			l.Unlock()
		}
		wantErr(t, err, fmt.Sprintf("cannot store container name %q", c))
	}
}

func TestAdopt(t *testing.T) {
	s := newStore(t)
	p, err := s.Begin("web", "cp1")
	must(t, err)
	images := p.Path(format.ImagesDir)
	tree := map[string]string{
		"criu/pages-1.img":      strings.Repeat("p", 5000),
		"criu/inventory.img":    "inv",
		"criu/sub/empty.img":    "",
		"criu/sub/deeper/x.img": "x",
	}
	for _, d := range []string{"criu", "criu/sub", "criu/sub/deeper"} {
		must(t, os.Mkdir(p.Path(d), 0o755))
		must(t, os.Chmod(p.Path(d), 0o755))
	}
	for path, content := range tree {
		must(t, os.WriteFile(p.Path(path), []byte(content), 0o644))
		must(t, os.Chmod(p.Path(path), 0o644))
	}
	must(t, os.Chmod(p.Path("criu/sub/deeper/x.img"), 0o755))
	must(t, p.WriteJSON("container.json", "c"))

	added, err := p.Adopt(format.ImagesDir, nil)
	must(t, err)
	var want []format.File
	for _, path := range slices.Sorted(maps.Keys(tree)) {
		f := format.File{Path: path, Size: int64(len(tree[path])), SHA256: sum(tree[path])}
		if path == "criu/pages-1.img" {
			// Memory pages go to the store's chunks: one, at this size.
			f.Chunks = []format.Chunk{{SHA256: f.SHA256, Size: f.Size}}
			f.SHA256 = format.ChunksSHA256(f.Chunks)
		}
		want = append(want, f)
	}
	// WalkDir visits in lexical order.
	if !reflect.DeepEqual(added, want) {
		t.Errorf("Adopt = %+v, want %+v", added, want)
	}
	must(t, filepath.WalkDir(images, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		want := FileMode
		if d.IsDir() {
			want = DirMode
		}
		if got := permOf(t, path); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
		return nil
	}))

	m := &format.Manifest{}
	commit(t, p, m)
	want = append(want, format.File{Path: "container.json", Size: 4, SHA256: sum("\"c\"\n")})
	slices.SortFunc(want, func(a, b format.File) int { return strings.Compare(a.Path, b.Path) })
	if !reflect.DeepEqual(m.Files, want) {
		t.Errorf("Files = %+v, want %+v", m.Files, want)
	}
	ck, err := s.Load("web", "cp1")
	must(t, err)
	must(t, ck.Verify(context.Background()))
	// The engine's file stayed until the commit, for a failed save to
	// start from; now its chunks hold it.
	if _, err := os.Lstat(ck.Path("criu/pages-1.img")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the adopted pages are still in the checkpoint's directory: %v", err)
	}
	if got := readAll(t, ck, "criu/pages-1.img"); got != tree["criu/pages-1.img"] {
		t.Errorf("pages read back: %d bytes, want %d", len(got), len(tree["criu/pages-1.img"]))
	}
}

// readAll reads the checkpoint file rel through Open.
func readAll(t *testing.T, ck *Checkpoint, rel string) string {
	t.Helper()
	r, err := ck.Open(rel)
	must(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	must(t, err)
	return string(b)
}

func TestAdoptRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, p *Pending)
		want  string
	}{
		{"symlink inside", func(t *testing.T, p *Pending) {
			must(t, os.MkdirAll(p.Path("criu/sub"), 0o755))
			must(t, os.WriteFile(p.Path("criu/a.img"), []byte("a"), 0o644))
			must(t, os.Symlink("/etc/passwd", p.Path("criu/sub/link.img")))
		}, "unexpected L"},
		{"symlinked root", func(t *testing.T, p *Pending) {
			must(t, os.Symlink(t.TempDir(), p.Path("criu")))
		}, "unexpected L"},
		{"missing", func(t *testing.T, p *Pending) {}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			p, err := s.Begin("web", "cp1")
			must(t, err)
			tc.setup(t, p)
			added, err := p.Adopt("criu", nil)
			wantErr(t, err, tc.want)
			if added != nil {
				t.Errorf("Adopt returned %+v with an error", added)
			}
			// Nothing was recorded.
			m := &format.Manifest{}
			commit(t, p, m)
			if len(m.Files) != 0 {
				t.Errorf("Files = %+v", m.Files)
			}
		})
	}
}

func TestLatestDamaged(t *testing.T) {
	t0 := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, tc := range []struct {
		name string
		// good says whether a complete checkpoint created at t0+1h exists.
		good bool
		// mtime of the damaged checkpoint's directory.
		mtime    time.Time
		wantName string
		wantErr  string
	}{
		{"older damaged one is ignored", true, t0, "good", ""},
		{"newer damaged one is reported", true, t0.Add(2 * time.Hour), "", "checkpoint web:bad is damaged: manifest.json: sha256 mismatch"},
		{"only a damaged one", false, t0, "", "checkpoint web:bad is damaged: manifest.json: sha256 mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			bad := save(t, s, "web", "bad", t0, nil)
			must(t, os.WriteFile(bad.Path(format.ManifestSumFile), []byte(sum("x")+"\n"), FileMode))
			must(t, os.Chtimes(bad.Dir, tc.mtime, tc.mtime))
			if tc.good {
				save(t, s, "web", "good", t0.Add(time.Hour), nil)
			}
			ck, err := s.Latest("web")
			if tc.wantErr != "" {
				wantErr(t, err, tc.wantErr)
				if de := (*DamagedError)(nil); !errors.As(err, &de) || de.Container != "web" || de.Name != "bad" {
					t.Errorf("error %v is not a DamagedError of web:bad", err)
				}
				return
			}
			must(t, err)
			if ck.Name != tc.wantName {
				t.Errorf("Latest = %s, want %s", ck.Name, tc.wantName)
			}
		})
	}
}

// A checkpoint written by a newer ckpt is not damaged: it says so, and points
// at a newer ckpt rather than at ckpt rm.
func TestLoadNewerFormat(t *testing.T) {
	s := newStore(t)
	ck := save(t, s, "web", "cp1", time.Now(), map[string]string{"a": "x"})
	writeManifest(t, ck.Dir, format.Manifest{FormatVersion: 99, Name: "cp1", Files: ck.Manifest.Files})
	_, err := s.Load("web", "cp1")
	if err == nil || err.Error() != fmt.Sprintf("checkpoint web:cp1 has format version 99; this ckpt reads 1 to %d", format.Version) {
		t.Fatalf("Load: %v", err)
	}
	if h := hint.Of(err); h != "resume it with a newer ckpt" {
		t.Errorf("hint = %q", h)
	}
	ents, err := s.List("web")
	must(t, err)
	if len(ents) != 1 || ents[0].State != StateNewer {
		t.Fatalf("List = %+v", ents)
	}
	if _, err := s.Latest("web"); err == nil || !strings.Contains(err.Error(), "format version 99") {
		t.Fatalf("Latest: %v", err)
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		ref             string
		container, name string
		err             string
	}{
		{"web", "web", "", ""},
		{"web:cp1", "web", "cp1", ""},
		{"my-app_1.x:20261127T120000Z", "my-app_1.x", "20261127T120000Z", ""},
		{"", "", "", "missing container name"},
		{":cp1", "", "", `missing container name before ":" in ":cp1"`},
		{":", "", "", `missing container name before ":" in ":"`},
		{"web:", "", "", `missing checkpoint name after ":" in "web:"`},
		{"../x", "", "", `invalid container name "../x"`},
		{"../x:cp1", "", "", `invalid container name "../x"`},
		{".hidden", "", "", `invalid container name ".hidden"`},
		{"web:../x", "", "", `invalid checkpoint name "../x"`},
		{"web:.tmp-cp1", "", "", `invalid checkpoint name ".tmp-cp1"`},
		{"web:a:b", "", "", `invalid checkpoint name "a:b"`},
		{"web:a/b", "", "", `invalid checkpoint name "a/b"`},
	} {
		container, name, err := ParseRef(tc.ref)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || container != "" || name != "" {
				t.Errorf("ParseRef(%q) = %q, %q, %v; want error %q", tc.ref, container, name, err, tc.err)
			}
			continue
		}
		if err != nil || container != tc.container || name != tc.name {
			t.Errorf("ParseRef(%q) = %q, %q, %v; want %q, %q", tc.ref, container, name, err, tc.container, tc.name)
		}
	}
}

// TestOpenRefusesOtherDirectory: a directory that holds other things is not
// made root's only (0700) and filled; an empty one or a store is fine.
func TestOpenRefusesOtherDirectory(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	if _, err := Open(dir); !errors.Is(err, ErrNotStore) || !strings.Contains(err.Error(), "holds notes.txt") {
		t.Fatalf("Open of a home-like directory: %v", err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o755 {
		t.Errorf("its mode became %v", st.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, format.ContainersDir)); err == nil {
		t.Error("it was filled")
	}
	empty := t.TempDir()
	if _, err := Open(empty); err != nil {
		t.Errorf("an empty directory: %v", err)
	}
	if _, err := Open(empty); err != nil {
		t.Errorf("an existing store: %v", err)
	}
}

// TestRemoveCrash: Remove renames a checkpoint to a name that is never
// complete before it deletes its files, so a crash halfway leaves an
// incomplete checkpoint, not a damaged one in the way of Latest.
func TestRemoveCrash(t *testing.T) {
	s := newStore(t)
	save(t, s, "web", "cp1", time.Now().Add(-time.Hour), nil)
	save(t, s, "web", "cp2", time.Now(), nil)
	dir := filepath.Join(s.Root, format.ContainersDir, "web", format.CheckpointsDir)
	// What a crash while Remove deleted cp2's files leaves.
	must(t, os.Rename(filepath.Join(dir, "cp2"), filepath.Join(dir, format.TempPrefix+"cp2")))
	must(t, os.Remove(filepath.Join(dir, format.TempPrefix+"cp2", format.ManifestSumFile)))
	ck, err := s.Latest("web")
	if err != nil || ck.Name != "cp1" {
		t.Fatalf("Latest after a crashed remove: %v, %v", ck, err)
	}
	must(t, s.Remove("web", "cp2")) // finishes the job
	if _, err := os.Lstat(filepath.Join(dir, format.TempPrefix+"cp2")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the half-removed checkpoint is still there: %v", err)
	}
	must(t, s.Remove("web", "cp1"))
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %d entries", len(ents))
	}
}

// TestVerifyNamesFirst: with several damaged files, checked at once, the
// error names the first in the manifest's order, every time.
func TestVerifyNamesFirst(t *testing.T) {
	s := newStore(t)
	files := map[string]string{}
	for i := range 8 {
		files[fmt.Sprintf("f%d", i)] = strings.Repeat("x", 1<<16)
	}
	ck := save(t, s, "web", "cp1", time.Now(), files)
	for _, f := range []string{"f2", "f5", "f7"} {
		must(t, os.Truncate(ck.Path(f), 1))
	}
	for range 20 {
		wantErr(t, ck.Verify(context.Background()), "f2 has 1 bytes")
	}
}
