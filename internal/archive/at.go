package archive

// The trees Write reads and Extract fills are shared with containers, which
// may rename, delete or replace anything in them while ckpt works. So that no
// symbolic link is ever followed, at any path element, even when the tree
// changes meanwhile, both work only on file descriptors: a directory is
// opened one element at a time with O_NOFOLLOW from its (already open)
// parent, entries are named relative to that pinned parent with *at system
// calls that do not follow a final link, and metadata is read and set through
// a descriptor of the entry itself. What has no *at or f* system call (setting
// times and modes through an O_PATH descriptor, xattrs of a symbolic link)
// goes through /proc/self/fd/N, a "magic link" the kernel resolves to the
// very file the descriptor refers to, not by its name.
//
// os.Root is not used to resolve names: it follows symbolic links that stay
// beneath the root, and its Chmod, Chown and Chtimes may act on a link that
// replaced the file while they run (see its documentation).

import (
	"archive/tar"
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// dirFlags opens a directory for reading its entries; never a link.
	dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	// pathFlags opens any file, a symbolic link itself included, without
	// opening it for I/O: a device or FIFO is not opened.
	pathFlags = unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
)

// openat is unix.Openat, retried when interrupted.
func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// procFd names the file open as fd, whatever its name is now.
func procFd(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// procAt names the element name inside the directory open as dirfd. Only
// calls that do not follow a final symbolic link may use it (the l*xattr
// calls): the directory is pinned by its descriptor, and name is one element.
func procAt(dirfd int, name string) string {
	return procFd(dirfd) + "/" + name
}

// readNames returns the names in the directory open as fd (freshly opened,
// at offset 0), sorted, without "." and "..".
func readNames(fd int) ([]string, error) {
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	return names, nil
}

// removeAllAt removes name, and everything in it if it is a directory, from
// the directory open as dirfd, following no link. A missing name is not an
// error.
func removeAllAt(dirfd int, name string) error {
	for attempt := 0; ; attempt++ {
		err := unix.Unlinkat(dirfd, name, 0)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
			return err
		}
		fd, oerr := openat(dirfd, name, dirFlags, 0)
		switch {
		case errors.Is(oerr, unix.ENOENT):
			return nil
		case (errors.Is(oerr, unix.ENOTDIR) || errors.Is(oerr, unix.ELOOP)) && errors.Is(err, unix.EISDIR) && attempt < 10:
			continue // replaced by a non-directory meanwhile
		case oerr != nil:
			return err
		}
		names, err := readNames(fd)
		for _, n := range names {
			if err == nil {
				err = removeAllAt(fd, n)
			}
		}
		unix.Close(fd)
		if err != nil {
			return err
		}
		err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if errors.Is(err, unix.ENOTEMPTY) && attempt < 10 {
			continue // filled meanwhile
		}
		return err
	}
}

// xattrsOf returns all extended attributes that list and get read; a file
// system without xattr support yields none. op and path name the file in
// errors.
func xattrsOf(list func([]byte) (int, error), get func(string, []byte) (int, error), op, path string) (map[string]string, error) {
	var buf []byte
	for {
		n, err := list(nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: op + "listxattr", Path: path, Err: err}
		}
		if n == 0 {
			return nil, nil
		}
		buf = make([]byte, n)
		n, err = list(buf)
		if errors.Is(err, unix.ERANGE) {
			continue // the list grew in between; ask again
		}
		if err != nil {
			return nil, &os.PathError{Op: op + "listxattr", Path: path, Err: err}
		}
		buf = buf[:n]
		break
	}
	attrs := make(map[string]string)
	for _, name := range strings.Split(string(buf), "\x00") {
		if name == "" {
			continue
		}
		value, err := xattrValue(get, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed in between
		}
		if err != nil {
			return nil, &os.PathError{Op: op + "getxattr " + name, Path: path, Err: err}
		}
		attrs[name] = string(value)
	}
	return attrs, nil
}

func xattrValue(get func(string, []byte) (int, error), name string) ([]byte, error) {
	for {
		n, err := get(name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = get(name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// fdXattrs returns the extended attributes of the file open (not O_PATH) as
// fd.
func fdXattrs(fd int, path string) (map[string]string, error) {
	return xattrsOf(
		func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) },
		"f", path)
}

// atXattrs returns the extended attributes of name in the directory open as
// dirfd, not following name if it is a symbolic link.
func atXattrs(dirfd int, name, path string) (map[string]string, error) {
	p := procAt(dirfd, name)
	return xattrsOf(
		func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		func(n string, b []byte) (int, error) { return unix.Lgetxattr(p, n, b) },
		"l", path)
}

// node is a file being restored, with a descriptor of its own.
type node struct {
	fd     int    // the file itself; O_PATH if opath
	opath  bool   // fd is O_PATH: no f* calls but fchownat(AT_EMPTY_PATH)
	link   bool   // the file is a symbolic link (fd is O_PATH)
	parent int    // the directory holding it (for a link), or -1
	base   string // its name in parent
	path   string // its full name, for errors
}

func (n node) chown(uid, gid int) error {
	var err error
	if n.opath {
		err = unix.Fchownat(n.fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
	} else {
		err = unix.Fchown(n.fd, uid, gid)
	}
	if err != nil {
		return &os.PathError{Op: "chown", Path: n.path, Err: err}
	}
	return nil
}

func (n node) setxattr(name string, value []byte) error {
	var err error
	switch {
	case !n.opath:
		err = unix.Fsetxattr(n.fd, name, value, 0)
	case n.link:
		err = unix.Lsetxattr(procAt(n.parent, n.base), name, value, 0)
	default:
		err = unix.Setxattr(procFd(n.fd), name, value, 0)
	}
	return err
}

func (n node) chmod(mode uint32) error {
	var err error
	if n.opath {
		err = unix.Fchmodat(unix.AT_FDCWD, procFd(n.fd), mode, 0)
	} else {
		err = unix.Fchmod(n.fd, mode)
	}
	if err != nil {
		return &os.PathError{Op: "chmod", Path: n.path, Err: err}
	}
	return nil
}

// setTimes sets the access and modification times recorded in hdr.
func (n node) setTimes(hdr *tar.Header) error {
	ts, err := times(hdr)
	if err != nil {
		return err
	}
	if n.link {
		err = unix.UtimesNanoAt(n.parent, n.base, ts, unix.AT_SYMLINK_NOFOLLOW)
	} else {
		err = unix.UtimesNanoAt(unix.AT_FDCWD, procFd(n.fd), ts, 0)
	}
	if err != nil {
		return &os.PathError{Op: "utimensat", Path: n.path, Err: err}
	}
	return nil
}
