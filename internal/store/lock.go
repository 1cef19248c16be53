package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
)

// Lock is an exclusive hold on one container's part of the store, so that
// two ckpt processes never work on one container at once.
type Lock struct {
	f *os.File
}

// Lock takes the lock of container without waiting. When another process
// holds it, the error names that process and what it is doing. op describes
// this process's work ("save", "resume", ...) for others to see.
func (s *Store) Lock(container, op string) (*Lock, error) {
	if !ValidName(container) {
		return nil, fmt.Errorf("cannot store container name %q", container)
	}
	dir := s.containerDir(container)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, format.LockFile), os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder, _ := os.ReadFile(f.Name())
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "another ckpt process"
			}
			return nil, hint.New(fmt.Sprintf("container %s is busy: %s", container, who),
				"wait until it finishes and try again")
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	desc := fmt.Sprintf("ckpt %s (pid %d) since %s", op, os.Getpid(), time.Now().Format(time.TimeOnly))
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(desc+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	l.f.Truncate(0)
	return l.f.Close()
}
