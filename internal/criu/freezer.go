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

	"golang.org/x/sys/unix"
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
	fz := freezerOf(proc, cgroupfs, pid)
	if fz == nil {
		return nil
	}
	return func() bool { return fz.frozen() || heldByCRIU(proc, fz.dir, fz.threads) }
}

// freezer is the cgroup freezer of a process.
type freezer struct {
	dir     string // the cgroup's directory
	path    string // its path in the hierarchy, from /proc/<pid>/cgroup
	state   string // the file that says whether it is frozen
	want    string // the line of state once every process is frozen
	threads string // the file listing its threads
}

// freezerOf finds the freezer of process pid: cgroup v1's freezer
// hierarchy, whose freezer.state is FROZEN once every process is (FREEZING
// while some are not yet), else cgroup v2's, whose cgroup.events says
// "frozen 1". It is nil when none can be found from here.
func freezerOf(proc, cgroupfs string, pid int) *freezer {
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
			fz := &freezer{dir: filepath.Join(cgroupfs, "freezer", f[2]), path: f[2], state: "freezer.state", want: "FROZEN", threads: "tasks"}
			if _, err := os.Stat(filepath.Join(fz.dir, fz.state)); err == nil {
				return fz
			}
		}
	}
	if unified == "" {
		return nil
	}
	fz := &freezer{dir: filepath.Join(cgroupfs, unified), path: unified, state: "cgroup.events", want: "frozen 1", threads: "cgroup.threads"}
	if _, err := os.Stat(filepath.Join(fz.dir, fz.state)); err != nil {
		return nil
	}
	return fz
}

// frozen reports whether every process of the cgroup is frozen.
func (fz *freezer) frozen() bool {
	b, err := os.ReadFile(filepath.Join(fz.dir, fz.state))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if strings.TrimSpace(line) == fz.want {
			return true
		}
	}
	return false
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

// KillFrozen sends SIGKILL to every process of the cgroup that process pid
// is in (and of the cgroups below it) while that cgroup is frozen, and
// reports how many it signalled. A container paused for a save and killed
// after it must not run again in between: the engine's kill signals only
// its first process and then thaws the cgroup, and the others (a database
// under a shell entry point) ran on for a moment, enough to acknowledge a
// transaction that the checkpoint does not hold. A process signalled while
// frozen dies as it thaws, before it runs another instruction of its own.
// Nothing is signalled (0, nil) when the cgroup's freezer cannot be found
// from here, its path does not name the container id, or it is not frozen.
func KillFrozen(pid int, id string) (int, error) {
	return killFrozen("/proc", "/sys/fs/cgroup", pid, id, func(p int) error { return unix.Kill(p, unix.SIGKILL) })
}

func killFrozen(proc, cgroupfs string, pid int, id string, kill func(int) error) (int, error) {
	fz := freezerOf(proc, cgroupfs, pid)
	if id == "" || fz == nil || !strings.Contains(fz.path, id) || !fz.frozen() {
		return 0, nil
	}
	n := 0
	err := filepath.WalkDir(fz.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		procs, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(procs)) {
			p, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if err := kill(p); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
