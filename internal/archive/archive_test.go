package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/format"
)

var fixedTime = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod, trusted.* xattrs)")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// setTime sets atime and mtime of p, not following symlinks.
func setTime(t *testing.T, p string, tm time.Time) {
	t.Helper()
	ts := unix.NsecToTimespec(tm.UnixNano())
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
}

// buildPlainTree fills root with one of everything Write handles.
func buildPlainTree(t *testing.T, root string) {
	t.Helper()
	big := make([]byte, 3<<20)
	_, err := rand.Read(big)
	must(t, err)

	must(t, os.MkdirAll(filepath.Join(root, "a/b/c"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "a/b/c/big"), big, 0o644))
	must(t, os.WriteFile(filepath.Join(root, "empty"), nil, 0o600))
	must(t, os.Symlink("a/b/c/big", filepath.Join(root, "link")))
	must(t, os.WriteFile(filepath.Join(root, "hard1"), []byte("hello"), 0o640))
	must(t, os.Link(filepath.Join(root, "hard1"), filepath.Join(root, "a/hard2")))
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o640))
	must(t, unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, os.WriteFile(filepath.Join(root, "suid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chown(filepath.Join(root, "suid"), 1000, 1000))
	must(t, os.WriteFile(filepath.Join(root, "xattr"), []byte("x"), 0o644))
	must(t, unix.Lsetxattr(filepath.Join(root, "xattr"), "user.test", []byte("value\x00binary"), 0))
	must(t, os.WriteFile(filepath.Join(root, "odd"), []byte("odd"), 0o600))
	must(t, os.Lchown(filepath.Join(root, "odd"), 1234, 5678))
	must(t, os.Lchown(filepath.Join(root, "link"), 42, 43))
	must(t, os.Chown(filepath.Join(root, "a/b"), 7, 8))

	modes := map[string]os.FileMode{
		"a":     0o750,
		"a/b":   0o700,
		"a/b/c": 0o777 | os.ModeSticky,
		"suid":  0o755 | os.ModeSetuid | os.ModeSetgid,
		"odd":   0o421,
	}
	for name, mode := range modes {
		must(t, os.Chmod(filepath.Join(root, name), mode))
	}
	// The root is a data directory as a database server leaves it: its
	// own owner, mode 0750, and an ACL giving one more user access.
	must(t, os.Chown(root, 999, 998))
	must(t, os.Chmod(root, 0o750))
	must(t, unix.Lsetxattr(root, "system.posix_acl_access", posixACL(0o7, 0o5, 0o5, 0, 1234, 0o5), 0))
	must(t, unix.Lsetxattr(root, "system.posix_acl_default", posixACL(0o7, 0o0, 0o0, 0, 1234, 0o5), 0))
	// Times last, deepest first, so that nothing changes them afterwards.
	for _, name := range []string{"a/b/c/big", "a/b/c", "a/b", "a/hard2", "a", "empty",
		"link", "fifo", "null", "suid", "xattr", "odd", "."} {
		setTime(t, filepath.Join(root, name), fixedTime)
	}
}

// posixACL encodes an access ACL as the kernel stores it in the
// system.posix_acl_* xattrs: owner, group and others' permissions, a mask,
// and one named user with its permissions.
func posixACL(owner, group, other, _ uint16, user uint32, userPerm uint16) []byte {
	const (
		userObj  = 0x01
		namedUsr = 0x02
		groupObj = 0x04
		mask     = 0x10
		others   = 0x20
		undefID  = 0xffffffff
	)
	b := []byte{2, 0, 0, 0} // version 2, little endian
	add := func(tag, perm uint16, id uint32) {
		b = append(b, byte(tag), byte(tag>>8), byte(perm), byte(perm>>8),
			byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
	}
	add(userObj, owner, undefID)
	add(namedUsr, userPerm, user)
	add(groupObj, group, undefID)
	add(mask, 0o7, undefID)
	add(others, other, undefID)
	return b
}

type fileInfo struct {
	mode     uint32
	uid, gid uint32
	rdev     uint64
	size     int64
	mtime    unix.Timespec
	sum      [sha256.Size]byte
	target   string
	xattrs   map[string]string
	ino      uint64
}

// snapshot describes every path under root, root itself as ".", keyed by
// relative name.
func snapshot(t *testing.T, root string) map[string]fileInfo {
	t.Helper()
	files := make(map[string]fileInfo)
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fi := fileInfo{
			mode: st.Mode, uid: st.Uid, gid: st.Gid, rdev: st.Rdev,
			mtime: st.Mtim, ino: st.Ino,
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi.size, fi.sum = st.Size, sha256.Sum256(data)
		case unix.S_IFLNK:
			if fi.target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		if fi.xattrs, err = readXattrs(p); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[rel] = fi
		return nil
	})
	must(t, err)
	return files
}

func roundTrip(t *testing.T, src string, kind Kind) (dst string, w, x Stats) {
	t.Helper()
	var buf bytes.Buffer
	w, err := Write(context.Background(), &buf, src, kind)
	must(t, err)
	dst = t.TempDir()
	x, err = Extract(context.Background(), &buf, dst, kind)
	must(t, err)
	return dst, w, x
}

func TestRoundTripPlain(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	buildPlainTree(t, src)
	dst, w, x := roundTrip(t, src, Plain)

	if w != x {
		t.Errorf("Write stats %+v, Extract stats %+v", w, x)
	}
	if want := int64(3<<20 + len("hello") + len("#!/bin/sh\n") + len("x") + len("odd")); w.Bytes != want {
		t.Errorf("Bytes = %d, want %d", w.Bytes, want)
	}
	if w.Entries != 14 {
		t.Errorf("Entries = %d, want 14", w.Entries)
	}

	before, after := snapshot(t, src), snapshot(t, dst)
	if got, want := slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before)); !slices.Equal(got, want) {
		t.Fatalf("extracted paths %q, want %q", got, want)
	}
	for name, want := range before {
		got := after[name]
		tests := []struct {
			what      string
			got, want any
		}{
			{"mode", got.mode, want.mode},
			{"uid", got.uid, want.uid},
			{"gid", got.gid, want.gid},
			{"rdev", got.rdev, want.rdev},
			{"size", got.size, want.size},
			{"mtime", got.mtime, want.mtime},
			{"sha256", got.sum, want.sum},
			{"link target", got.target, want.target},
			{"xattrs", got.xattrs, want.xattrs},
		}
		for _, tt := range tests {
			if !equal(tt.got, tt.want) {
				t.Errorf("%s: %s = %v, want %v", name, tt.what, tt.got, tt.want)
			}
		}
		if got.mtime != unix.NsecToTimespec(fixedTime.UnixNano()) {
			t.Errorf("%s: mtime %v, want %v", name, got.mtime, fixedTime)
		}
	}
	if after["hard1"].ino != after["a/hard2"].ino {
		t.Error("hard1 and a/hard2 are not the same inode after extraction")
	}
	if after["xattr"].xattrs["user.test"] != "value\x00binary" {
		t.Errorf("user.test = %q", after["xattr"].xattrs["user.test"])
	}
}

func equal(a, b any) bool {
	if ma, ok := a.(map[string]string); ok {
		return maps.Equal(ma, b.(map[string]string))
	}
	return a == b
}

// tarEntries lists the headers of a tar archive.
func tarEntries(t *testing.T, data []byte) []*tar.Header {
	t.Helper()
	var hdrs []*tar.Header
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs
		}
		must(t, err)
		hdrs = append(hdrs, hdr)
	}
}

func TestOverlay(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	must(t, os.WriteFile(filepath.Join(upper, "keep"), []byte("kept"), 0o644))
	must(t, unix.Mknod(filepath.Join(upper, "name"), unix.S_IFCHR, 0))
	must(t, os.Mkdir(filepath.Join(upper, "dir"), 0o755))
	must(t, unix.Lsetxattr(filepath.Join(upper, "dir"), opaqueXattr, []byte("y"), 0))
	must(t, unix.Lsetxattr(filepath.Join(upper, "dir"), "trusted.overlay.origin", []byte("x"), 0))
	must(t, os.WriteFile(filepath.Join(upper, "dir/new"), []byte("new"), 0o644))

	var buf bytes.Buffer
	w, err := Write(context.Background(), &buf, upper, Overlay)
	must(t, err)
	if w.Deleted != 1 {
		t.Errorf("Write: Deleted = %d, want 1", w.Deleted)
	}
	var names []string
	for _, hdr := range tarEntries(t, buf.Bytes()) {
		names = append(names, hdr.Name)
		for k := range hdr.PAXRecords {
			if strings.Contains(k, "overlay") {
				t.Errorf("%s: overlay xattr %s archived", hdr.Name, k)
			}
		}
	}
	// Walk order: the whiteout sits where "name" sorts.
	want := []string{"./", "dir/", "dir/.wh..wh..opq", "dir/new", "keep", ".wh.name"}
	if !slices.Equal(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}

	dst := t.TempDir()
	x, err := Extract(context.Background(), bytes.NewReader(buf.Bytes()), dst, Overlay)
	must(t, err)
	if x.Deleted != 1 || x.Entries != 6 {
		t.Errorf("Extract stats %+v, want Deleted 1, Entries 6", x)
	}
	assertWhiteout(t, filepath.Join(dst, "name"))
	v, err := getXattr(filepath.Join(dst, "dir"), opaqueXattr)
	if err != nil || string(v) != "y" {
		t.Errorf("dir: %s = %q, %v; want \"y\"", opaqueXattr, v, err)
	}
	if _, err := getXattr(filepath.Join(dst, "dir"), "trusted.overlay.origin"); !errors.Is(err, unix.ENODATA) {
		t.Errorf("dir: trusted.overlay.origin restored (err %v)", err)
	}
	for _, name := range []string{".wh.name", "dir/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(dst, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists in the extracted upper dir", name)
		}
	}

	// As a Plain tree the same upper dir keeps its device and its markers.
	buf.Reset()
	w, err = Write(context.Background(), &buf, upper, Plain)
	must(t, err)
	if w.Deleted != 0 {
		t.Errorf("Plain Write: Deleted = %d", w.Deleted)
	}
	dst = t.TempDir()
	_, err = Extract(context.Background(), bytes.NewReader(buf.Bytes()), dst, Plain)
	must(t, err)
	assertWhiteout(t, filepath.Join(dst, "name"))
	if _, err := getXattr(filepath.Join(dst, "dir"), opaqueXattr); !errors.Is(err, unix.ENODATA) {
		t.Errorf("Plain: opaque xattr restored (err %v)", err)
	}
}

func assertWhiteout(t *testing.T, p string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Error(err)
		return
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("%s: mode %#o rdev %d, want a char device 0/0", p, st.Mode, st.Rdev)
	}
}

// makeTar builds an archive from headers; regular files get their Size in
// bytes of 'x'.
func makeTar(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, hdr := range hdrs {
		must(t, tw.WriteHeader(hdr))
		if hdr.Size > 0 {
			_, err := tw.Write(bytes.Repeat([]byte("x"), int(hdr.Size)))
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func TestExtractOverlayReplaces(t *testing.T) {
	requireRoot(t)
	dst := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dst, "x"), []byte("old"), 0o644))
	must(t, os.MkdirAll(filepath.Join(dst, "d/sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(dst, "d/sub/f"), []byte("old"), 0o644))

	data := makeTar(t,
		&tar.Header{Name: ".wh.x", Typeflag: tar.TypeReg},
		&tar.Header{Name: "d/sub/", Typeflag: tar.TypeDir, Mode: 0o700},
		&tar.Header{Name: ".wh.d", Typeflag: tar.TypeReg},
		&tar.Header{Name: "e/.wh..wh..opq", Typeflag: tar.TypeReg},
	)
	x, err := Extract(context.Background(), bytes.NewReader(data), dst, Overlay)
	must(t, err)
	if x.Deleted != 2 || x.Entries != 4 {
		t.Errorf("stats %+v, want Deleted 2, Entries 4", x)
	}
	assertWhiteout(t, filepath.Join(dst, "x"))
	assertWhiteout(t, filepath.Join(dst, "d"))
	if v, err := getXattr(filepath.Join(dst, "e"), opaqueXattr); err != nil || string(v) != "y" {
		t.Errorf("e: opaque = %q, %v", v, err)
	}

	// In Plain kind the same names are ordinary files.
	dst = t.TempDir()
	_, err = Extract(context.Background(), bytes.NewReader(data), dst, Plain)
	must(t, err)
	for _, name := range []string{".wh.x", ".wh.d", "e/.wh..wh..opq"} {
		if fi, err := os.Lstat(filepath.Join(dst, name)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("Plain: %s is not a regular file (%v)", name, err)
		}
	}
}

func TestExtractRejects(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		hdrs    []*tar.Header
		wantErr string // must appear in the error
		absent  string // must not exist in dst afterwards
	}{
		{"parent", []*tar.Header{{Name: "../evil", Typeflag: tar.TypeReg, Size: 3}}, "../evil", ""},
		{"absolute", []*tar.Header{{Name: "/abs", Typeflag: tar.TypeReg, Size: 3}}, "/abs", ""},
		{"dotdot inside", []*tar.Header{{Name: "a/../../b", Typeflag: tar.TypeReg, Size: 3}}, "a/../../b", ""},
		{"dot not a directory", []*tar.Header{{Name: ".", Typeflag: tar.TypeReg}}, ".", ""},
		{"through symlink", []*tar.Header{
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/"},
			{Name: "link/x", Typeflag: tar.TypeReg, Size: 3},
		}, "link/x", ""},
		{"symlink replacing dir", []*tar.Header{
			{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "d/f", Typeflag: tar.TypeReg, Size: 1},
			{Name: "d", Typeflag: tar.TypeSymlink, Linkname: "/"},
			{Name: "d/x", Typeflag: tar.TypeReg, Size: 3},
		}, "d/x", ""},
		{"hard link outside", []*tar.Header{
			{Name: "hl", Typeflag: tar.TypeLink, Linkname: "../outside"},
		}, "hl", "hl"},
		{"hard link absolute", []*tar.Header{
			{Name: "hl", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"},
		}, "hl", "hl"},
		{"hard link through symlink", []*tar.Header{
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: ".."},
			{Name: "hl", Typeflag: tar.TypeLink, Linkname: "link/outside"},
		}, "hl", "hl"},
		{"unknown type", []*tar.Header{{Name: "weird", Typeflag: 'Z'}}, "weird", "weird"},
		{"gnu sparse", []*tar.Header{{Name: "sparse", Typeflag: tar.TypeGNUSparse, Format: tar.FormatGNU}}, "sparse", "sparse"},
	}
	for _, tt := range tests {
		for _, kind := range []Kind{Plain, Overlay} {
			t.Run(fmt.Sprintf("%s/kind%d", tt.name, kind), func(t *testing.T) {
				base := t.TempDir()
				dst := filepath.Join(base, "dst")
				must(t, os.Mkdir(dst, 0o755))
				must(t, os.WriteFile(filepath.Join(base, "outside"), []byte("keep"), 0o644))
				_, rootX := os.Lstat("/x")

				_, err := Extract(context.Background(), bytes.NewReader(makeTar(t, tt.hdrs...)), dst, kind)
				if err == nil {
					t.Fatal("Extract succeeded")
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not name %q", err, tt.wantErr)
				}
				entries, err := os.ReadDir(base)
				must(t, err)
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				if !slices.Equal(names, []string{"dst", "outside"}) {
					t.Errorf("outside dst: %q", names)
				}
				if data, _ := os.ReadFile(filepath.Join(base, "outside")); string(data) != "keep" {
					t.Errorf("outside file changed: %q", data)
				}
				if _, err := os.Lstat("/x"); rootX != nil && err == nil {
					t.Error("/x was created")
				}
				if tt.absent != "" {
					if _, err := os.Lstat(filepath.Join(dst, tt.absent)); err == nil {
						t.Errorf("%s exists in dst", tt.absent)
					}
				}
			})
		}
	}
}

func TestCancelled(t *testing.T) {
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if _, err := Write(ctx, io.Discard, src, Plain); !errors.Is(err, context.Canceled) {
		t.Errorf("Write: err = %v, want context.Canceled", err)
	}
	var buf bytes.Buffer
	_, err := Write(context.Background(), &buf, src, Plain)
	must(t, err)
	dst := t.TempDir()
	if _, err := Extract(ctx, &buf, dst, Plain); !errors.Is(err, context.Canceled) {
		t.Errorf("Extract: err = %v, want context.Canceled", err)
	}
	if empty, err := IsEmpty(dst); err != nil || !empty {
		t.Errorf("cancelled Extract wrote into dst (%v)", err)
	}
}

func TestDeterministic(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	buildPlainTree(t, src)
	var first, second bytes.Buffer
	_, err := Write(context.Background(), &first, src, Overlay)
	must(t, err)
	_, err = Write(context.Background(), &second, src, Overlay)
	must(t, err)
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("two writes of the same tree differ")
	}
}

func TestSizeIsEmptyClear(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "dir")
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1000), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sub/b"), make([]byte, 24), 0o644))
	must(t, os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "sub/a2")))
	outside := filepath.Join(base, "outside")
	must(t, os.Mkdir(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "keep"), []byte("keep"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(dir, "out")))

	if n, err := Size(dir); err != nil || n != 1024 {
		t.Errorf("Size = %d, %v; want 1024", n, err)
	}
	if empty, err := IsEmpty(dir); err != nil || empty {
		t.Errorf("IsEmpty = %v, %v; want false", empty, err)
	}
	must(t, Clear(dir))
	if empty, err := IsEmpty(dir); err != nil || !empty {
		t.Errorf("after Clear: IsEmpty = %v, %v; want true", empty, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("Clear followed a symlink: %v", err)
	}
	if _, err := IsEmpty(filepath.Join(base, "missing")); err == nil {
		t.Error("IsEmpty of a missing dir succeeded")
	}
}

// cutWriter records where its Cut is called.
type cutWriter struct {
	*bytes.Buffer
	cuts []int
}

func (w *cutWriter) Cut() error {
	w.cuts = append(w.cuts, w.Len())
	return nil
}

// TestStreamAsTarWriter: stream frames entries byte for byte as
// archive/tar's Writer does (the store's chunks of a volume must not change
// with the way it is written), to a plain writer, to one that reads the
// data itself and to one that is cut around large entries (where it is cut
// is checked too); and a body shorter or longer than its header says fails.
func TestStreamAsTarWriter(t *testing.T) {
	var cw *cutWriter
	type entry struct {
		hdr  tar.Header
		data []byte
	}
	long := strings.Repeat("long-name/", 15) + "file"
	var entries []entry
	entries = append(entries, entry{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o700, ModTime: fixedTime, Format: tar.FormatPAX}})
	for _, size := range []int{0, 1, 511, 512, 513, 100_000, 300_000} {
		data := make([]byte, size)
		rand.Read(data)
		entries = append(entries, entry{hdr: tar.Header{Name: fmt.Sprintf("f-%d", size), Typeflag: tar.TypeReg, Mode: 0o640,
			Size: int64(size), Uid: 999, Gid: 999, ModTime: fixedTime, Format: tar.FormatPAX}, data: data})
	}
	entries = append(entries,
		entry{hdr: tar.Header{Name: long, Typeflag: tar.TypeReg, Size: 3, Uid: 1 << 22, ModTime: fixedTime, Format: tar.FormatPAX,
			PAXRecords: map[string]string{paxXattr + "user.a": "b", paxXattr + "security.capability": "\x01\x00"}}, data: []byte("abc")},
		entry{hdr: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: long, ModTime: fixedTime, Format: tar.FormatPAX}},
		entry{hdr: tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "f-1", ModTime: fixedTime, Format: tar.FormatPAX}},
		entry{hdr: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: fixedTime, Format: tar.FormatPAX}},
		entry{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, ModTime: fixedTime, Format: tar.FormatPAX}},
	)

	var want bytes.Buffer
	var wantCuts []int // where a chunked file is cut: around large entries
	tw := tar.NewWriter(&want)
	for _, e := range entries {
		before := want.Len()
		must(t, tw.WriteHeader(&e.hdr))
		_, err := tw.Write(e.data)
		must(t, err)
		must(t, tw.Flush()) // the padding
		if e.hdr.Typeflag == tar.TypeReg && e.hdr.Size >= format.EntryCut {
			wantCuts = append(wantCuts, before, want.Len())
		}
	}
	must(t, tw.Close())
	if len(wantCuts) != 2 {
		t.Fatalf("cuts expected at %v: the test needs one large entry", wantCuts)
	}

	for _, c := range []struct {
		name string
		w    func(*bytes.Buffer) io.Writer
	}{
		{"plain writer", func(b *bytes.Buffer) io.Writer { return struct{ io.Writer }{b} }},
		{"io.ReaderFrom", func(b *bytes.Buffer) io.Writer { return b }},
		{"cutter", func(b *bytes.Buffer) io.Writer { cw = &cutWriter{Buffer: b}; return cw }},
	} {
		var got bytes.Buffer
		cw = nil
		s := newStream(c.w(&got))
		if (s.rf != nil) != (c.name != "plain writer") {
			t.Fatalf("%s: ReadFrom used %v", c.name, s.rf != nil)
		}
		for _, e := range entries {
			must(t, s.header(&e.hdr))
			if e.hdr.Typeflag == tar.TypeReg {
				n, err := s.body(bytes.NewReader(e.data), e.hdr.Size)
				must(t, err)
				if n != e.hdr.Size {
					t.Fatalf("%s: %s: body wrote %d bytes, want %d", c.name, e.hdr.Name, n, e.hdr.Size)
				}
			}
		}
		must(t, s.close())
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%s: %d bytes differ from archive/tar's %d", c.name, got.Len(), want.Len())
		}
		if cw != nil && !slices.Equal(cw.cuts, wantCuts) {
			t.Errorf("%s: cut at %v, want %v (before the header of the one entry of %d bytes or more, after its padding)",
				c.name, cw.cuts, wantCuts, format.EntryCut)
		}
	}

	for _, c := range []struct {
		name string
		data string
	}{{"shorter", "ab"}, {"longer", "abcd"}} {
		s := newStream(&bytes.Buffer{})
		must(t, s.header(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Size: 3, Format: tar.FormatPAX}))
		if _, err := s.body(strings.NewReader(c.data), 3); !errors.Is(err, errSizeChanged) {
			t.Errorf("%s body: %v, want errSizeChanged", c.name, err)
		}
		if err := s.close(); !errors.Is(err, errSizeChanged) {
			t.Errorf("%s body: the archive went on (close: %v)", c.name, err)
		}
	}
}
