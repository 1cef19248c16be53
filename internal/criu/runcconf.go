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
	blockBegin = "# BEGIN ckpt: established TCP connections are checkpointed and come back closed"
	blockEnd   = "# END ckpt"
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

// withBlock returns conf with ckpt's block in place: the existing block is
// replaced, or a new one appended.
func withBlock(conf string) string {
	block := blockBegin + "\n" + strings.Join(runcOptions, "\n") + "\n" + blockEnd + "\n"
	if i := strings.Index(conf, blockBegin); i >= 0 {
		end := strings.Index(conf[i:], blockEnd)
		if end >= 0 {
			rest := conf[i+end+len(blockEnd):]
			rest = strings.TrimPrefix(rest, "\n")
			return conf[:i] + block + rest
		}
	}
	if conf != "" && !strings.HasSuffix(conf, "\n") {
		conf += "\n"
	}
	return conf + block
}
