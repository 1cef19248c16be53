package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/cgroup"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// maxImage bounds the size of the images inspect decodes (all but the
// memory pages, which it never reads whole). Real ones are kilobytes to a
// few megabytes.
const maxImage = 256 << 20

// imageError names the image that could not be decoded.
type imageError struct {
	// Image is the path of the image relative to the checkpoint
	// ("criu/pstree.img").
	Image string
	Err   error
}

func (e *imageError) Error() string { return e.Image + ": " + e.Err.Error() }
func (e *imageError) Unwrap() error { return e.Err }

// Image returns the image (relative to the checkpoint, "criu/pstree.img")
// that err is about, or "".
func Image(err error) string {
	var ie *imageError
	if errors.As(err, &ie) {
		return ie.Image
	}
	return ""
}

// relImage is the path of image name relative to the checkpoint.
func relImage(name string) string { return path.Join(format.ImagesDir, name) }

func imgErr(name string, format string, args ...any) error {
	return &imageError{Image: relImage(name), Err: fmt.Errorf(format, args...)}
}

// pathErr strips the path from an error of the os package: the messages
// name the image relative to the checkpoint instead.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil {
		return pe.Err
	}
	return err
}

// errMissing marks an image that does not exist.
var errMissing = errors.New("missing from the checkpoint")

// decode reads image name of the checkpoint in dir, which must be an image
// of kind magic (a name of go-criu's magic table, "PSTREE"), with go-criu's
// decoder, and returns its entries, each of entry's type (for PAGEMAP, a
// head and then entries). It checks the image's framing first, so that a
// truncated or corrupt image is an error naming the file rather than a
// partial decode or a huge allocation.
func decode(dir, name, magic string, entry proto.Message) ([]proto.Message, error) {
	f, err := os.Open(filepath.Join(dir, format.ImagesDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &imageError{Image: relImage(name), Err: errMissing}
	} else if err != nil {
		return nil, &imageError{Image: relImage(name), Err: pathErr(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &imageError{Image: relImage(name), Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, imgErr(name, "not a regular file")
	}
	if st.Size() > maxImage {
		return nil, imgErr(name, "too large to be a %s image (%d bytes)", magic, st.Size())
	}
	if st.Size() < 4 {
		return nil, imgErr(name, "truncated: %d bytes, not even a CRIU image header", st.Size())
	}
	got, err := crit.ReadMagic(f)
	if err != nil {
		return nil, imgErr(name, "not a CRIU image: %v", err)
	}
	if got != magic {
		return nil, imgErr(name, "holds a %s image where a %s image belongs", got, magic)
	}
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, &imageError{Image: relImage(name), Err: err}
	}
	if err := checkFraming(f, start, st.Size()); err != nil {
		return nil, &imageError{Image: relImage(name), Err: err}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, &imageError{Image: relImage(name), Err: err}
	}
	img, err := crit.New(f, nil, "", false, true).Decode(entry)
	if err != nil {
		return nil, imgErr(name, "cannot decode: %v", err)
	}
	out := make([]proto.Message, 0, len(img.Entries))
	for _, e := range img.Entries {
		if e == nil || e.Message == nil {
			return nil, imgErr(name, "cannot decode: empty entry")
		}
		out = append(out, e.Message)
	}
	return out, nil
}

// checkFraming checks that the bytes of f from off to size are a sequence of
// entries, each a 32-bit little-endian length and that many bytes.
func checkFraming(f io.ReaderAt, off, size int64) error {
	var b [4]byte
	for i := 1; off < size; i++ {
		if size-off < 4 {
			return fmt.Errorf("truncated: %d stray bytes after entry %d", size-off, i-1)
		}
		if _, err := f.ReadAt(b[:], off); err != nil {
			return err
		}
		n := int64(binary.LittleEndian.Uint32(b[:]))
		off += 4
		if n > size-off {
			return fmt.Errorf("truncated: entry %d needs %d bytes, %d left", i, n, size-off)
		}
		off += n
	}
	return nil
}

// decodeAs is decode for images of one entry type, checked.
func decodeAs[T proto.Message](dir, name, magic string) ([]T, error) {
	var zero T
	msgs, err := decode(dir, name, magic, zero.ProtoReflect().New().Interface())
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		t, ok := m.(T)
		if !ok {
			return nil, imgErr(name, "unexpected entry of type %T", m)
		}
		out = append(out, t)
	}
	return out, nil
}

// decodeOne is decodeAs for images that hold exactly one entry.
func decodeOne[T proto.Message](dir, name, magic string) (T, error) {
	var zero T
	es, err := decodeAs[T](dir, name, magic)
	if err != nil {
		return zero, err
	}
	if len(es) != 1 {
		return zero, imgErr(name, "holds %d entries, want 1", len(es))
	}
	return es[0], nil
}

// CgroupPaths returns the cgroup paths of the checkpoint's processes as
// CRIU recorded them in cgroup.img (host paths without a leading "/", such
// as "system.slice/docker-<id>.scope"), each once, in the image's order.
func CgroupPaths(dir string) ([]string, error) {
	cg, err := decodeOne[*cgroup.CgroupEntry](dir, "cgroup.img", "CGROUP")
	if err != nil {
		return nil, err
	}
	var paths []string
	seen := map[string]bool{}
	for _, set := range cg.GetSets() {
		for _, m := range set.GetCtls() {
			if p := m.GetPath(); !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
	}
	return paths, nil
}
