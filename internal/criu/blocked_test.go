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
	// Wait for the shell's child, sleep, to appear in the tree.
	deadline := time.Now().Add(10 * time.Second)
	var tids []int
	for len(tids) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the tree of %d holds %v, want the shell and its sleep", cmd.Process.Pid, tids)
		}
		time.Sleep(10 * time.Millisecond)
		tids = treeThreads(cmd.Process.Pid)
	}
	if !slices.Contains(tids, cmd.Process.Pid) {
		t.Fatalf("tree %v lacks its root %d", tids, cmd.Process.Pid)
	}
	for _, tid := range tids {
		if s := threadState(tid); s != 'S' && s != 'R' {
			t.Errorf("thread %d: state %q, want S or R", tid, s)
		}
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
