package criu

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// FreezeTimeout is how long CRIU may take to freeze and seize a
// container's processes during a dump, set through runc.conf (CRIU's own
// default is 10 s). A thread in uninterruptible sleep (state D: a
// database's fsync on a busy disk) cannot be seized until the kernel
// returns it; on a loaded host 10 s was measured to be too short.
const FreezeTimeout = 20 * time.Second

// FreezeTimeoutOption is the runc.conf line that sets FreezeTimeout.
func FreezeTimeoutOption() string {
	return "timeout " + strconv.Itoa(int(FreezeTimeout/time.Second))
}

// Blocked returns the threads of the process tree rooted at pid that are
// in uninterruptible sleep (state D) and not frozen by a cgroup freezer
// (whose frozen tasks the kernel also shows as D). A process that is gone
// is skipped.
func Blocked(pid int) []int {
	var blocked []int
	for _, tid := range treeThreads(pid) {
		if threadState(tid) == 'D' && !frozen(tid) {
			blocked = append(blocked, tid)
		}
	}
	return blocked
}

// WaitUnblocked waits, at most max, until no thread of the process tree
// rooted at pid is in uninterruptible sleep, polling every 100 ms. It
// returns the threads still blocked when max ran out or ctx ended; nil
// when none is (or pid is not a process).
func WaitUnblocked(ctx context.Context, pid int, max time.Duration) []int {
	if pid <= 0 {
		return nil
	}
	deadline := time.Now().Add(max)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		b := Blocked(pid)
		if len(b) == 0 || time.Now().After(deadline) {
			return b
		}
		select {
		case <-ctx.Done():
			return b
		case <-tick.C:
		}
	}
}

// treeThreads lists the threads of pid and of all its descendants.
func treeThreads(pid int) []int {
	var out []int
	seen := map[int]bool{}
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		if err != nil {
			continue
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			out = append(out, tid)
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, tid))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					todo = append(todo, c)
				}
			}
		}
	}
	return out
}

// threadState returns the state letter of /proc/TID/stat, 0 when it
// cannot be read.
func threadState(tid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", tid))
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces and ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// frozen reports whether thread tid sits in a cgroup freezer.
func frozen(tid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", tid))
	return err == nil && strings.Contains(string(b), "refrigerator")
}
