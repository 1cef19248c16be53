// Package policy decides which containers the host hooks save, how, in
// what order, and which checkpoints to keep. A policy comes from a YAML file
// (default /etc/ckpt/policy.yaml) and from container labels, which win over
// the file. Everything here is pure: no engine, no store.
package policy

import (
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// DefaultFile is where the hooks look for the policy.
const DefaultFile = "/etc/ckpt/policy.yaml"

// Mode says what happens to a container at shutdown: the mode of the
// checkpoint the hook takes, or Skip.
type Mode = format.Mode

// Modes.
const (
	// Hot saves memory and data (a normal ckpt save).
	Hot = format.ModeHot
	// Cold stops the container gracefully and saves its data only; at boot
	// it starts fresh on that data.
	Cold = format.ModeCold
	// Skip leaves the container alone.
	Skip Mode = "skip"
)

// OnFailure says what happens when a hot save fails.
type OnFailure string

// Failure actions.
const (
	// FallbackCold saves the container cold instead, so that its data is
	// kept.
	FallbackCold OnFailure = "cold"
	// Fail reports the failure and leaves the container as it was.
	Fail OnFailure = "fail"
)

// Labels that override the policy file for one container.
const (
	LabelMode      = "io.ckpt.mode"       // hot | cold | skip
	LabelOnFailure = "io.ckpt.on-failure" // cold | fail
	LabelTimeout   = "io.ckpt.timeout"    // a duration
	LabelAfter     = "io.ckpt.after"      // comma-separated container names
	// Compose's labels.
	LabelProject   = "com.docker.compose.project"
	LabelService   = "com.docker.compose.service"
	LabelDependsOn = "com.docker.compose.depends_on" // compose v2: "svc:condition:restart,..."
)

// Policy is a parsed policy file.
type Policy struct {
	// Rules are tried in order; the first that matches a container decides.
	Rules []Rule
	// Default applies to containers no rule matches.
	Default Rule
	// Deadline bounds the hot saves of the shutdown hook: a container is
	// saved hot only when its timeout fits in what is left of the
	// deadline, else cold. The hook itself does not stop at the deadline;
	// the shutdown unit gives it 30s more (internal/systemd.StopGrace).
	Deadline time.Duration
	// DeadlineLine is the line of deadline in the policy file; 0 when the
	// file leaves it out.
	DeadlineLine int
	// Parallel is how many containers are saved at once.
	Parallel int
	// Retention says which checkpoints prune removes.
	Retention Retention
}

// Rule selects containers and says what to do with them.
type Rule struct {
	// Name names the rule in reports; "default" for the default rule, else
	// "rule N" unless the file names it.
	Name string
	// Match selects containers; all its parts must match.
	Match Match
	// Mode is what the shutdown hook does.
	Mode Mode
	// OnFailure is what happens when a hot save fails.
	OnFailure OnFailure
	// Timeout bounds one container's save.
	Timeout time.Duration
	// After lists containers that must be resumed before these ones (and
	// saved after them).
	After []string
	// Line is the rule's line in the policy file; for the default, the
	// line where its settings start. It is 0 when the file does not give
	// the rule.
	Line int
}

// Match selects containers. Empty fields match everything.
type Match struct {
	// Names are path.Match globs on the container name; one must match.
	Names []string
	// Labels must all be present; an empty value matches any value.
	Labels map[string]string
	// Projects are compose project names; one must match.
	Projects []string
}

// Retention says which checkpoints to keep. Zero values mean no limit.
type Retention struct {
	// KeepLast keeps at most this many checkpoints per container.
	KeepLast int
	// MaxAge removes checkpoints older than this.
	MaxAge time.Duration
	// MaxBytes caps the total size of all checkpoints in the store.
	MaxBytes int64
}
