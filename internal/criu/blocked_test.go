package criu

import (
	"context"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestTreeThreadsAndBlocked(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait for the shell's child, sleep, to appear in the tree and for both
	// to settle: the shell in wait, sleep in its nanosleep. Just after the
	// fork a thread can be in disk sleep for a moment (exec reading the
	// binary, a page fault on a busy machine), which is what Blocked is for;
	// this test is about processes that merely sleep.
	deadline := time.Now().Add(10 * time.Second)
	var tids []int
	for !settled(tids) {
		if time.Now().After(deadline) {
			states := make([]string, len(tids))
			for i, tid := range tids {
				states[i] = string(threadState(tid))
			}
			t.Fatalf("the tree of %d holds %v in states %v, want the shell and its sleep, sleeping", cmd.Process.Pid, tids, states)
		}
		time.Sleep(10 * time.Millisecond)
		tids = treeThreads(cmd.Process.Pid)
	}
	if !slices.Contains(tids, cmd.Process.Pid) {
		t.Fatalf("tree %v lacks its root %d", tids, cmd.Process.Pid)
	}
	if b := Blocked(cmd.Process.Pid); b != nil {
		t.Errorf("Blocked = %v for sleeping processes", b)
	}
	if b := WaitUnblocked(context.Background(), cmd.Process.Pid, time.Minute); b != nil {
		t.Errorf("WaitUnblocked = %v", b)
	}
	if b := WaitUnblocked(context.Background(), 0, time.Minute); b != nil {
		t.Errorf("WaitUnblocked(0) = %v", b)
	}
	if s := threadState(-1); s != 0 {
		t.Errorf("threadState of no process = %q", s)
	}
	if got := FreezeTimeoutOption(); got != "timeout 20" {
		t.Errorf("FreezeTimeoutOption = %q", got)
	}
}

// settled reports whether tids are two or more threads, all sleeping
// interruptibly (state S).
func settled(tids []int) bool {
	if len(tids) < 2 {
		return false
	}
	for _, tid := range tids {
		if threadState(tid) != 'S' {
			return false
		}
	}
	return true
}
