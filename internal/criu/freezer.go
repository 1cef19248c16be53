package criu

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FreezeProbe returns a function that reports whether every process of the
// cgroup that process pid is in is frozen: by CRIU, which freezes a
// container's cgroup before it dumps, or by a pause. It is nil when the
// cgroup's freezer cannot be found from here (a cgroup file system mounted
// elsewhere, another cgroup namespace). A save captures the volumes and the
// writable layer from then on, while CRIU dumps: nothing in the container
// runs again before the checkpoint succeeds (CRIU kills the processes it
// froze, or leaves a paused container paused), and a capture begun in an
// attempt that fails is thrown away.
func FreezeProbe(pid int) func() bool {
	return freezeProbe("/proc", "/sys/fs/cgroup", pid)
}

func freezeProbe(proc, cgroupfs string, pid int) func() bool {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil
	}
	var unified string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			unified = f[2]
		case hasController(f[1], "freezer"):
			// cgroup v1: freezer.state is FROZEN once every process is
			// (FREEZING while some are not yet).
			state := filepath.Join(cgroupfs, "freezer", f[2], "freezer.state")
			if _, err := os.Stat(state); err == nil {
				return func() bool {
					b, err := os.ReadFile(state)
					return err == nil && strings.TrimSpace(string(b)) == "FROZEN"
				}
			}
		}
	}
	if unified == "" {
		return nil
	}
	// cgroup v2: cgroup.events says "frozen 1" once every process is.
	events := filepath.Join(cgroupfs, unified, "cgroup.events")
	if _, err := os.Stat(events); err != nil {
		return nil
	}
	return func() bool {
		b, err := os.ReadFile(events)
		if err != nil {
			return false
		}
		for line := range strings.Lines(string(b)) {
			if strings.TrimSpace(line) == "frozen 1" {
				return true
			}
		}
		return false
	}
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
