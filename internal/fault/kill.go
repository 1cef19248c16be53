//go:build ckptfault

package fault

import (
	"os"
	"syscall"
)

// TraceEnv names a file that a test build appends the name of every point
// it passes to, one per line: how a test learns the points of an operation.
const TraceEnv = "CKPT_FAULT_TRACE"

func init() {
	at, trace := os.Getenv(Env), os.Getenv(TraceEnv)
	if at == "" && trace == "" {
		return
	}
	kill = func(name string) {
		if trace != "" {
			if f, err := os.OpenFile(trace, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
				f.WriteString(name + "\n")
				f.Close()
			}
		}
		if name != at {
			return
		}
		os.Stderr.WriteString("ckpt: fault: killed at " + name + "\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is delivered before this returns
	}
}
