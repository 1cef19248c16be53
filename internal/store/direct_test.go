package store

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestWriteDirect writes chunks of every kind of length, from aligned and
// unaligned buffers, on the test's file system and on tmpfs, and reads back
// the same bytes; on a disk's file system, the blocks did not go through the
// page cache.
func TestWriteDirect(t *testing.T) {
	dirs := []string{t.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "ckpt-direct-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dirs = append(dirs, d)
	}
	buf := getBuf()[:2*directAlign+chunkMin+3]
	defer putBuf(buf)
	for i := range buf {
		buf[i] = byte(rand.IntN(256))
	}
	for _, dir := range dirs {
		for _, c := range []struct {
			name     string
			off, len int
		}{
			{"empty", 0, 0},
			{"less than a block", 0, 100},
			{"one block", 0, directAlign},
			{"blocks and a tail", 0, chunkMin + 3},
			{"unaligned buffer", 1, chunkMin},
		} {
			data := buf[c.off : c.off+c.len]
			path := filepath.Join(dir, c.name)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
			if err != nil {
				t.Fatal(err)
			}
			err = writeDirect(f, data)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("%s, %s: %v", dir, c.name, err)
			}
			// tmpfs takes O_DIRECT (since Linux 6.6), but its files are
			// the page cache.
			if dir == dirs[0] && c.name == "blocks and a tail" && directWorks(t, dir) && cached(t, path) {
				t.Errorf("%s: the first block went through the page cache, not direct", c.name)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("%s, %s: read back %d bytes, not the %d written", dir, c.name, len(got), len(data))
			}
		}
	}
}

// cached reports whether the first page of the file at path is in the page
// cache.
func cached(t *testing.T, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, directAlign, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, 1)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	return vec[0]&1 != 0
}

// directWorks reports whether dir's file system takes O_DIRECT.
func directWorks(t *testing.T, dir string) bool {
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	return setDirect(f, true) == nil
}

// TestReadChunkFile reads chunk files of every kind of length direct,
// whole, and a file shorter than said as the bytes it has.
func TestReadChunkFile(t *testing.T) {
	dir := t.TempDir()
	data := random(8, chunkMax)
	for _, size := range []int{1, directAlign - 1, directAlign, 3*directAlign + 17, chunkMax} {
		path := filepath.Join(dir, "chunk")
		must(t, os.WriteFile(path, data[:size], FileMode))
		for _, claim := range []int{size, size + 1} {
			if claim > chunkMax {
				continue
			}
			f, err := openDirect(path)
			must(t, err)
			got, err := readChunkFile(f, getBuf(), int64(claim))
			f.Close()
			must(t, err)
			if !bytes.Equal(got, data[:size]) {
				t.Errorf("%d bytes read as %d: %d bytes back, other bytes", size, claim, len(got))
			}
			putBuf(got)
		}
	}
	f, err := openDirect(filepath.Join(dir, "chunk"))
	must(t, err)
	defer f.Close()
	if _, err := readChunkFile(f, getBuf(), chunkMax+1); err == nil {
		t.Error("read more than a chunk holds")
	}
}
