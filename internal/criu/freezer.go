package criu

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FreezeProbe returns a function that reports whether no process of the
// cgroup that process pid is in can run: the cgroup is frozen (by CRIU,
// which freezes a container's cgroup before it dumps, or by a pause), or
// every one of its threads is held by CRIU (which seizes them once the
// freeze is complete, then thaws the cgroup: that frozen moment can be a
// millisecond short). It is nil when the cgroup's freezer cannot be found
// from here (a cgroup file system mounted elsewhere, another cgroup
// namespace). A save captures the volumes and the writable layer from then
// on, while CRIU dumps: nothing in the container runs again before the
// checkpoint succeeds (CRIU kills the processes it holds, or leaves a
// paused container paused), and a capture begun in an attempt that fails
// is thrown away.
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
			dir := filepath.Join(cgroupfs, "freezer", f[2])
			state := filepath.Join(dir, "freezer.state")
			if _, err := os.Stat(state); err == nil {
				return func() bool {
					b, err := os.ReadFile(state)
					return (err == nil && strings.TrimSpace(string(b)) == "FROZEN") || heldByCRIU(proc, dir, "tasks")
				}
			}
		}
	}
	if unified == "" {
		return nil
	}
	// cgroup v2: cgroup.events says "frozen 1" once every process is.
	dir := filepath.Join(cgroupfs, unified)
	events := filepath.Join(dir, "cgroup.events")
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
		return heldByCRIU(proc, dir, "cgroup.threads")
	}
}

// heldByCRIU reports whether every thread listed in the file list of the
// cgroup dir and of the cgroups below it is traced by a process named
// criu; false when there are none, or when a list cannot be read.
func heldByCRIU(proc, dir, list string) bool {
	held := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(path, list))
		if err != nil {
			return err
		}
		for _, tid := range strings.Fields(string(b)) {
			if !tracedByCRIU(proc, tid) {
				return errNotHeld
			}
			held++
		}
		return nil
	})
	return err == nil && held > 0
}

var errNotHeld = errors.New("a thread is not held by CRIU")

// tracedByCRIU reports whether thread tid is traced by a process named
// criu.
func tracedByCRIU(proc, tid string) bool {
	b, err := os.ReadFile(filepath.Join(proc, tid, "status"))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "TracerPid:"); ok {
			tracer := strings.TrimSpace(v)
			if tracer == "0" {
				return false
			}
			comm, err := os.ReadFile(filepath.Join(proc, tracer, "comm"))
			return err == nil && strings.TrimSpace(string(comm)) == "criu"
		}
	}
	return false
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
