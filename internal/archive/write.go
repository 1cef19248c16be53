package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// Write streams the tree at root into w as a tar archive (PAX format). It
// reads every file once and never holds a whole file in memory. It checks ctx
// between entries and returns ctx.Err() when cancelled.
//
// The first entry is "./", root itself, so that the tree's top directory
// keeps its mode, owner, extended attributes (ACLs included) and times: a
// volume's root is a database's data directory, and servers such as
// PostgreSQL and MariaDB refuse or mistrust one whose mode changed. Other
// entries are named relative to root with "/" separators, directories with a
// trailing "/", in lexical order, so the same tree always gives the same
// bytes. Mode, numeric owner, mtime (to the nanosecond) and extended
// attributes are kept; overlayfs' own xattrs are not. Hard links become link
// entries to the first path seen, Unix sockets are skipped, and files that
// vanish during the walk are skipped silently.
//
// No symbolic link is followed, at any path element, even if the tree
// changes during the walk: root itself must be a directory, not a link to
// one, a link inside it is archived as a link, and every file is opened from
// its already open parent directory without following links (see at.go).
// Metadata comes from the opened file, not from a separate lookup by name.
//
// When w is an io.ReaderFrom, it reads each file's data itself (see
// stream); w gets no other large write. When w has a Cut method (the
// store's chunked files), it is called before the header of each regular
// file of format.EntryCut bytes or more and after its data, so that such a
// file's bytes take chunks of their own.
func Write(ctx context.Context, w io.Writer, root string, kind Kind) (Stats, error) {
	wr := &writer{
		out:   newStream(w),
		root:  root,
		kind:  kind,
		links: make(map[inode]string),
	}
	fd, err := openat(unix.AT_FDCWD, root, dirFlags, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return wr.stats, fmt.Errorf("archive: %s is not a directory", root)
		}
		return wr.stats, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(fd)
	if err := ctx.Err(); err != nil {
		return wr.stats, err
	}
	if err := wr.tree(ctx, fd, "."); err != nil {
		return wr.stats, err
	}
	if err := wr.out.close(); err != nil {
		return wr.stats, fmt.Errorf("archive: %w", err)
	}
	return wr.stats, nil
}

type writer struct {
	out   *stream
	root  string
	kind  Kind
	links map[inode]string // first archived name of each multiply linked inode
	stats Stats
}

// path returns the full name of name, for errors.
func (wr *writer) path(name string) string {
	return filepath.Join(wr.root, filepath.FromSlash(name))
}

// header starts the header of name from its metadata.
func header(name string, st *unix.Stat_t) *tar.Header {
	return &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		Format:  tar.FormatPAX,
	}
}

// addXattrs records attrs in hdr, except those of overlayfs.
func addXattrs(hdr *tar.Header, attrs map[string]string) {
	for k, v := range attrs {
		if isOverlayXattr(k) {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords[paxXattr+k] = v
	}
}

// tree writes the entries of the directory open (for reading) as fd and
// named name ("." for root): the directory itself, then what it holds, in
// lexical order.
func (wr *writer) tree(ctx context.Context, fd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: wr.path(name), Err: err}
	}
	attrs, err := fdXattrs(fd, wr.path(name))
	if err != nil {
		return err
	}
	hdr := header(name, &st)
	hdr.Typeflag = tar.TypeDir
	hdr.Name += "/"
	addXattrs(hdr, attrs)
	if err := wr.writeHeader(hdr); err != nil {
		return err
	}
	if wr.kind == Overlay && (attrs[opaqueXattr] == "y" || attrs[userOpaque] == "y") {
		err := wr.writeHeader(&tar.Header{
			Name:     hdr.Name + opaqueMarker,
			Typeflag: tar.TypeReg,
			Uid:      hdr.Uid,
			Gid:      hdr.Gid,
			ModTime:  hdr.ModTime,
			Format:   tar.FormatPAX,
		})
		if err != nil {
			return err
		}
	}

	names, err := readNames(fd)
	if err != nil {
		return &os.PathError{Op: "readdirent", Path: wr.path(name), Err: err}
	}
	for _, base := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		child := base
		if name != "." {
			child = name + "/" + base
		}
		if err := wr.add(ctx, fd, base, child); err != nil {
			return err
		}
	}
	return nil
}

// add writes the entry (or entries) for base, named name, in the directory
// open as dir.
func (wr *writer) add(ctx context.Context, dir int, base, name string) error {
	p := wr.path(name)
	fd, err := openat(dir, base, pathFlags, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	hdr := header(name, &st)
	typ := st.Mode & unix.S_IFMT

	switch {
	case typ == unix.S_IFSOCK:
		return nil
	case typ == unix.S_IFCHR && st.Rdev == 0 && wr.kind == Overlay:
		// A whiteout. Overlayfs may hard-link whiteouts to one shared
		// inode, so this comes before the hard-link check.
		hdr.Name = path.Join(path.Dir(name), whiteoutPrefix+path.Base(name))
		hdr.Typeflag = tar.TypeReg
		hdr.Mode = 0
		if err := wr.writeHeader(hdr); err != nil {
			return err
		}
		wr.stats.Deleted++
		return nil
	case typ != unix.S_IFDIR && st.Nlink > 1:
		if first, ok := wr.links[inode{uint64(st.Dev), st.Ino}]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			return wr.writeHeader(hdr)
		}
	}

	var file *os.File
	var attrs map[string]string
	switch typ {
	case unix.S_IFDIR:
		// "." from the O_PATH descriptor is the same directory, whatever
		// its name holds now.
		dfd, err := openat(fd, ".", dirFlags, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: p, Err: err}
		}
		defer unix.Close(dfd)
		return wr.tree(ctx, dfd, name)
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
		// Reopened through the O_PATH descriptor: the very inode just
		// checked to be a regular file, never a device or a link that
		// took its name since.
		rfd, err := openat(unix.AT_FDCWD, procFd(fd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: p, Err: err}
		}
		file = os.NewFile(uintptr(rfd), p)
		defer file.Close()
		if attrs, err = fdXattrs(rfd, p); err != nil {
			return err
		}
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = readlinkFd(fd); err != nil {
			return &os.PathError{Op: "readlinkat", Path: p, Err: err}
		}
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if typ == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(uint64(st.Rdev)))
		hdr.Devminor = int64(unix.Minor(uint64(st.Rdev)))
	default:
		return fmt.Errorf("archive: %s: unknown file type %#o", p, typ)
	}
	if file == nil {
		// A link, FIFO or device, which is not opened: its xattrs are
		// read by its name in the pinned parent, not following it.
		if attrs, err = atXattrs(dir, base, p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
	}
	addXattrs(hdr, attrs)

	if err := wr.writeHeader(hdr); err != nil {
		return err
	}
	if file != nil {
		n, err := wr.out.body(file, st.Size)
		wr.stats.Bytes += n
		if errors.Is(err, errSizeChanged) {
			return fmt.Errorf("archive: %s: file size changed while reading", p)
		}
		if err != nil {
			return fmt.Errorf("archive: %s: %w", p, err)
		}
	}
	if st.Nlink > 1 {
		wr.links[inode{uint64(st.Dev), st.Ino}] = name
	}
	return nil
}

// readlinkFd returns the target of the symbolic link open (O_PATH) as fd.
func readlinkFd(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func (wr *writer) writeHeader(hdr *tar.Header) error {
	if err := wr.out.header(hdr); err != nil {
		return fmt.Errorf("archive: %s: %w", hdr.Name, err)
	}
	wr.stats.Entries++
	return nil
}

// stream writes a tar archive as archive/tar's Writer does, byte for byte
// (TestStreamAsTarWriter), except that a file's data goes to a writer that
// can read it itself (io.ReaderFrom) through its ReadFrom: the store's
// chunk writer reads a volume's files straight into its chunk buffers.
// Through tar.Writer each byte was read into a buffer of io.Copy's and
// copied again into the chunk's, on the one goroutine that also finds the
// chunk boundaries: the longest part of a save of a small container with a
// large volume.
type stream struct {
	w   io.Writer
	rf  io.ReaderFrom // w's, when it has one
	cut cutter        // w's, when it has one
	hdr bytes.Buffer
	err error
}

// cutter is a writer that can end a chunk where it is (store.File).
type cutter interface{ Cut() error }

func newStream(w io.Writer) *stream {
	s := &stream{w: w}
	s.rf, _ = w.(io.ReaderFrom)
	s.cut, _ = w.(cutter)
	return s
}

// cutAround cuts w's chunks before and after an entry of size bytes, when
// the entry is large enough to take chunks of its own.
func (s *stream) cutAround(size int64) error {
	if s.cut == nil || size < format.EntryCut {
		return nil
	}
	return s.cut.Cut()
}

// errSizeChanged is body's error for a file that holds more or fewer bytes
// than its header says.
var errSizeChanged = errors.New("file size changed while reading")

// zeros pads entries to a block and ends the archive.
var zeros [2 * blockSize]byte

const blockSize = 512

// header writes the header of the next entry, encoded by archive/tar (PAX
// records included). An entry with data must get it from body.
func (s *stream) header(hdr *tar.Header) error {
	if s.err != nil {
		return s.err
	}
	s.hdr.Reset()
	if err := tar.NewWriter(&s.hdr).WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg {
		if s.err = s.cutAround(hdr.Size); s.err != nil {
			return s.err
		}
	}
	_, s.err = s.w.Write(s.hdr.Bytes())
	return s.err
}

// body writes the data of the entry whose header came last: size bytes read
// from r, then zeros to the end of the block. It returns errSizeChanged
// when r ends before size bytes or holds more.
func (s *stream) body(r io.Reader, size int64) (n int64, err error) {
	if s.err != nil {
		return 0, s.err
	}
	lr := &io.LimitedReader{R: r, N: size}
	if s.rf != nil {
		n, err = s.rf.ReadFrom(lr)
	} else {
		n, err = io.Copy(s.w, lr)
	}
	if err == nil && n < size {
		err = errSizeChanged
	}
	if err == nil {
		var one [1]byte
		if k, _ := io.ReadFull(r, one[:]); k > 0 {
			err = errSizeChanged
		}
	}
	if err == nil {
		_, err = s.w.Write(zeros[:-size&(blockSize-1)])
	}
	if err == nil {
		err = s.cutAround(size)
	}
	// After a failure the archive cannot go on: its stream holds a short
	// entry.
	s.err = err
	return n, err
}

// close ends the archive with two zero blocks.
func (s *stream) close() error {
	if s.err != nil {
		return s.err
	}
	_, s.err = s.w.Write(zeros[:])
	return s.err
}
