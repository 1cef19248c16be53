package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Chunks are written with O_DIRECT, from the process's own buffers
// straight to the disk, not through the page cache: on this kind of
// machine (a virtual machine whose memory the host hands out as the guest
// first touches it) the page cache's growth was most of a save's time. A
// 256 MiB file took 1.0 s to write and sync through the page cache here,
// 0.2 s written direct; a save of 64 MiB of memory and a 256 MiB volume went
// from 1.48-1.57 s to 1.13-1.21 s (bench/README.md). It also leaves the
// page cache to the containers: a checkpoint is read back once, at resume,
// often after a reboot.
//
// O_DIRECT wants the buffer, the offset and the length aligned to the
// device's block: the buffers (getBuf) are page-aligned, so all but a
// chunk's last partial block goes direct, and that tail through the page
// cache. A file system without O_DIRECT, or a buffer that is not aligned,
// gets a plain write.
const directAlign = 4096

// writeDirect writes data to the new file f, direct when it can.
func writeDirect(f *os.File, data []byte) error {
	n := len(data) &^ (directAlign - 1)
	if n > 0 && uintptr(unsafe.Pointer(&data[0]))%directAlign == 0 && setDirect(f, true) == nil {
		_, err := f.Write(data[:n])
		if cerr := setDirect(f, false); err == nil {
			err = cerr
		}
		switch {
		case err == nil:
			data = data[n:]
		case errors.Is(err, unix.EINVAL):
			// Not aligned for this device after all: write it all plainly,
			// from the start.
			if _, err := f.Seek(0, 0); err != nil {
				return err
			}
		default:
			return err
		}
	}
	_, err := f.Write(data)
	return err
}

// setDirect turns O_DIRECT on or off for f.
func setDirect(f *os.File, on bool) error {
	fd := int(f.Fd())
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		flags |= unix.O_DIRECT
	} else {
		flags &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags)
	return err
}

// openDirect opens the file at path for reading with O_DIRECT when its file
// system allows it: a chunk is read once at resume, to check it and to put
// it where it goes, into a page-aligned buffer (getBuf), and has no use for
// the page cache.
func openDirect(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		return os.Open(path)
	}
	return f, err
}

// readChunkFile reads the size bytes of f (from openDirect) into buf, a
// buffer of getBuf's, and returns them: fewer when the file is shorter.
// Each read asks for a whole number of blocks from an aligned offset, as
// O_DIRECT wants; should the file system refuse one all the same (a read
// that returned short), the rest is read through the page cache.
func readChunkFile(f *os.File, buf []byte, size int64) ([]byte, error) {
	if size > int64(cap(buf)) {
		return nil, fmt.Errorf("%s: %d bytes, more than a chunk holds", f.Name(), size)
	}
	b := buf[:cap(buf)]
	n := 0
	for int64(n) < size {
		k, err := f.Read(b[n:])
		n += k
		if errors.Is(err, unix.EINVAL) && n%directAlign != 0 {
			plain, err := os.Open(f.Name())
			if err != nil {
				return nil, err
			}
			k, err = plain.ReadAt(b[n:size], int64(n))
			plain.Close()
			n += k
			if err != nil && err != io.EOF {
				return nil, err
			}
			break
		}
		if err == io.EOF || (err == nil && k == 0) {
			break
		} else if err != nil {
			return nil, err
		}
	}
	return b[:n], nil
}
