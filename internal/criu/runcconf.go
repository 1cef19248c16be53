package criu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RuncConf is the CRIU configuration file runc passes to CRIU for every
// checkpoint and restore of a container without its own org.criu.config
// annotation. The engine's API has no per-checkpoint CRIU options.
const RuncConf = "/etc/criu/runc.conf"

const (
	blockBegin = "# BEGIN ckpt"
	blockEnd   = "# END ckpt"
	blockWhy   = ": established TCP connections are checkpointed and come back closed"
)

// runcOptions are what ckpt needs: tcp-established lets CRIU dump a process
// with connected TCP sockets (a web app holding a database connection),
// tcp-close restores them closed, so clients reconnect.
var runcOptions = []string{"tcp-established", "tcp-close"}

// EnsureRuncConf makes sure path holds ckpt's options, in a marked block that
// is added or replaced without touching the rest of the file. It reports
// whether it changed the file. The write is atomic.
func EnsureRuncConf(path string) (bool, error) {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return false, err
	}
	updated := withBlock(string(old))
	if updated == string(old) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("cannot configure CRIU for runc: %w", err)
	}
	tmp := path + ".ckpt-tmp"
	if err := os.WriteFile(tmp, []byte(updated), 0o644); err != nil {
		return false, fmt.Errorf("cannot configure CRIU for runc: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("cannot configure CRIU for runc: %w", err)
	}
	return true, nil
}

// withBlock returns conf with ckpt's block in place: an existing block (from
// its BEGIN line to its END line) is replaced where it stands; otherwise the
// block is appended. A BEGIN line without an END line is dropped alone, so
// that no line of the user's is ever lost.
func withBlock(conf string) string {
	block := []string{blockBegin + blockWhy}
	block = append(block, runcOptions...)
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
