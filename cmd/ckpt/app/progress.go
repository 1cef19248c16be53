package app

import (
	"fmt"
	"io"

	"github.com/ckpt-dev/ckpt/internal/progress"
	"github.com/ckpt-dev/ckpt/internal/units"
)

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
