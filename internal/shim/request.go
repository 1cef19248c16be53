package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/criu"
)

// Request asks ckpt's runc to restore a container at its next create
// instead of creating it. ckpt writes it (Ask) just before it starts the
// container through the engine, and removes it once the start returned;
// ckpt's runc takes it (removes it) when it restores.
type Request struct {
	// Images is the directory of the CRIU images to restore from.
	Images string `json:"images"`
	// Work is CRIU's work directory: its restore.log is there afterwards.
	Work string `json:"work"`
	// Config is a CRIU configuration file with the options of this
	// restore alone (CRIU reads it from CRIU_CONFIG_FILE, besides runc's
	// runc.conf): nothing of it is written where other restores read.
	Config string `json:"config,omitempty"`
	// Pid is the ckpt process that asked: a request whose process is gone
	// is ignored (and removed), so a request left behind by a killed ckpt
	// never turns a later start into a restore.
	Pid int `json:"pid"`
	// Created is when it was asked; a request older than requestTTL is
	// ignored and removed too.
	Created time.Time `json:"created"`
}

// requestTTL bounds how long a request waits for its create: the engine
// creates the task right after the start call.
const requestTTL = 10 * time.Minute

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func requestPath(id string) string { return filepath.Join(RunDir, "restore", id+".json") }

// Ask writes the request to restore container id (an engine's full id)
// from the CRIU images in images at its next create, with CRIU's work
// directory work and the CRIU options options (lines of a CRIU
// configuration file, checked by criu.CheckRuncOptions; CRIUOptions are
// added). It returns the function that withdraws the request, to call once
// the start returned, whatever it returned, and that tells whether ckpt's
// runc took it. Only one request per container can wait.
func Ask(id, images, work string, options []string) (withdraw func() (taken bool), err error) {
	if !validID.MatchString(id) {
		return nil, fmt.Errorf("container id %q", id)
	}
	options = append(append([]string(nil), CRIUOptions...), options...)
	if err := criu.CheckRuncOptions(options); err != nil {
		return nil, err
	}
	config := filepath.Join(work, "criu.conf")
	if err := atomicfile.WriteFile(config, []byte(strings.Join(options, "\n")+"\n"), 0o600, atomicfile.Replace); err != nil {
		return nil, fmt.Errorf("cannot ask for the restore of %.12s: %w", id, err)
	}
	dir := filepath.Join(RunDir, "restore")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	b, err := json.Marshal(Request{Images: images, Work: work, Config: config, Pid: os.Getpid(), Created: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	path := requestPath(id)
	if err := atomicfile.WriteFile(path, b, 0o600, atomicfile.Replace); err != nil {
		return nil, fmt.Errorf("cannot ask for the restore of %.12s: %w", id, err)
	}
	return func() bool {
		err := os.Remove(path)
		return errors.Is(err, fs.ErrNotExist)
	}, nil
}

// Take returns and removes the request to restore container id, as ckpt's
// runc does at create; nil when there is none that holds (takeRequest).
// For engines that stand in for a real one in tests.
func Take(id string) (*Request, error) { return takeRequest(id) }

// takeRequest returns and removes the request to restore container id, or
// nil when there is none that holds: it must be a regular file of root's,
// not open to others, in a directory of root's, asked by a process that
// still runs, less than requestTTL ago.
func takeRequest(id string) (*Request, error) {
	if !validID.MatchString(id) {
		return nil, nil
	}
	dir := filepath.Join(RunDir, "restore")
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() || !ownedByRootOnly(st) {
		return nil, nil
	}
	path := requestPath(id)
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	// Taken, good or not: it is never read twice.
	defer os.Remove(path)
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || !ownedByRootOnly(st) {
		return nil, fmt.Errorf("%s: not a restore request of ckpt's", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, err
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if time.Since(r.Created) > requestTTL || r.Pid <= 0 || unix.Kill(r.Pid, 0) != nil {
		return nil, nil // left behind: start normally
	}
	if !filepath.IsAbs(r.Images) || !filepath.IsAbs(r.Work) {
		return nil, fmt.Errorf("%s: the images and the work directory must be absolute paths", path)
	}
	if r.Config != "" {
		st, err := os.Lstat(r.Config)
		if err != nil || !st.Mode().IsRegular() || !ownedByRootOnly(st) || !filepath.IsAbs(r.Config) {
			return nil, fmt.Errorf("%s: its CRIU configuration %s is not root's alone", path, r.Config)
		}
	}
	return &r, nil
}

// ownedByRootOnly reports whether st is root's and writable by no one else.
func ownedByRootOnly(st fs.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Uid == 0 && st.Mode().Perm()&0o022 == 0
}
