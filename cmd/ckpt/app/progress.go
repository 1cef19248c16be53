package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/progress"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// jsonFlag is the --json flag of every command that prints something.
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print JSON lines on stdout: one object per line, with a type and a command"}
}

// progressFlags are --quiet and --json, which reporter reads.
func progressFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print no progress"},
		jsonFlag(),
	}
}

// reporter is the progress reporter the --json and --quiet flags ask for;
// js is set with --json, for the other lines.
func reporter(c *cli.Context) (r progress.Reporter, js *jsonWriter) {
	switch {
	case c.Bool("json"):
		js = jsonOut(c)
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

// jsonWriter writes the --json output of one command: JSON lines, each an
// object that starts with "type" and "command" (docs/json.md;
// internal/jsonout holds the schema the tests check the lines against).
// It is safe for concurrent use, and its methods do nothing on a nil
// *jsonWriter, which is what jsonOut returns without --json.
//
// A command with --json uses it so:
//
//	js := jsonOut(c) // nil without --json
//	if js != nil {
//		for _, x := range listing {
//			js.item(lsItem{...}) // one line per entry of a listing
//		}
//		js.result(saveResult{Container: name, ...}, err) // one per container or checkpoint acted on
//		js.summary(rmSummary{...}, failed == 0) // totals, when there were several
//		if failed > 0 {
//			return errReported // the lines said it: no error line
//		}
//		return nil
//	}
//
// The fields come from a struct (or a map) whose JSON field names are in
// the schema for that command and line type; zero values that mean
// nothing are left out with omitempty. An error returned by the command's
// action, other than errReported and errNoMemory, becomes an error line
// (New does that for every command with a --json flag): return errors, do
// not write error lines yourself. Progress events go to Report.
type jsonWriter struct {
	mu      sync.Mutex
	w       io.Writer
	command string
}

// newJSONWriter writes the lines of command ("save", "trust ls") to w.
func newJSONWriter(w io.Writer, command string) *jsonWriter {
	return &jsonWriter{w: w, command: command}
}

// jsonOut is the JSON writer of c's command when --json was given, and
// nil otherwise.
func jsonOut(c *cli.Context) *jsonWriter {
	if !c.Bool("json") {
		return nil
	}
	return newJSONWriter(c.App.Writer, commandPath(c))
}

// Report writes a progress line for e.
func (j *jsonWriter) Report(e progress.Event) {
	j.progress(progressLine{Container: e.Container, Phase: e.Phase, Message: e.Message,
		ElapsedMS: e.Elapsed.Milliseconds(), Bytes: e.Bytes, Warning: e.Warning})
}

// progress writes a progress line with the fields of v.
func (j *jsonWriter) progress(v any) { j.write("progress", v) }

// item writes one entry of a listing, with the fields of v.
func (j *jsonWriter) item(v any) { j.write("item", v) }

// result writes the outcome for one container or checkpoint: "ok", the
// fields of v, and when err is not nil, "error" and "hint".
func (j *jsonWriter) result(v any, err error) {
	j.write("result", v, outcome(err)...)
}

// summary writes the totals of a command: "ok", and the fields of v.
func (j *jsonWriter) summary(v any, ok bool) {
	j.write("summary", v, jsonField{"ok", ok})
}

// fail writes an error line for err, a failure of the command as a whole.
func (j *jsonWriter) fail(err error) {
	msg, h := problem(err)
	fields := []jsonField{{"error", msg}}
	if h != "" {
		fields = append(fields, jsonField{"hint", h})
	}
	j.write("error", nil, fields...)
}

// jsonField is one field that the writer adds to a line.
type jsonField struct {
	name  string
	value any
}

// outcome is "ok", and "error" and "hint" when err is not nil.
func outcome(err error) []jsonField {
	if err == nil {
		return []jsonField{{"ok", true}}
	}
	msg, h := problem(err)
	fields := []jsonField{{"ok", false}, {"error", msg}}
	if h != "" {
		fields = append(fields, jsonField{"hint", h})
	}
	return fields
}

// write writes one line: type, command, "ok" when given, the fields of v,
// then the other fields given.
func (j *jsonWriter) write(typ string, v any, fields ...jsonField) {
	if j == nil {
		return
	}
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	writeJSON(&b, typ)
	b.WriteString(`,"command":`)
	writeJSON(&b, j.command)
	field := func(f jsonField) {
		b.WriteByte(',')
		writeJSON(&b, f.name)
		b.WriteByte(':')
		writeJSON(&b, f.value)
	}
	i := slices.IndexFunc(fields, func(f jsonField) bool { return f.name == "ok" })
	if i >= 0 {
		field(fields[i])
		fields = slices.Delete(slices.Clone(fields), i, i+1)
	}
	if v != nil {
		inner, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("json line of %T: %v", v, err)) // a bug: the lines are ckpt's own types
		}
		if inner = bytes.TrimSpace(inner); len(inner) > 2 {
			b.WriteByte(',')
			b.Write(inner[1 : len(inner)-1])
		}
	}
	for _, f := range fields {
		field(f)
	}
	b.WriteString("}\n")
	j.mu.Lock()
	defer j.mu.Unlock()
	j.w.Write(b.Bytes())
}

func writeJSON(b *bytes.Buffer, v any) {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	b.Write(out)
}

// problem is what an error line or a failed result says of err: the
// error, and the hint printed under it.
func problem(err error) (msg, h string) {
	if errors.Is(err, context.Canceled) {
		return "interrupted", hintFor(err)
	}
	var ue usageError
	if errors.As(err, &ue) {
		return firstLower(ue.Error()), "see " + ue.help() + " --help"
	}
	return err.Error(), hintFor(err)
}

// progressLine is a progress line.
type progressLine struct {
	Container      string `json:"container,omitempty"`
	Checkpoint     string `json:"checkpoint,omitempty"`
	Phase          string `json:"phase"`
	Message        string `json:"message,omitempty"`
	ElapsedMS      int64  `json:"elapsedMs,omitempty"`
	Bytes          int64  `json:"bytes,omitempty"`
	TotalBytes     int64  `json:"totalBytes,omitempty"`
	BytesPerSecond int64  `json:"bytesPerSecond,omitempty"`
	Warning        bool   `json:"warning,omitempty"`
}

// meterEvery is how often a meter reports; the tests shorten it.
var meterEvery = time.Second

// meter counts the bytes of a long copy (an export, an import) and reports
// them about once a second while it runs: as a line on stderr when that is
// a terminal, as a progress line with --json, not at all with -q.
type meter struct {
	n     atomic.Int64
	stop  func()
	start time.Time
}

// startMeter starts reporting the bytes counted, for phase (what is
// moved: "export", "import") of container's checkpoint (either may be "").
// total is how many bytes there are to move, 0 when not known. Stop it
// with done.
func startMeter(c *cli.Context, js *jsonWriter, container, checkpoint, phase string, total int64) *meter {
	m := &meter{start: time.Now(), stop: func() {}}
	var report func()
	switch {
	case js != nil:
		report = func() {
			n, el := m.n.Load(), time.Since(m.start)
			js.progress(progressLine{Container: container, Checkpoint: checkpoint, Phase: phase, Bytes: n,
				TotalBytes: total, BytesPerSecond: int64(float64(n) / max(el.Seconds(), 0.001))})
		}
	case c.Bool("quiet") || !isTerminal(c.App.ErrWriter):
		return m
	default:
		who := phase
		if container != "" {
			who = container + ": " + phase
		}
		report = func() {
			n := m.n.Load()
			of := ""
			if total > 0 {
				of = " of " + units.Bytes(total)
			}
			fmt.Fprintf(c.App.ErrWriter, "ckpt: %s: %s%s (%s)\n", who, units.Bytes(n), of, units.Rate(n, time.Since(m.start)))
		}
	}
	t := time.NewTicker(meterEvery)
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-t.C:
				report()
			case <-quit:
				return
			}
		}
	}()
	m.stop = func() {
		t.Stop()
		close(quit)
		<-finished
	}
	return m
}

// done stops the reports.
func (m *meter) done() { m.stop() }

// writer counts what goes through w.
func (m *meter) writer(w io.Writer) io.Writer { return meterWriter{w, m} }

// reader counts what is read from r.
func (m *meter) reader(r io.Reader) io.Reader { return meterReader{r, m} }

type meterWriter struct {
	w io.Writer
	m *meter
}

func (w meterWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.m.n.Add(int64(n))
	return n, err
}

type meterReader struct {
	r io.Reader
	m *meter
}

func (r meterReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.m.n.Add(int64(n))
	return n, err
}
