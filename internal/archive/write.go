package archive

import (
	"archive/tar"
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
func Write(ctx context.Context, w io.Writer, root string, kind Kind) (Stats, error) {
	wr := &writer{
		tw:    tar.NewWriter(w),
		root:  root,
		kind:  kind,
		links: make(map[inode]string),
	}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			if p != root && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return wr.add(p)
	})
	if err != nil {
		return wr.stats, err
	}
	if err := wr.tw.Close(); err != nil {
		return wr.stats, fmt.Errorf("archive: %w", err)
	}
	return wr.stats, nil
}

type writer struct {
	tw    *tar.Writer
	root  string
	kind  Kind
	links map[inode]string // first archived name of each multiply linked inode
	stats Stats
}

// add writes the entry (or entries) for the file at p.
func (wr *writer) add(p string) error {
	rel, err := filepath.Rel(wr.root, p)
	if err != nil {
		return err
	}
	name := filepath.ToSlash(rel) // "." for root

	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		Format:  tar.FormatPAX,
	}
	typ := st.Mode & unix.S_IFMT
	if name == "." && typ != unix.S_IFDIR {
		return fmt.Errorf("archive: %s is not a directory", p)
	}

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
	switch typ {
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
		// Open before writing the header, so that a file that has just
		// vanished can still be skipped.
		if file, err = os.Open(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		defer file.Close()
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = os.Readlink(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
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

	attrs, err := readXattrs(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for k, v := range attrs {
		if isOverlayXattr(k) {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords[paxXattr+k] = v
	}

	if err := wr.writeHeader(hdr); err != nil {
		return err
	}
	if file != nil {
		n, err := io.Copy(wr.tw, file)
		wr.stats.Bytes += n
		if errors.Is(err, tar.ErrWriteTooLong) || (err == nil && n != st.Size) {
			return fmt.Errorf("archive: %s: file size changed while reading", p)
		}
		if err != nil {
			return fmt.Errorf("archive: %s: %w", p, err)
		}
	}
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		wr.links[inode{uint64(st.Dev), st.Ino}] = name
	}

	if typ == unix.S_IFDIR && wr.kind == Overlay &&
		(attrs[opaqueXattr] == "y" || attrs[userOpaque] == "y") {
		return wr.writeHeader(&tar.Header{
			Name:     hdr.Name + opaqueMarker,
			Typeflag: tar.TypeReg,
			Uid:      hdr.Uid,
			Gid:      hdr.Gid,
			ModTime:  hdr.ModTime,
			Format:   tar.FormatPAX,
		})
	}
	return nil
}

func (wr *writer) writeHeader(hdr *tar.Header) error {
	if err := wr.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive: %s: %w", hdr.Name, err)
	}
	wr.stats.Entries++
	return nil
}
