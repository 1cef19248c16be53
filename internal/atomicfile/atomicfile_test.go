package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// names lists the entries of dir, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// umask sets the process's umask for the test: modes must not depend on it.
func umask(t *testing.T, mask int) {
	old := unix.Umask(mask)
	t.Cleanup(func() { unix.Umask(old) })
}

func TestWriteFile(t *testing.T) {
	umask(t, 0o077)
	// Each case prepares dir/f (or not), writes "new" to dir/f with perm
	// 0644, and says what dir/f then is.
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, dir string)
		existing Existing
		// wantFile is where "new" is expected, relative to dir; wantLink,
		// if set, is what dir/f must still point to.
		wantFile string
		wantLink string
		wantMode fs.FileMode
		wantErr  string
		// wantFiles lists dir afterwards.
		wantFiles []string
	}{
		{name: "new file", existing: Update, wantFile: "f", wantMode: 0o644, wantFiles: []string{"f"}},
		{name: "new file, no replace", existing: NoReplace, wantFile: "f", wantMode: 0o644, wantFiles: []string{"f"}},
		{name: "new file, replace", existing: Replace, wantFile: "f", wantMode: 0o644, wantFiles: []string{"f"}},
		{
			name:     "update keeps the mode",
			setup:    func(t *testing.T, dir string) { writeMode(t, filepath.Join(dir, "f"), "old", 0o600) },
			existing: Update, wantFile: "f", wantMode: 0o600, wantFiles: []string{"f"},
		},
		{
			name:     "replace sets the mode",
			setup:    func(t *testing.T, dir string) { writeMode(t, filepath.Join(dir, "f"), "old", 0o600) },
			existing: Replace, wantFile: "f", wantMode: 0o644, wantFiles: []string{"f"},
		},
		{
			name:     "no replace refuses",
			setup:    func(t *testing.T, dir string) { writeMode(t, filepath.Join(dir, "f"), "old", 0o600) },
			existing: NoReplace, wantErr: "already exists", wantFiles: []string{"f"},
		},
		{
			name: "update writes through a symlink",
			setup: func(t *testing.T, dir string) {
				must(t, os.Mkdir(filepath.Join(dir, "real"), 0o755))
				writeMode(t, filepath.Join(dir, "real", "target"), "old", 0o640)
				must(t, os.Symlink(filepath.Join("real", "target"), filepath.Join(dir, "f")))
			},
			existing: Update, wantFile: "real/target", wantLink: "real/target", wantMode: 0o640, wantFiles: []string{"f", "real"},
		},
		{
			name: "update writes through a chain of symlinks",
			setup: func(t *testing.T, dir string) {
				writeMode(t, filepath.Join(dir, "target"), "old", 0o604)
				must(t, os.Symlink("target", filepath.Join(dir, "middle")))
				must(t, os.Symlink("middle", filepath.Join(dir, "f")))
			},
			existing: Update, wantFile: "target", wantLink: "middle", wantMode: 0o604, wantFiles: []string{"f", "middle", "target"},
		},
		{
			name:     "update replaces a dangling symlink",
			setup:    func(t *testing.T, dir string) { must(t, os.Symlink("missing", filepath.Join(dir, "f"))) },
			existing: Update, wantFile: "f", wantMode: 0o644, wantFiles: []string{"f"},
		},
		{
			name: "replace replaces the symlink itself",
			setup: func(t *testing.T, dir string) {
				writeMode(t, filepath.Join(dir, "target"), "old", 0o640)
				must(t, os.Symlink("target", filepath.Join(dir, "f")))
			},
			existing: Replace, wantFile: "f", wantMode: 0o644, wantFiles: []string{"f", "target"},
		},
		{
			name:     "no replace refuses a dangling symlink",
			setup:    func(t *testing.T, dir string) { must(t, os.Symlink("missing", filepath.Join(dir, "f"))) },
			existing: NoReplace, wantErr: "already exists", wantLink: "missing", wantFiles: []string{"f"},
		},
		{
			name:     "update refuses a directory",
			setup:    func(t *testing.T, dir string) { must(t, os.Mkdir(filepath.Join(dir, "f"), 0o755)) },
			existing: Update, wantErr: "not a regular file", wantFiles: []string{"f"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			path := filepath.Join(dir, "f")
			err := WriteFile(path, []byte("new"), 0o644, tc.existing)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("WriteFile: %v, want an error saying %q", err, tc.wantErr)
				}
				if tc.existing == NoReplace && (!errors.Is(err, ErrExist) || !errors.Is(err, fs.ErrExist)) {
					t.Errorf("error %v does not match ErrExist and fs.ErrExist", err)
				}
			} else {
				must(t, err)
				got, err := os.ReadFile(filepath.Join(dir, tc.wantFile))
				must(t, err)
				if string(got) != "new" {
					t.Errorf("%s holds %q", tc.wantFile, got)
				}
				fi, err := os.Stat(filepath.Join(dir, tc.wantFile))
				must(t, err)
				if fi.Mode() != tc.wantMode {
					t.Errorf("%s: mode %v, want %v", tc.wantFile, fi.Mode(), tc.wantMode)
				}
			}
			if tc.wantLink != "" {
				if got, err := os.Readlink(path); err != nil || got != tc.wantLink {
					t.Errorf("f is no longer a link to %s: %q, %v", tc.wantLink, got, err)
				}
			}
			if got := names(t, dir); !slices.Equal(got, tc.wantFiles) {
				t.Errorf("directory holds %q, want %q", got, tc.wantFiles) // no temporary file left
			}
		})
	}
}

func writeMode(t *testing.T, path, data string, mode fs.FileMode) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(data), mode))
	must(t, os.Chmod(path, mode))
}

// A writer that fails after writing part of the file leaves nothing: no
// file under the final name, the old file untouched, no temporary file.
func TestWriteFailingWriter(t *testing.T) {
	boom := errors.New("boom")
	for _, existing := range []Existing{Update, Replace, NoReplace} {
		for _, old := range []string{"", "old"} {
			t.Run(fmt.Sprintf("%v/old=%q", existing, old), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "out")
				if old != "" {
					writeMode(t, path, old, 0o644)
				}
				called := false
				err := Write(path, 0o600, existing, func(w io.Writer) error {
					called = true
					f := w.(*os.File)
					if !strings.HasPrefix(filepath.Base(f.Name()), ".out.tmp-") || filepath.Dir(f.Name()) != dir {
						t.Errorf("temporary file %s", f.Name())
					}
					if fi, err := f.Stat(); err != nil || fi.Mode().Perm() != 0o600 {
						t.Errorf("temporary file mode %v, %v", fi.Mode(), err)
					}
					if _, err := w.Write(bytes.Repeat([]byte("partial"), 1000)); err != nil {
						t.Error(err)
					}
					return boom
				})
				switch {
				case old != "" && existing == NoReplace:
					if !errors.Is(err, ErrExist) || called {
						t.Errorf("Write: %v (writer called: %v), want ErrExist before writing", err, called)
					}
				case !errors.Is(err, boom):
					t.Errorf("Write: %v, want the writer's error", err)
				}
				want := []string(nil)
				if old != "" {
					want = []string{"out"}
					if b, err := os.ReadFile(path); err != nil || string(b) != old {
						t.Errorf("old file now holds %q, %v", b, err)
					}
				}
				if got := names(t, dir); !slices.Equal(got, want) {
					t.Errorf("directory holds %q, want %q", got, want)
				}
			})
		}
	}
}

// A writer that writes nothing makes an empty file.
func TestWriteEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty")
	must(t, Write(path, 0o600, NoReplace, func(io.Writer) error { return nil }))
	fi, err := os.Stat(path)
	must(t, err)
	if fi.Size() != 0 || fi.Mode() != 0o600 {
		t.Errorf("empty file: %v, %d bytes", fi.Mode(), fi.Size())
	}
}

// A file created at the path while the writer runs is not replaced by a
// NoReplace write.
func TestNoReplaceRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	err := Write(path, 0o600, NoReplace, func(w io.Writer) error {
		writeMode(t, path, "theirs", 0o644)
		_, err := io.WriteString(w, "ours")
		return err
	})
	if !errors.Is(err, ErrExist) || err.Error() != path+" already exists" {
		t.Fatalf("Write: %v, want %s already exists", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "theirs" {
		t.Errorf("file holds %q", b)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"out"}) {
		t.Errorf("directory holds %q", got)
	}
}

// Concurrent writers to one path each use their own temporary file: the
// path ends up holding exactly one writer's whole data, and with NoReplace
// exactly one writer succeeds.
func TestConcurrentWriters(t *testing.T) {
	const n = 16
	data := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 256<<10) }
	for _, existing := range []Existing{Update, Replace, NoReplace} {
		t.Run(fmt.Sprint(existing), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "conf")
			if existing == Update {
				// Through a symlink, as /etc/criu/runc.conf may be.
				must(t, os.Mkdir(filepath.Join(dir, "real"), 0o755))
				writeMode(t, filepath.Join(dir, "real", "conf"), "old", 0o640)
				must(t, os.Symlink(filepath.Join("real", "conf"), path))
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { errs[i] = WriteFile(path, data(i), 0o600, existing) })
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case existing != NoReplace || !errors.Is(err, ErrExist):
					t.Errorf("WriteFile: %v", err)
				}
			}
			if want := map[bool]int{true: 1, false: n}[existing == NoReplace]; ok != want {
				t.Errorf("%d writers succeeded, want %d", ok, want)
			}
			got, err := os.ReadFile(path)
			must(t, err)
			if len(got) != len(data(0)) || !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) {
				t.Errorf("file mixes writers or is partial: %d bytes starting %q", len(got), got[:min(len(got), 8)])
			}
			wantNames := []string{"conf"}
			if existing == Update {
				wantNames = []string{"conf", "real"}
				if got := names(t, filepath.Join(dir, "real")); !slices.Equal(got, []string{"conf"}) {
					t.Errorf("real/ holds %q", got)
				}
				if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
					t.Errorf("conf is no longer a symlink: %v, %v", fi.Mode(), err)
				}
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
					t.Errorf("real/conf mode %v, %v; want 0640 kept", fi.Mode(), err)
				}
			}
			if got := names(t, dir); !slices.Equal(got, wantNames) {
				t.Errorf("directory holds %q, want %q", got, wantNames)
			}
		})
	}
}

func TestWriteMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "f")
	if err := WriteFile(path, []byte("x"), 0o600, Replace); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteFile into a missing directory: %v", err)
	}
}

func TestSyncDir(t *testing.T) {
	must(t, SyncDir(t.TempDir()))
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir of a missing directory: %v", err)
	}
}
