package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
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
//
// No symbolic link is followed, at any path element, even if something else
// changes dst during the extraction: dst itself must be a directory, not a
// link to one; every parent directory is opened one element at a time
// without following links, and every entry is created and given its
// metadata relative to its open parent or through a descriptor of its own
// (see at.go). A directory swapped for a link meanwhile is an error, never a
// way out of dst.
//
// Extract takes the archive's word for how much it holds; ExtractLimited
// does not.
func Extract(ctx context.Context, r io.Reader, dst string, kind Kind) (Stats, error) {
	return extract(ctx, r, dst, kind, nil)
}

// Limits are the most an archive may hold, as the manifest of its
// checkpoint declares it (format.Volume's and format.Layer's Entries and
// Bytes): Entries tar entries and Bytes bytes of regular-file content,
// both counted as Stats counts them, so that the Stats that Write returned
// are the limits its archive extracts within. Every entry counts, the root
// entry "./", whiteouts and opaque markers included, and so does every
// directory made for an entry whose parent the archive lacks (Write's
// archives have none); Bytes are those of the regular files written. Zero
// is a limit like any other: an archive whose manifest declares no bytes
// may hold no file content. A manifest from elsewhere chooses the
// numbers, so none of them can mean "no limit".
type Limits struct {
	Entries, Bytes int64
}

// LimitError is the error of ExtractLimited when the archive holds more
// than its Limits.
type LimitError struct {
	// What is "entries" or "bytes of file content".
	What string
	// Limit is the limit the archive went past.
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("the archive holds more %s than its manifest declares (%d)", e.What, e.Limit)
}

// ExtractLimited is Extract of an archive that may hold lim at most. It
// stops with a *LimitError before it creates the entry that goes past
// lim.Entries, or the regular file whose data would take the bytes past
// lim.Bytes: a checkpoint from elsewhere whose archive holds a million
// small files, or many GiB, while its manifest declares a few, costs the
// file system no more inodes and bytes than were declared (what was
// extracted before the error stays in dst). A negative limit is an error.
func ExtractLimited(ctx context.Context, r io.Reader, dst string, kind Kind, lim Limits) (Stats, error) {
	if lim.Entries < 0 || lim.Bytes < 0 {
		return Stats{}, fmt.Errorf("archive: invalid limits: %d entries, %d bytes", lim.Entries, lim.Bytes)
	}
	return extract(ctx, r, dst, kind, &lim)
}

// extract is Extract within lim, or without limits when lim is nil.
func extract(ctx context.Context, r io.Reader, dst string, kind Kind, lim *Limits) (Stats, error) {
	x := &extractor{
		dst:     dst,
		kind:    kind,
		lim:     lim,
		cacheFd: -1,
		fix:     make(map[string]*tar.Header),
	}
	fd, err := openat(unix.AT_FDCWD, dst, dirFlags, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return x.stats, fmt.Errorf("archive: %s is not a directory", dst)
		}
		return x.stats, &os.PathError{Op: "open", Path: dst, Err: err}
	}
	x.root = fd
	defer x.close()
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
		if x.lim != nil && x.stats.Entries+x.made >= x.lim.Entries {
			return x.stats, fmt.Errorf("archive: entry %q: %w", hdr.Name, &LimitError{What: "entries", Limit: x.lim.Entries})
		}
		x.stats.Entries++
		if err := x.entry(tr, hdr); err != nil {
			return x.stats, fmt.Errorf("archive: entry %q: %w", hdr.Name, err)
		}
	}
	return x.stats, x.fixDirs()
}

type extractor struct {
	dst     string
	root    int // dst, open
	kind    Kind
	lim     *Limits                // what the archive may hold, or nil
	made    int64                  // directories made for entries whose parents the archive lacks
	cache   string                 // the directory last opened for entries, and
	cacheFd int                    // its descriptor, or -1
	fix     map[string]*tar.Header // directories whose mode and times are set last
	stats   Stats
}

func (x *extractor) close() {
	x.forget("")
	unix.Close(x.root)
}

// path returns where name lives on disk, for errors.
func (x *extractor) path(name string) string {
	return filepath.Join(x.dst, filepath.FromSlash(name))
}

// walk opens the directory dir (a clean relative name, "." for dst) one
// element at a time from dst, following no link, creating missing elements
// if create is set. done closes what walk opened.
func (x *extractor) walk(dir string, create bool) (fd int, done func(), err error) {
	cur, owned := x.root, false
	release := func() {
		if owned {
			unix.Close(cur)
		}
	}
	if dir == "." || dir == "" {
		return cur, release, nil
	}
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		elem := path.Base(p)
		next, err := openat(cur, elem, dirFlags, 0)
		if create && errors.Is(err, unix.ENOENT) {
			if err := x.implied(); err != nil {
				release()
				return -1, nil, err
			}
			if err = unix.Mkdirat(cur, elem, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = openat(cur, elem, dirFlags, 0)
			}
		}
		if err != nil {
			var st unix.Stat_t
			switch {
			case (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) &&
				unix.Fstatat(cur, elem, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
				st.Mode&unix.S_IFMT == unix.S_IFLNK:
				err = fmt.Errorf("parent %q is a symbolic link", p)
			case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
				err = fmt.Errorf("parent %q is not a directory", p)
			default:
				err = &os.PathError{Op: "open", Path: x.path(p), Err: err}
			}
			release()
			return -1, nil, err
		}
		release()
		cur, owned = next, true
	}
	return cur, release, nil
}

// implied counts a directory that an entry's name implies and the archive
// lacks, before walk makes it: an inode like an entry's, so it counts
// against the limit of entries (an entry "a/b/.../z" would make hundreds).
// Write's archives imply none: a directory comes before what it holds.
func (x *extractor) implied() error {
	if x.lim != nil && x.stats.Entries+x.made >= x.lim.Entries {
		return &LimitError{What: "entries", Limit: x.lim.Entries}
	}
	x.made++
	return nil
}

// parent returns the open directory that holds name (kept open for the
// entries that follow) and name's last element.
func (x *extractor) parent(name string, create bool) (int, string, error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return x.root, base, nil
	}
	if x.cacheFd >= 0 && x.cache == dir {
		return x.cacheFd, base, nil
	}
	fd, _, err := x.walk(dir, create)
	if err != nil {
		return -1, "", err
	}
	x.forget("")
	x.cache, x.cacheFd = dir, fd
	return fd, base, nil
}

// forget closes the cached directory if it is name or lies under it (any
// if name is "").
func (x *extractor) forget(name string) {
	if x.cacheFd >= 0 && (name == "" || x.cache == name || strings.HasPrefix(x.cache, name+"/")) {
		unix.Close(x.cacheFd)
		x.cache, x.cacheFd = "", -1
	}
}

// openNode opens base in dir without following it, checks that it is of type
// typ (it was just made so) and returns it as a node. The caller closes
// n.fd.
func (x *extractor) openNode(dir int, base, name string, typ uint32) (node, error) {
	n := node{parent: dir, base: base, path: x.path(name), opath: true, link: typ == unix.S_IFLNK}
	fd, err := openat(dir, base, pathFlags, 0)
	if err != nil {
		return n, &os.PathError{Op: "open", Path: n.path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return n, &os.PathError{Op: "fstat", Path: n.path, Err: err}
	}
	if st.Mode&unix.S_IFMT != typ {
		unix.Close(fd)
		return n, fmt.Errorf("%s changed type during extraction", n.path)
	}
	n.fd = fd
	return n, nil
}

// entry extracts one tar entry.
func (x *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	if isRoot(hdr.Name) {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("the root entry is not a directory")
		}
		return x.setMetadata(".", node{fd: x.root, parent: -1, path: x.dst}, hdr)
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
	// Before anything is made for the entry. x.stats.Bytes never exceeds
	// x.lim.Bytes: the difference does not overflow.
	if hdr.Typeflag == tar.TypeReg && x.lim != nil && hdr.Size > x.lim.Bytes-x.stats.Bytes {
		return &LimitError{What: "bytes of file content", Limit: x.lim.Bytes}
	}
	dir, base, err := x.parent(name, true)
	if err != nil {
		return err
	}
	target := x.path(name)

	switch hdr.Typeflag {
	case tar.TypeDir:
		var st unix.Stat_t
		if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := x.remove(dir, base, name); err != nil {
				return err
			}
			if err := unix.Mkdirat(dir, base, 0o755); err != nil {
				return &os.PathError{Op: "mkdir", Path: target, Err: err}
			}
		}
		fd, err := openat(dir, base, dirFlags, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: target, Err: err}
		}
		defer unix.Close(fd)
		return x.setMetadata(name, node{fd: fd, parent: -1, path: target}, hdr)

	case tar.TypeReg:
		if err := x.remove(dir, base, name); err != nil {
			return err
		}
		fd, err := openat(dir, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &os.PathError{Op: "open", Path: target, Err: err}
		}
		f := os.NewFile(uintptr(fd), target)
		n, err := io.Copy(f, tr)
		x.stats.Bytes += n
		if err == nil {
			err = x.setMetadata(name, node{fd: fd, parent: -1, path: target}, hdr)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err

	case tar.TypeSymlink:
		if err := x.remove(dir, base, name); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, dir, base); err != nil {
			return &os.LinkError{Op: "symlink", Old: hdr.Linkname, New: target, Err: err}
		}
		return x.setNode(dir, base, name, unix.S_IFLNK, hdr)

	case tar.TypeLink:
		old, err := cleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		odir, obase := path.Split(old)
		ofd, done, err := x.walk(strings.TrimSuffix(odir, "/"), false)
		if err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		defer done()
		if old == name {
			return errors.New("hard link to itself")
		}
		if err := x.remove(dir, base, name); err != nil {
			return err
		}
		// The inode's metadata comes with the entry that created it.
		// Without AT_SYMLINK_FOLLOW, linkat does not follow obase.
		if err := unix.Linkat(ofd, obase, dir, base, 0); err != nil {
			return &os.LinkError{Op: "link", Old: x.path(old), New: target, Err: err}
		}
		return nil

	default: // tar.TypeFifo, tar.TypeChar, tar.TypeBlock
		if err := x.remove(dir, base, name); err != nil {
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
		if err := unix.Mknodat(dir, base, mode|uint32(hdr.Mode&0o7777), int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: target, Err: err}
		}
		return x.setNode(dir, base, name, mode, hdr)
	}
}

// setNode gives base in dir, just made of type typ, the metadata in hdr.
func (x *extractor) setNode(dir int, base, name string, typ uint32, hdr *tar.Header) error {
	n, err := x.openNode(dir, base, name, typ)
	if err != nil {
		return err
	}
	defer unix.Close(n.fd)
	return x.setMetadata(name, n, hdr)
}

// whiteout handles an Overlay entry named ".wh.*".
func (x *extractor) whiteout(hdr *tar.Header, name string) error {
	dir, base, err := x.parent(name, true)
	if err != nil {
		return err
	}
	if base == opaqueMarker {
		// dir is open for reading: its own xattr, by descriptor.
		if err := unix.Fsetxattr(dir, opaqueXattr, []byte("y"), 0); err != nil {
			return &os.PathError{Op: "setxattr " + opaqueXattr, Path: x.path(path.Dir(name)), Err: err}
		}
		return nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return errors.New("invalid whiteout name")
	}
	name = path.Join(path.Dir(name), victim)
	if err := x.remove(dir, victim, name); err != nil {
		return err
	}
	target := x.path(name)
	if err := unix.Mknodat(dir, victim, unix.S_IFCHR, 0); err != nil {
		return &os.PathError{Op: "mknod", Path: target, Err: err}
	}
	n, err := x.openNode(dir, victim, name, unix.S_IFCHR)
	if err != nil {
		return err
	}
	defer unix.Close(n.fd)
	if err := n.chown(hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := n.setTimes(hdr); err != nil {
		return err
	}
	x.stats.Deleted++
	return nil
}

// setMetadata restores owner, xattrs, mode and times of a new entry. Mode,
// times and the default ACL of directories are only recorded here, and set by
// fixDirs: a default ACL set now would be inherited by every entry extracted
// into the directory afterwards.
func (x *extractor) setMetadata(name string, n node, hdr *tar.Header) error {
	if err := n.chown(hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := setXattrs(n, hdr, func(name string) bool { return name != defaultACL }); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		x.fix[name] = hdr
		return nil
	case tar.TypeSymlink:
		// Linux ignores the mode of symbolic links.
	default:
		// After chown, which clears setuid and setgid bits.
		if err := n.chmod(uint32(hdr.Mode & 0o7777)); err != nil {
			return err
		}
	}
	return n.setTimes(hdr)
}

// fixDirs sets the mode and times of the extracted directories, deepest
// first, once nothing more is written into them. Each is opened again from
// dst, following no link.
func (x *extractor) fixDirs() error {
	x.forget("")
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
		if err := x.fixDir(name, x.fix[name]); err != nil {
			return fmt.Errorf("archive: entry %q: %w", x.fix[name].Name, err)
		}
	}
	return nil
}

func (x *extractor) fixDir(name string, hdr *tar.Header) error {
	fd, done, err := x.walk(name, false)
	if err != nil {
		return err
	}
	defer done()
	n := node{fd: fd, parent: -1, path: x.path(name)}
	if err := setXattrs(n, hdr, func(name string) bool { return name == defaultACL }); err != nil {
		return err
	}
	if err := n.chmod(uint32(hdr.Mode & 0o7777)); err != nil {
		return err
	}
	return n.setTimes(hdr)
}

// remove deletes base, named name, from the open directory dir, whatever it
// is, forgetting what is known about the directories under it.
func (x *extractor) remove(dir int, base, name string) error {
	var st unix.Stat_t
	err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "lstat", Path: x.path(name), Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		inside := func(d string) bool { return d == name || strings.HasPrefix(d, name+"/") }
		maps.DeleteFunc(x.fix, func(d string, _ *tar.Header) bool { return inside(d) })
		x.forget(name)
	}
	if err := removeAllAt(dir, base); err != nil {
		return &os.PathError{Op: "remove", Path: x.path(name), Err: err}
	}
	return nil
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
func setXattrs(n node, hdr *tar.Header, want func(name string) bool) error {
	var names []string
	for k := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattr); ok && !isOverlayXattr(name) && want(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		value := hdr.PAXRecords[paxXattr+name]
		if err := n.setxattr(name, []byte(value)); err != nil {
			if errors.Is(err, unix.ENOTSUP) && strings.HasPrefix(name, "user.") {
				continue
			}
			return &os.PathError{Op: "setxattr " + name, Path: n.path, Err: err}
		}
	}
	return nil
}

// times returns the access and modification times recorded in hdr, for
// utimensat.
func times(hdr *tar.Header) ([]unix.Timespec, error) {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	at, err := unix.TimeToTimespec(atime)
	if err != nil {
		return nil, err
	}
	mt, err := unix.TimeToTimespec(hdr.ModTime)
	if err != nil {
		return nil, err
	}
	return []unix.Timespec{at, mt}, nil
}
