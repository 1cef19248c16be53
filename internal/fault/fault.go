// Package fault lets the test build of ckpt kill itself at a named point,
// so that the integration suite can prove that a SIGKILL at any phase of a
// save, a resume, an import or a prune loses nothing. The points are no-ops
// in the build users run; in a build with the tag ckptfault
// (go build -tags ckptfault ./cmd/ckpt) the process kills itself with
// SIGKILL at the point named by $CKPT_FAULT_KILL_AT.
package fault

// Env names the point a test build of ckpt kills itself at.
const Env = "CKPT_FAULT_KILL_AT"

// Point marks a point where a test build can be made to die: "step:NAME"
// before each step of an operation (internal/steps), other names where a
// package marks one.
func Point(name string) {
	if kill != nil {
		kill(name)
	}
}

// kill is set by the ckptfault build.
var kill func(name string)
