package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// secretTree makes base/outside, a directory that must never be read or
// changed through a tree next to it, holding files with a random secret and
// a subdirectory, and returns its path and the secret.
func secretTree(t *testing.T, base string) (outside string, secret []byte) {
	t.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	must(t, err)
	secret = []byte("SECRET-" + hex.EncodeToString(b))
	outside = filepath.Join(base, "outside")
	must(t, os.MkdirAll(filepath.Join(outside, "s"), 0o755))
	for _, name := range []string{"secret", "pwn", "f0", "s/secret"} {
		must(t, os.WriteFile(filepath.Join(outside, name), secret, 0o644))
	}
	return outside, secret
}

// assertUnchanged fails if anything under dir differs from before.
func assertUnchanged(t *testing.T, dir string, before map[string]fileInfo) {
	t.Helper()
	after := snapshot(t, dir)
	if !reflect.DeepEqual(after, before) {
		for name, fi := range after {
			if b, ok := before[name]; !ok {
				t.Errorf("%s/%s was created", dir, name)
			} else if !reflect.DeepEqual(b, fi) {
				t.Errorf("%s/%s changed: %+v, was %+v", dir, name, fi, b)
			}
		}
		for name := range before {
			if _, ok := after[name]; !ok {
				t.Errorf("%s/%s was removed", dir, name)
			}
		}
	}
}

// ids returns the caller's uid and gid, for archives that must extract
// without root.
func ids() (int, int) { return os.Getuid(), os.Getgid() }

func TestWriteSymlinkedSubdir(t *testing.T) {
	base := t.TempDir()
	outside, secret := secretTree(t, base)
	src := filepath.Join(base, "src")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("plain"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(src, "sub")))
	must(t, os.Symlink("../outside/secret", filepath.Join(src, "file")))

	var buf bytes.Buffer
	_, err := Write(context.Background(), &buf, src, Plain)
	must(t, err)
	if bytes.Contains(buf.Bytes(), secret) {
		t.Fatal("the archive holds the outside secret")
	}
	got := map[string]string{}
	for _, hdr := range tarEntries(t, buf.Bytes()) {
		got[hdr.Name] = string(hdr.Typeflag) + hdr.Linkname
	}
	want := map[string]string{
		"./":   string(tar.TypeDir),
		"f":    string(tar.TypeReg),
		"file": string(tar.TypeSymlink) + "../outside/secret",
		"sub":  string(tar.TypeSymlink) + outside,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}

	// The root itself must not be a link either.
	link := filepath.Join(base, "rootlink")
	must(t, os.Symlink(outside, link))
	buf.Reset()
	if _, err := Write(context.Background(), &buf, link, Plain); err == nil {
		t.Error("Write of a symbolic link to a directory succeeded")
	}
	if bytes.Contains(buf.Bytes(), secret) {
		t.Error("the archive of a link holds the outside secret")
	}
}

func TestExtractSymlinkInPath(t *testing.T) {
	uid, gid := ids()
	tests := []struct {
		name  string
		setup func(t *testing.T, dst, outside string)
		hdrs  []*tar.Header
	}{
		{"first element", func(t *testing.T, dst, outside string) {
			must(t, os.Symlink(outside, filepath.Join(dst, "a")))
		}, []*tar.Header{
			{Name: "a/pwn", Typeflag: tar.TypeReg, Size: 3, Mode: 0o4755, Uid: uid, Gid: gid},
		}},
		{"middle element", func(t *testing.T, dst, outside string) {
			must(t, os.Mkdir(filepath.Join(dst, "a"), 0o755))
			must(t, os.Symlink(outside, filepath.Join(dst, "a/b")))
		}, []*tar.Header{
			{Name: "a/b/s/pwn", Typeflag: tar.TypeReg, Size: 3, Mode: 0o4755, Uid: uid, Gid: gid},
		}},
		{"directory entry under link", func(t *testing.T, dst, outside string) {
			must(t, os.Symlink(outside, filepath.Join(dst, "a")))
		}, []*tar.Header{
			{Name: "a/s/", Typeflag: tar.TypeDir, Mode: 0o777, Uid: uid, Gid: gid},
		}},
		{"hard link target under link", func(t *testing.T, dst, outside string) {
			must(t, os.Symlink(outside, filepath.Join(dst, "a")))
		}, []*tar.Header{
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "a/secret"},
		}},
		{"whiteout under link", func(t *testing.T, dst, outside string) {
			must(t, os.Symlink(outside, filepath.Join(dst, "a")))
		}, []*tar.Header{
			{Name: "a/.wh.pwn", Typeflag: tar.TypeReg, Uid: uid, Gid: gid},
		}},
	}
	for _, tt := range tests {
		for _, kind := range []Kind{Plain, Overlay} {
			t.Run(fmt.Sprintf("%s/kind%d", tt.name, kind), func(t *testing.T) {
				base := t.TempDir()
				outside, _ := secretTree(t, base)
				dst := filepath.Join(base, "dst")
				must(t, os.Mkdir(dst, 0o755))
				tt.setup(t, dst, outside)
				before := snapshot(t, outside)

				_, err := Extract(context.Background(), bytes.NewReader(makeTar(t, tt.hdrs...)), dst, kind)
				if err == nil {
					t.Error("Extract succeeded")
				} else if !strings.Contains(err.Error(), "symbolic link") {
					t.Errorf("error %q does not say why", err)
				}
				assertUnchanged(t, outside, before)
			})
		}
	}
}

// hookReader calls hook once, before the first read at or after offset at.
type hookReader struct {
	r    io.Reader
	off  int64
	at   int64
	hook func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.hook != nil && h.off >= h.at {
		h.hook()
		h.hook = nil
	}
	n, err := h.r.Read(p)
	h.off += int64(n)
	return n, err
}

func TestExtractDirReplacedBetweenEntries(t *testing.T) {
	uid, gid := ids()
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 3, Mode: 0o4755, Uid: uid, Gid: gid}
	}
	dir := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o777, Uid: uid, Gid: gid}
	}
	tests := []struct {
		name   string
		before []*tar.Header // extracted before d is swapped for a link
		after  []*tar.Header
	}{
		// d is the directory last written into: its entries keep
		// going to the directory itself, now elsewhere in dst.
		{"while in use", []*tar.Header{dir("d/"), reg("d/f0")},
			[]*tar.Header{reg("d/pwn"), dir("d/s/"), reg("d/s/pwn")}},
		// d is opened again from dst, and found to be a link.
		{"after use", []*tar.Header{dir("d/"), reg("d/f0"), dir("e/"), reg("e/f")},
			[]*tar.Header{reg("d/pwn"), reg("d/s/pwn")}},
		// Only its mode and times are left to set, at the end.
		{"before fixing modes", []*tar.Header{dir("d/"), dir("d/s/"), reg("d/f0")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside, _ := secretTree(t, base)
			dst := filepath.Join(base, "dst")
			must(t, os.Mkdir(dst, 0o755))
			before := snapshot(t, outside)

			head := makeTar(t, tt.before...)
			head = head[:len(head)-1024] // without the end-of-archive blocks
			data := makeTar(t, append(tt.before, tt.after...)...)
			if !bytes.HasPrefix(data, head) {
				t.Fatal("archive prefix differs")
			}
			r := &hookReader{r: bytes.NewReader(data), at: int64(len(head)), hook: func() {
				must(t, os.Rename(filepath.Join(dst, "d"), filepath.Join(dst, "moved")))
				must(t, os.Symlink(outside, filepath.Join(dst, "d")))
			}}
			_, err := Extract(context.Background(), r, dst, Plain)
			if r.hook != nil {
				t.Fatal("the directory was never swapped")
			}
			if err == nil {
				t.Error("Extract succeeded")
			} else if !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("error %q does not say why", err)
			}
			assertUnchanged(t, outside, before)
			if fi, err := os.Lstat(filepath.Join(dst, "d")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("dst/d is no longer the link (%v)", err)
			}
		})
	}
}

// swapper swaps dir, a directory, for a symbolic link to outside and back
// until stopped, alternating an atomic exchange (renameat2 RENAME_EXCHANGE)
// with rename-and-symlink. It starts a goroutine and returns once the first
// swap is done; stop ends it and waits for it.
func swapper(t *testing.T, dir, outside string) (stop func() int64) {
	t.Helper()
	link := dir + ".link"
	moved := dir + ".moved"
	var (
		done  atomic.Bool
		swaps atomic.Int64
		wg    sync.WaitGroup
		first = make(chan struct{})
	)
	swap := func(i int) {
		// Whatever Extract left, start from a link next to dir.
		if err := os.Symlink(outside, link); err != nil && !errors.Is(err, os.ErrExist) {
			return
		}
		if i%2 == 0 {
			if unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE) == nil {
				swaps.Add(1)
				unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE)
				return
			}
		}
		if os.Rename(dir, moved) != nil {
			return
		}
		if os.Rename(link, dir) == nil {
			swaps.Add(1)
			os.Rename(dir, link)
		}
		os.Rename(moved, dir)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !done.Load(); i++ {
			swap(i)
			if i == 0 {
				close(first)
			}
		}
	}()
	<-first
	return func() int64 {
		done.Store(true)
		wg.Wait()
		return swaps.Load()
	}
}

func TestWriteRace(t *testing.T) {
	base := t.TempDir()
	outside, secret := secretTree(t, base)
	before := snapshot(t, outside)
	src := filepath.Join(base, "src")
	for _, d := range []string{"d", "x/y"} {
		must(t, os.MkdirAll(filepath.Join(src, d, "s"), 0o755))
		for _, f := range []string{"a", "secret", "s/secret"} {
			must(t, os.WriteFile(filepath.Join(src, d, f), []byte("plain "+f), 0o644))
		}
	}
	stop1 := swapper(t, filepath.Join(src, "d"), outside)
	stop2 := swapper(t, filepath.Join(src, "x/y"), outside)

	const runs = 200
	var failed int
	var buf bytes.Buffer
	for i := 0; i < runs; i++ {
		buf.Reset()
		if _, err := Write(context.Background(), &buf, src, Plain); err != nil {
			failed++ // an entry changed under the walk: fine
		}
		if bytes.Contains(buf.Bytes(), secret) {
			stop1()
			stop2()
			t.Fatalf("run %d: the archive holds the outside secret", i)
		}
	}
	swaps := stop1() + stop2()
	t.Logf("%d writes (%d failed), %d swaps", runs, failed, swaps)
	assertUnchanged(t, outside, before)
}

func TestExtractRace(t *testing.T) {
	uid, gid := ids()
	base := t.TempDir()
	outside, _ := secretTree(t, base)
	before := snapshot(t, outside)
	dst := filepath.Join(base, "dst")
	must(t, os.Mkdir(dst, 0o755))

	hdrs := []*tar.Header{{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, Uid: uid, Gid: gid}}
	for _, d := range []string{"d", "d/s", "d/s/t"} {
		hdrs = append(hdrs, &tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o777, Uid: uid, Gid: gid})
		for _, f := range []string{"f0", "pwn", "secret", "new"} {
			hdrs = append(hdrs, &tar.Header{Name: d + "/" + f, Typeflag: tar.TypeReg, Size: 5, Mode: 0o4777, Uid: uid, Gid: gid})
		}
		hdrs = append(hdrs,
			&tar.Header{Name: d + "/l", Typeflag: tar.TypeSymlink, Linkname: "/", Uid: uid, Gid: gid},
			&tar.Header{Name: d + "/h", Typeflag: tar.TypeLink, Linkname: d + "/pwn"},
			&tar.Header{Name: d + "/p", Typeflag: tar.TypeFifo, Mode: 0o666, Uid: uid, Gid: gid},
		)
	}
	hdrs = append(hdrs, &tar.Header{Name: "z", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644, Uid: uid, Gid: gid})
	data := makeTar(t, hdrs...)

	stop := swapper(t, filepath.Join(dst, "d"), outside)
	const runs = 200
	var failed int
	for i := 0; i < runs; i++ {
		kind := Kind(i % 2)
		if _, err := Extract(context.Background(), bytes.NewReader(data), dst, kind); err != nil {
			failed++ // d was a link when looked at: fine
		}
		if after := snapshot(t, outside); !reflect.DeepEqual(after, before) {
			stop()
			assertUnchanged(t, outside, before)
			t.Fatalf("run %d changed the outside directory", i)
		}
	}
	swaps := stop()
	t.Logf("%d extractions (%d failed), %d swaps", runs, failed, swaps)
	assertUnchanged(t, outside, before)
	entries, err := os.ReadDir(base)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"dst", "outside"}) {
		t.Errorf("next to dst: %q", names)
	}
}
