// Package atomicfile writes files atomically: readers of a path see either
// what was there before or the whole new file, never part of it, even if
// the writer fails, is killed or the machine crashes.
//
// Every write goes the same way: into a new temporary file in the target's
// directory (os.CreateTemp, so concurrent writers never share one), which
// is flushed to disk, given its mode and renamed over the target; the
// directory is then flushed too, so that the rename survives a crash. On
// any error before the rename the temporary file is removed and the target
// is left as it was.
//
// github.com/moby/sys/atomicwriter, which the engine's client library
// depends on, does most of this, but does not fit: its writer renames the
// temporary file into place on Close unless a Write failed, so a producer
// that fails between writes (an export whose checkpoint turns out to be
// damaged) would leave a partial file under the final name; a writer
// closed without any Write creates nothing; it always replaces (there is
// no rename that refuses an existing file); it refuses symbolic links; and
// it does not flush the directory after the rename.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Existing says what Write does with a file already at the path.
type Existing int

const (
	// Update replaces the file's contents the way os.WriteFile would, but
	// atomically: if the path is a symbolic link, the file it points to is
	// replaced and the link stays; the replaced file keeps its permission
	// bits, and perm applies only to a new file. A dangling symbolic link is
	// replaced by the file. For configuration files shared with others
	// (/etc/criu/runc.conf).
	Update Existing = iota
	// Replace replaces whatever is at the path, a symbolic link itself
	// rather than what it points to, with a file of mode perm. For files
	// that are the program's own.
	Replace
	// NoReplace refuses to write when anything, even a dangling symbolic
	// link, is at the path: Write then returns an error matching ErrExist
	// and writes nothing. The check and the rename are one atomic step where
	// the file system supports renameat2(RENAME_NOREPLACE); elsewhere a
	// file created at the path between the check and the rename is
	// replaced.
	NoReplace
)

func (e Existing) String() string {
	switch e {
	case Update:
		return "Update"
	case Replace:
		return "Replace"
	case NoReplace:
		return "NoReplace"
	}
	return fmt.Sprintf("Existing(%d)", int(e))
}

// ErrExist is matched (errors.Is) by the error of a NoReplace write to a
// path that exists. It matches fs.ErrExist too.
var ErrExist = errors.New("file exists")

// existsError is the error of a NoReplace write to path.
type existsError struct{ path string }

func (e *existsError) Error() string { return e.path + " already exists" }

func (e *existsError) Is(target error) bool { return target == ErrExist || target == fs.ErrExist }

// WriteFile writes data to path atomically, with mode perm for a new file;
// existing says what happens to a file already there. The directory must
// exist.
func WriteFile(path string, data []byte, perm fs.FileMode, existing Existing) error {
	return Write(path, perm, existing, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write writes the file at path through write, atomically: write gets a
// temporary file (mode 0600 while it is written) in the target's
// directory, and only when write returns nil, and the file was flushed to
// disk, is it given its mode and renamed to path. When write or anything
// else fails, nothing appears at path and what was there is left alone;
// write's error is returned as it is. perm is the mode of a new file;
// existing says what happens to a file already at path. The directory must
// exist.
//
// If the directory cannot be flushed after the rename, the new file is in
// place but Write returns the error, since the rename may not survive a
// crash.
func Write(path string, perm fs.FileMode, existing Existing, write func(io.Writer) error) (err error) {
	target, mode, err := resolve(path, perm, existing)
	if err != nil {
		return err
	}
	dir := filepath.Dir(target)
	f, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close() // a second Close fails harmlessly
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	// Chmod by descriptor: the umask does not apply, and the temporary
	// file stays private until it holds everything.
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = rename(f.Name(), target, existing == NoReplace); err != nil {
		return err
	}
	return SyncDir(dir)
}

// resolve returns the path to rename the new file to, and its mode.
func resolve(path string, perm fs.FileMode, existing Existing) (string, fs.FileMode, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path, perm, nil
	case err != nil:
		return "", 0, err
	case existing == NoReplace:
		return "", 0, &existsError{path}
	case existing == Replace:
		return path, perm, nil
	}
	target := path
	if fi.Mode()&fs.ModeSymlink != 0 {
		resolved, err := filepath.EvalSymlinks(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, perm, nil // dangling: the link is replaced
		} else if err != nil {
			return "", 0, err
		}
		if fi, err = os.Stat(resolved); err != nil {
			return "", 0, err
		}
		target = resolved
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("cannot replace %s: not a regular file (%s)", target, fi.Mode().Type())
	}
	return target, fi.Mode().Perm(), nil
}

// rename renames oldpath to newpath; with noReplace, it fails with an
// existsError when newpath exists, atomically where the file system can.
func rename(oldpath, newpath string, noReplace bool) error {
	if !noReplace {
		return os.Rename(oldpath, newpath)
	}
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	switch {
	case errors.Is(err, unix.EEXIST):
		return &existsError{newpath}
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
		// The file system cannot rename without replacing.
		if _, err := os.Lstat(newpath); err == nil {
			return &existsError{newpath}
		}
		return os.Rename(oldpath, newpath)
	case err != nil:
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// SyncDir flushes dir to disk, so that the creations, renames and removals
// of entries in it survive a crash. File systems that cannot flush a
// directory (EINVAL) are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
