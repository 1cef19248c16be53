package app

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/progress"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// progressFlags are --quiet and --json, which reporter reads.
func progressFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print no progress"},
		&cli.BoolFlag{Name: "json", Usage: "print progress and results as JSON lines on stdout"},
	}
}

// reporter is the progress reporter the --json and --quiet flags ask for;
// js is set with --json, for the result lines.
func reporter(c *cli.Context) (r progress.Reporter, js *jsonWriter) {
	switch {
	case c.Bool("json"):
		js = newJSONWriter(c.App.Writer)
		return js, js
	case c.Bool("quiet"):
		return nil, nil
	}
	return textProgress(c.App.ErrWriter), nil
}

// textProgress prints one line per finished phase.
func textProgress(w io.Writer) progress.Reporter {
	return progress.Func(func(e progress.Event) {
		switch {
		case e.Warning:
			fmt.Fprintf(w, "ckpt: warning: %s: %s\n", e.Container, e.Message)
		case e.Elapsed > 0 && e.Bytes > 0:
			fmt.Fprintf(w, "ckpt: %s: %s done in %s (%s)\n", e.Container, e.Phase, units.Duration(e.Elapsed), units.Bytes(e.Bytes))
		case e.Elapsed > 0:
			fmt.Fprintf(w, "ckpt: %s: %s done in %s\n", e.Container, e.Phase, units.Duration(e.Elapsed))
		case e.Message != "":
			fmt.Fprintf(w, "ckpt: %s: %s: %s\n", e.Container, e.Phase, e.Message)
		}
	})
}

// jsonLine is one line of --json output on save and resume: a progress
// event, or the result for one container.
type jsonLine struct {
	Type       string `json:"type"` // "progress" or "result"
	Container  string `json:"container"`
	Phase      string `json:"phase,omitempty"`
	Message    string `json:"message,omitempty"`
	ElapsedMS  int64  `json:"elapsedMs,omitempty"`
	Bytes      int64  `json:"bytes,omitempty"`
	Warning    bool   `json:"warning,omitempty"`
	OK         *bool  `json:"ok,omitempty"`
	Checkpoint string `json:"checkpoint,omitempty"`
	// Result details.
	Mode           format.Mode `json:"mode,omitempty"`
	MemoryBytes    int64       `json:"memoryBytes,omitempty"`
	MemoryRestored *bool       `json:"memoryRestored,omitempty"`
	Recreated      bool        `json:"recreated,omitempty"`
	Notes          []string    `json:"notes,omitempty"`
	Error          string      `json:"error,omitempty"`
	Hint           string      `json:"hint,omitempty"`
	Recovery       string      `json:"recovery,omitempty"`
	// Transfer is what a push or pull moved.
	Transfer *transferLine `json:"transfer,omitempty"`
	// Trust is the resumed checkpoint's trust; Dropped what its recreated
	// container did not get.
	Trust   *store.Trust `json:"trust,omitempty"`
	Dropped []string     `json:"dropped,omitempty"`
}

// jsonWriter writes JSON lines, one per call, safe for concurrent use.
type jsonWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newJSONWriter(w io.Writer) *jsonWriter { return &jsonWriter{enc: json.NewEncoder(w)} }

func (j *jsonWriter) write(l jsonLine) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.enc.Encode(l)
}

// Report writes a progress event.
func (j *jsonWriter) Report(e progress.Event) {
	j.write(jsonLine{Type: "progress", Container: e.Container, Phase: e.Phase, Message: e.Message,
		ElapsedMS: e.Elapsed.Milliseconds(), Bytes: e.Bytes, Warning: e.Warning})
}

// result writes the result line of one container.
func (j *jsonWriter) result(l jsonLine, err error) {
	l.Type = "result"
	ok := err == nil
	l.OK = &ok
	if err != nil {
		l.Error, l.Hint = err.Error(), hintFor(err)
	}
	j.write(l)
}
