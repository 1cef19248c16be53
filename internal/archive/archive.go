// Package archive streams directory trees to and from tar archives.
//
// It knows two kinds of tree: plain directories, such as the contents of a
// Docker named volume, and overlayfs upper directories, such as a container's
// writable layer. In an upper directory a deleted path is a character device
// 0/0 (a whiteout) and a directory that hides the lower layers carries the
// xattr trusted.overlay.opaque="y". In the archive these are written the way
// OCI image layers write them: an empty file ".wh.NAME" for a whiteout and an
// empty file ".wh..wh..opq" inside an opaque directory.
package archive

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind says how a tree is stored.
type Kind int

const (
	// Plain is a plain directory tree, archived as it is.
	Plain Kind = iota
	// Overlay is an overlayfs upper directory: whiteouts and opaque
	// directories are converted to and from the OCI layer convention.
	Overlay
)

// Stats describes what an archive holds.
type Stats struct {
	Entries int64 // tar entries written or read
	Bytes   int64 // bytes of regular-file content
	Deleted int64 // whiteouts (deleted paths), Overlay only
}

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	paxXattr       = "SCHILY.xattr."
	opaqueXattr    = "trusted.overlay.opaque"
	userOpaque     = "user.overlay.opaque"
)

// inode identifies a file across hard links.
type inode struct{ dev, ino uint64 }

// isOverlayXattr reports whether an xattr belongs to overlayfs itself. Such
// xattrs are never archived and never restored from an archive.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// Size walks root and returns the number of bytes of regular-file content
// (for free-space estimates). A file with several hard links counts once.
func Size(root string) (int64, error) {
	var total int64
	seen := make(map[inode]bool)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != root && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		if st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += st.Size
		return nil
	})
	return total, err
}

// IsEmpty reports whether directory dir has no entries.
func IsEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// Clear removes everything inside dir, keeping dir itself. Symbolic links
// inside dir are removed, never followed.
func Clear(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// readXattrs returns all extended attributes of path, without following a
// final symbolic link. A file system without xattr support yields none.
func readXattrs(path string) (map[string]string, error) {
	return xattrsOf(
		func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		func(n string, b []byte) (int, error) { return unix.Lgetxattr(path, n, b) },
		"l", path)
}

func getXattr(path, name string) ([]byte, error) {
	return xattrValue(func(n string, b []byte) (int, error) { return unix.Lgetxattr(path, n, b) }, name)
}
