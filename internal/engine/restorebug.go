package engine

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ckpt-dev/ckpt/internal/hint"
)

// RestoreBroken returns an error naming the engine bug when this engine
// cannot start a container from a checkpoint at all, nil otherwise.
//
// moby 28.0 (and 26.0.0, which 26.0.1 reverted) dropped the runc prestart
// hook that attached the network to the restored process, and instead
// attaches it to the task's pid between create and start. containerd's runc
// shim only runs `runc restore` at start, so at that point the pid is 0 and
// every `docker start --checkpoint` fails with "bind-mount /proc/0/ns/net ->
// /var/run/docker/netns/...: no such file or directory" (moby PR 47406,
// moby issue 50750, containerd issue 12141). Checkpoints are still taken
// fine; they restore with memory on an engine from 26.0.1 to 27.5.x, or
// older.
func (e *Engine) RestoreBroken() error {
	return RestoreBrokenIn(e.Info.ServerVersion)
}

// RestoreBrokenIn is RestoreBroken for an engine of the given version.
func RestoreBrokenIn(version string) error {
	major, minor, patch, ok := parseVersion(version)
	if !ok {
		return nil
	}
	if major < 28 && !(major == 26 && minor == 0 && patch == 0) {
		return nil
	}
	return hint.New(fmt.Sprintf("Docker %s cannot start a container from a checkpoint: since moby 28.0 (and in 26.0.0) the engine attaches the network before the restored process exists (\"bind-mount /proc/0/ns/net\"; moby issue 50750)", version),
		"ckpt restores here through its own runtime, io.containerd.ckpt.v2, which it installs itself ("+hint.Doc("engines.md")+"); ckpt doctor says whether containerd finds it")
}

// parseVersion reads "28.5.2", "20.10.24+dfsg1" or "26.1.5-1".
func parseVersion(v string) (major, minor, patch int, ok bool) {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "+-~ "); i >= 0 {
		v = v[:i]
	}
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, 0, false
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, 0, 0, false
		}
		nums[i] = n
	}
	return nums[0], nums[1], nums[2], true
}
