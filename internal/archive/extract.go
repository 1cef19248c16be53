package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Extract unpacks a tar archive made by Write into dst (which must exist).
// Existing entries at the same path are replaced (a directory is kept and
// merged if the entry is a directory).
//
// A directory entry "./" stands for dst itself: its owner, mode, extended
// attributes and times are given to dst. Entries that would land outside dst
// are rejected before anything is
// written for them: absolute names, names with a ".." element, and names
// whose parent inside dst is a symbolic link. Owner, mode, extended
// attributes and mtimes are restored; directory mtimes are set last. In
// Overlay kind, ".wh.NAME" entries become whiteouts and ".wh..wh..opq"
// marks its directory opaque. Files are not synced.
func Extract(ctx context.Context, r io.Reader, dst string, kind Kind) (Stats, error) {
	x := &extractor{
		dst:  dst,
		kind: kind,
		dirs: make(map[string]bool),
		fix:  make(map[string]*tar.Header),
	}
	if fi, err := os.Stat(dst); err != nil {
		return x.stats, err
	} else if !fi.IsDir() {
		return x.stats, fmt.Errorf("archive: %s is not a directory", dst)
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return x.stats, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.stats, fmt.Errorf("archive: reading tar: %w", err)
		}
		x.stats.Entries++
		if err := x.entry(tr, hdr); err != nil {
			return x.stats, fmt.Errorf("archive: entry %q: %w", hdr.Name, err)
		}
	}
	return x.stats, x.fixDirs()
}

type extractor struct {
	dst   string
	kind  Kind
	dirs  map[string]bool        // names known to be real directories in dst
	fix   map[string]*tar.Header // directories whose mode and times are set last
	stats Stats
}

// path returns where name lives on disk.
func (x *extractor) path(name string) string {
	return filepath.Join(x.dst, filepath.FromSlash(name))
}

// entry extracts one tar entry.
func (x *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	if isRoot(hdr.Name) {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("the root entry is not a directory")
		}
		return x.setMetadata(".", x.dst, hdr)
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	if x.kind == Overlay && strings.HasPrefix(path.Base(name), whiteoutPrefix) {
		return x.whiteout(hdr, name)
	}
	if err := x.checkParents(name, true); err != nil {
		return err
	}
	target := x.path(name)

	switch hdr.Typeflag {
	case tar.TypeDir:
		if fi, err := os.Lstat(target); err != nil || !fi.IsDir() {
			if err := x.remove(name); err != nil {
				return err
			}
			if err := os.Mkdir(target, 0o755); err != nil {
				return err
			}
		}
		x.dirs[name] = true

	case tar.TypeReg:
		if err := x.remove(name); err != nil {
			return err
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, tr)
		x.stats.Bytes += n
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}

	case tar.TypeSymlink:
		if err := x.remove(name); err != nil {
			return err
		}
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}

	case tar.TypeLink:
		old, err := cleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		if err := x.checkParents(old, false); err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		if old == name {
			return errors.New("hard link to itself")
		}
		if err := x.remove(name); err != nil {
			return err
		}
		// The inode's metadata comes with the entry that created it.
		return os.Link(x.path(old), target)

	case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
		if err := x.remove(name); err != nil {
			return err
		}
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(target, mode|uint32(hdr.Mode&0o7777), int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: target, Err: err}
		}
	}
	return x.setMetadata(name, target, hdr)
}

// whiteout handles an Overlay entry named ".wh.*".
func (x *extractor) whiteout(hdr *tar.Header, name string) error {
	if err := x.checkParents(name, true); err != nil {
		return err
	}
	dir, base := path.Split(name)
	if base == opaqueMarker {
		target := x.path(dir)
		if err := unix.Lsetxattr(target, opaqueXattr, []byte("y"), 0); err != nil {
			return &os.PathError{Op: "lsetxattr " + opaqueXattr, Path: target, Err: err}
		}
		return nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return errors.New("invalid whiteout name")
	}
	name = dir + victim
	if err := x.remove(name); err != nil {
		return err
	}
	target := x.path(name)
	if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
		return &os.PathError{Op: "mknod", Path: target, Err: err}
	}
	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := setTimes(target, hdr); err != nil {
		return err
	}
	x.stats.Deleted++
	return nil
}

// setMetadata restores owner, xattrs, mode and times of a new entry. Mode,
// times and the default ACL of directories are only recorded here, and set by
// fixDirs: a default ACL set now would be inherited by every entry extracted
// into the directory afterwards.
func (x *extractor) setMetadata(name, target string, hdr *tar.Header) error {
	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := setXattrs(target, hdr, func(name string) bool { return name != defaultACL }); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		x.fix[name] = hdr
		return nil
	case tar.TypeSymlink:
		// Linux ignores the mode of symbolic links.
	default:
		// After Lchown, which clears setuid and setgid bits.
		if err := unix.Chmod(target, uint32(hdr.Mode&0o7777)); err != nil {
			return &os.PathError{Op: "chmod", Path: target, Err: err}
		}
	}
	return setTimes(target, hdr)
}

// fixDirs sets the mode and times of the extracted directories, deepest
// first, once nothing more is written into them.
func (x *extractor) fixDirs() error {
	names := make([]string, 0, len(x.fix))
	for name := range x.fix {
		names = append(names, name)
	}
	depth := func(name string) int {
		if name == "." { // dst itself, after everything in it
			return -1
		}
		return strings.Count(name, "/")
	}
	sort.Slice(names, func(i, j int) bool {
		di, dj := depth(names[i]), depth(names[j])
		if di != dj {
			return di > dj
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		hdr, target := x.fix[name], x.path(name)
		if err := setXattrs(target, hdr, func(name string) bool { return name == defaultACL }); err != nil {
			return fmt.Errorf("archive: entry %q: %w", hdr.Name, err)
		}
		if err := unix.Chmod(target, uint32(hdr.Mode&0o7777)); err != nil {
			return fmt.Errorf("archive: entry %q: %w", hdr.Name, &os.PathError{Op: "chmod", Path: target, Err: err})
		}
		if err := setTimes(target, hdr); err != nil {
			return fmt.Errorf("archive: entry %q: %w", hdr.Name, err)
		}
	}
	return nil
}

// checkParents verifies that every parent of name inside dst is a real
// directory, not a symbolic link, creating missing ones if create is set.
func (x *extractor) checkParents(name string, create bool) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		if x.dirs[p] {
			continue
		}
		target := x.path(p)
		fi, err := os.Lstat(target)
		switch {
		case create && errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(target, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("parent %q is a symbolic link", p)
		case !fi.IsDir():
			return fmt.Errorf("parent %q is not a directory", p)
		}
		x.dirs[p] = true
	}
	return nil
}

// remove deletes whatever is at name, forgetting what is known about the
// directories under it.
func (x *extractor) remove(name string) error {
	target := x.path(name)
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return os.Remove(target)
	}
	inside := func(d string) bool { return d == name || strings.HasPrefix(d, name+"/") }
	maps.DeleteFunc(x.dirs, func(d string, _ bool) bool { return inside(d) })
	maps.DeleteFunc(x.fix, func(d string, _ *tar.Header) bool { return inside(d) })
	return os.RemoveAll(target)
}

// isRoot reports whether a tar entry name stands for the archived tree's
// root ("./", as Write names it, or ".").
func isRoot(name string) bool {
	return name == "./" || name == "."
}

// cleanName checks a tar entry name and returns it cleaned.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path")
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return "", errors.New(`path contains ".."`)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", errors.New("empty path")
	}
	return clean, nil
}

// defaultACL is the xattr holding a directory's default ACL, which new
// entries in the directory inherit.
const defaultACL = "system.posix_acl_default"

// setXattrs restores the extended attributes recorded in hdr that want
// accepts, except those of overlayfs itself. Unsupported user.* attributes
// are skipped.
func setXattrs(target string, hdr *tar.Header, want func(name string) bool) error {
	var names []string
	for k := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattr); ok && !isOverlayXattr(name) && want(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		value := hdr.PAXRecords[paxXattr+name]
		if err := unix.Lsetxattr(target, name, []byte(value), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) && strings.HasPrefix(name, "user.") {
				continue
			}
			return &os.PathError{Op: "lsetxattr " + name, Path: target, Err: err}
		}
	}
	return nil
}

// setTimes sets the access and modification times of target, not following
// a final symbolic link.
func setTimes(target string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	at, err := unix.TimeToTimespec(atime)
	if err != nil {
		return err
	}
	mt, err := unix.TimeToTimespec(hdr.ModTime)
	if err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, []unix.Timespec{at, mt}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: target, Err: err}
	}
	return nil
}
