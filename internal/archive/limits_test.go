package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// buildOverlayTree fills upper with what an overlayfs upper directory
// holds: files, a whiteout, an opaque directory, a hard link.
func buildOverlayTree(t *testing.T, upper string) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(upper, "keep"), []byte("kept"), 0o644))
	must(t, unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0))
	must(t, os.Mkdir(filepath.Join(upper, "dir"), 0o755))
	must(t, unix.Lsetxattr(filepath.Join(upper, "dir"), opaqueXattr, []byte("y"), 0))
	must(t, os.WriteFile(filepath.Join(upper, "dir/new"), bytes.Repeat([]byte("n"), 5000), 0o644))
	must(t, unix.Mknod(filepath.Join(upper, "dir/old"), unix.S_IFCHR, 0))
	must(t, os.Link(filepath.Join(upper, "keep"), filepath.Join(upper, "dir/keep2")))
}

// TestExtractLimitedOwnStats: an archive extracts within the Stats that
// Write returned for it, as a save records them in the manifest, and not
// within one entry or one byte less.
func TestExtractLimitedOwnStats(t *testing.T) {
	requireRoot(t)
	for _, tt := range []struct {
		name  string
		kind  Kind
		build func(*testing.T, string)
	}{
		{"plain", Plain, buildPlainTree},
		{"overlay", Overlay, buildOverlayTree},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			tt.build(t, src)
			var buf bytes.Buffer
			w, err := Write(context.Background(), &buf, src, tt.kind)
			must(t, err)
			if tt.kind == Overlay && w.Deleted != 2 {
				t.Fatalf("Write: Deleted = %d, want 2", w.Deleted)
			}
			for _, lt := range []struct {
				name string
				lim  Limits
				want string // "" for none
			}{
				{"own stats", Limits{Entries: w.Entries, Bytes: w.Bytes}, ""},
				{"more", Limits{Entries: w.Entries + 1, Bytes: w.Bytes + 1}, ""},
				{"one entry less", Limits{Entries: w.Entries - 1, Bytes: w.Bytes},
					fmt.Sprintf("the archive holds more entries than its manifest declares (%d)", w.Entries-1)},
				{"one byte less", Limits{Entries: w.Entries, Bytes: w.Bytes - 1},
					fmt.Sprintf("the archive holds more bytes of file content than its manifest declares (%d)", w.Bytes-1)},
				{"none", Limits{}, "the archive holds more entries than its manifest declares (0)"},
			} {
				t.Run(lt.name, func(t *testing.T) {
					x, err := ExtractLimited(context.Background(), bytes.NewReader(buf.Bytes()), t.TempDir(), tt.kind, lt.lim)
					if lt.want == "" {
						if err != nil {
							t.Fatalf("limits %+v: %v", lt.lim, err)
						}
						if x != w {
							t.Errorf("Extract stats %+v, Write stats %+v", x, w)
						}
						return
					}
					var le *LimitError
					if !errors.As(err, &le) || !strings.Contains(err.Error(), lt.want) {
						t.Fatalf("limits %+v: err = %v, want %q", lt.lim, err, lt.want)
					}
					if x.Entries > lt.lim.Entries || x.Bytes > lt.lim.Bytes {
						t.Errorf("limits %+v: extracted %+v", lt.lim, x)
					}
				})
			}
		})
	}
}

// countPaths counts what is under dir, dir excluded.
func countPaths(t *testing.T, dir string) int {
	t.Helper()
	n := -1
	must(t, filepath.WalkDir(dir, func(string, os.DirEntry, error) error { n++; return nil }))
	return n
}

// TestExtractLimitedHostile: an archive that holds more than its manifest
// declares stops at the limit, having made no more than it.
func TestExtractLimitedHostile(t *testing.T) {
	root := &tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}
	many := []*tar.Header{root}
	for i := range 1000 {
		many = append(many, &tar.Header{Name: fmt.Sprintf("f%04d", i), Typeflag: tar.TypeReg, Mode: 0o644})
	}
	deep := strings.Repeat("d/", 100) + "f"
	for _, tt := range []struct {
		name    string
		archive []byte
		lim     Limits
		want    string
		paths   int // left in dst
	}{
		{"a thousand files for ten entries", makeTar(t, many...), Limits{Entries: 10, Bytes: 0},
			`archive: entry "f0009": the archive holds more entries than its manifest declares (10)`, 9},
		{"a MiB for a hundred bytes", makeTar(t, root,
			&tar.Header{Name: "small", Typeflag: tar.TypeReg, Mode: 0o644, Size: 100},
			&tar.Header{Name: "sub/", Typeflag: tar.TypeDir, Mode: 0o755},
			&tar.Header{Name: "sub/big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 20}),
			Limits{Entries: 10, Bytes: 100},
			`archive: entry "sub/big": the archive holds more bytes of file content than its manifest declares (100)`, 2},
		{"empty files past no bytes", makeTar(t, root,
			&tar.Header{Name: "empty", Typeflag: tar.TypeReg, Mode: 0o644},
			&tar.Header{Name: "one", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}),
			Limits{Entries: 10, Bytes: 0},
			`archive: entry "one": the archive holds more bytes of file content than its manifest declares (0)`, 1},
		// Directories the archive does not hold, made for one entry,
		// count as entries.
		{"one entry a hundred directories deep", makeTar(t, root, &tar.Header{Name: deep, Typeflag: tar.TypeReg, Mode: 0o644}),
			Limits{Entries: 10, Bytes: 10},
			`archive: entry "` + deep + `": the archive holds more entries than its manifest declares (10)`, 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			_, err := ExtractLimited(context.Background(), bytes.NewReader(tt.archive), dst, Plain, tt.lim)
			var le *LimitError
			if !errors.As(err, &le) || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if n := countPaths(t, dst); n != tt.paths {
				t.Errorf("%d paths left in dst, want %d", n, tt.paths)
			}
		})
	}
	// Without limits, the same archives extract whole.
	x, err := Extract(context.Background(), bytes.NewReader(makeTar(t, many...)), t.TempDir(), Plain)
	if err != nil || x.Entries != 1001 {
		t.Errorf("Extract: %+v, %v", x, err)
	}
}

func TestExtractLimitedNegative(t *testing.T) {
	for _, lim := range []Limits{{Entries: -1}, {Bytes: -1}} {
		if _, err := ExtractLimited(context.Background(), bytes.NewReader(nil), t.TempDir(), Plain, lim); err == nil || !strings.Contains(err.Error(), "invalid limits") {
			t.Errorf("limits %+v: err = %v", lim, err)
		}
	}
	// An empty archive holds nothing: no limit is too small for it.
	if _, err := ExtractLimited(context.Background(), bytes.NewReader(makeTar(t)), t.TempDir(), Plain, Limits{}); err != nil {
		t.Errorf("an empty archive within zero limits: %v", err)
	}
}
