// Package progress carries reports of long work from the domain packages to
// whoever draws them: the terminal, JSON lines, or nothing at all.
package progress

import "time"

// Event is one step of work on one container.
type Event struct {
	// Container is the container's name.
	Container string `json:"container"`
	// Phase names the step: "checkpoint", "volumes", "layer", "verify", ...
	Phase string `json:"phase"`
	// Message is a human sentence about the step, if any.
	Message string `json:"message,omitempty"`
	// Elapsed is how long the step took; zero when the step starts.
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	// Bytes is how much data the step moved, when known.
	Bytes int64 `json:"bytes,omitempty"`
	// Warning marks events that report something the user must know, such as
	// memory that could not be restored.
	Warning bool `json:"warning,omitempty"`
}

// Reporter receives events. It must be safe for use by one goroutine at a time.
type Reporter interface {
	Report(Event)
}

// Func adapts a function to a Reporter.
type Func func(Event)

// Report calls f(e).
func (f Func) Report(e Event) { f(e) }

// Discard is a Reporter that drops every event.
var Discard Reporter = Func(func(Event) {})

// Or returns r, or Discard when r is nil.
func Or(r Reporter) Reporter {
	if r == nil {
		return Discard
	}
	return r
}
