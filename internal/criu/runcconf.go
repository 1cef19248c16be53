package criu

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
)

// RuncConf is the CRIU configuration file runc passes to CRIU for every
// checkpoint and restore of a container without its own org.criu.config
// annotation. The engine's API has no per-checkpoint CRIU options.
const RuncConf = "/etc/criu/runc.conf"

const (
	blockBegin = "# BEGIN ckpt"
	blockEnd   = "# END ckpt"
	blockWhy   = ": established TCP connections are checkpointed and come back closed; file locks are kept"
)

// runcOptions are what ckpt needs: tcp-established lets CRIU dump a process
// with connected TCP sockets (a web app holding a database connection),
// tcp-close restores them closed, so clients reconnect; file-locks dumps and
// restores the POSIX, OFD and flock locks the processes hold (MariaDB's
// InnoDB locks its data files; without it CRIU refuses: "Some file locks are
// hold by dumping tasks"). Locks are safe to restore because a container is
// dumped whole: every holder comes back with its lock.
var runcOptions = []string{"tcp-established", "tcp-close", "file-locks"}

// RuncOptions lists the CRIU options ckpt keeps in runc.conf, for messages.
func RuncOptions() string { return strings.Join(runcOptions, ", ") }

// EnsureRuncConf makes sure path holds ckpt's options, in a marked block that
// is added or replaced without touching the rest of the file. It reports
// whether it changed the file. The write is atomic. Lines a restore added for
// itself (WithRuncOptions) and left behind by a crash are dropped; a
// restore in progress is waited for.
func EnsureRuncConf(path string) (bool, error) {
	unlock, err := lockConf(path)
	if err != nil {
		return false, err
	}
	defer unlock()
	return writeBlock(path, nil)
}

// WithRuncOptions runs fn, one checkpoint or restore, with extra CRIU
// options (lines such as "cgroup-root /system.slice/docker-<id>.scope" or
// "external net[4026532459]:extRootNetNS") in ckpt's block of runc.conf, and
// puts the block back as EnsureRuncConf leaves it afterwards, whatever fn
// returned. The engine's API cannot pass CRIU options for one checkpoint or
// restore; runc reads this file for every one, so a host-wide lock keeps two
// ckpt runs from seeing each other's lines.
func WithRuncOptions(path string, extra []string, fn func() error) error {
	if err := CheckRuncOptions(extra); err != nil {
		return err
	}
	unlock, err := lockConf(path)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := writeBlock(path, extra); err != nil {
		return err
	}
	ferr := fn()
	if _, err := writeBlock(path, nil); err != nil && ferr == nil {
		return err
	}
	return ferr
}

// runcOptionPatterns are the only lines ckpt adds to its block for one
// checkpoint or restore: CRIU's configuration parser makes every word an
// option, so a value with a space, a newline or anything unexpected (from
// a checkpoint made elsewhere, say) could add options of its own, such as
// a directory of plugins CRIU loads as root.
var runcOptionPatterns = []*regexp.Regexp{
	regexp.MustCompile(`^cgroup-root /[A-Za-z0-9_.@:/-]{0,1000}$`),
	regexp.MustCompile(`^external net\[[0-9]{1,20}\]:extRootNetNS$`),
	regexp.MustCompile(`^timeout [0-9]{1,6}$`),
	regexp.MustCompile(`^leave-stopped$`),
}

// CheckRuncOptions returns an error naming the first line of extra that is
// not one of the options ckpt adds (runcOptionPatterns).
func CheckRuncOptions(extra []string) error {
	for _, l := range extra {
		ok := false
		for _, p := range runcOptionPatterns {
			ok = ok || p.MatchString(l)
		}
		if !ok || strings.Contains(l, "/..") {
			return fmt.Errorf("refusing CRIU option %q: not one ckpt sets", l)
		}
	}
	return nil
}

// lockConf takes the host-wide lock on runc.conf's block: an flock of the
// directory holding it, so that no lock file is left beside the user's.
func lockConf(path string) (unlock func(), err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot configure CRIU for runc: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot configure CRIU for runc: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// writeBlock puts ckpt's block, with extra lines, into path; the caller
// holds the lock.
func writeBlock(path string, extra []string) (bool, error) {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return false, err
	}
	updated := withBlock(string(old), extra...)
	if updated == string(old) {
		return false, nil
	}
	// Update: a runc.conf that is a symbolic link (to a file kept by
	// configuration management) stays one, and the file keeps its mode.
	if err := atomicfile.WriteFile(path, []byte(updated), 0o644, atomicfile.Update); err != nil {
		return false, fmt.Errorf("cannot configure CRIU for runc: %w", err)
	}
	return true, nil
}

// withBlock returns conf with ckpt's block, holding extra after ckpt's
// options, in place: an existing block (from its BEGIN line to its END line)
// is replaced where it stands; otherwise the block is appended. A BEGIN line
// without an END line is dropped alone, so that no line of the user's is
// ever lost.
func withBlock(conf string, extra ...string) string {
	block := []string{blockBegin + blockWhy}
	block = append(block, runcOptions...)
	block = append(block, extra...)
	block = append(block, blockEnd)
	lines := strings.Split(strings.TrimSuffix(conf, "\n"), "\n")
	if conf == "" {
		lines = nil
	}
	begin, end := -1, -1
	for i, l := range lines {
		switch {
		case begin < 0 && strings.HasPrefix(l, blockBegin):
			begin = i
		case begin >= 0 && strings.TrimSpace(l) == blockEnd:
			end = i
		}
		if end >= 0 {
			break
		}
	}
	var out []string
	switch {
	case begin >= 0 && end >= 0:
		out = append(append(append(out, lines[:begin]...), block...), lines[end+1:]...)
	case begin >= 0:
		out = append(append(append(out, lines[:begin]...), lines[begin+1:]...), block...)
	default:
		out = append(lines, block...)
	}
	return strings.Join(out, "\n") + "\n"
}
