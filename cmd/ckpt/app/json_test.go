package app

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/jsonout"
	"github.com/ckpt-dev/ckpt/internal/progress"
)

// jsonLines checks out, the --json output of a command, against the schema
// of docs/json.md, and returns its lines decoded (numbers as json.Number).
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	lines, err := jsonout.CheckAll([]byte(out))
	if err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	return lines
}

// Every command with --json is in the schema, and every command that
// reads --json writes its lines through jsonWriter (which this checks
// with the schema's commands).
func TestJSONCommandsInSchema(t *testing.T) {
	var walk func(path string, cs []*cli.Command)
	walk = func(path string, cs []*cli.Command) {
		for _, c := range cs {
			p := strings.TrimSpace(path + " " + c.Name)
			if slices.ContainsFunc(c.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "json") }) {
				if _, ok := jsonout.Schema[p]; !ok {
					t.Errorf("ckpt %s has --json, and is not in internal/jsonout's Schema", p)
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk("", New(nil, nil).Commands)
}

// Every command that needs no engine, run with --json: each line of its
// output (successes and failures) passes the schema, and says the command.
// save, resume, push and pull are checked against a real engine and
// registry by integration/json_test.go.
func TestJSONOutput(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	saveNamed(t, dir, "web", "cp1", t0)
	saveNamed(t, dir, "web", "cp2", t0.Add(time.Hour))
	saveNamed(t, dir, "db", "d1", t0)
	archive := filepath.Join(t.TempDir(), "web.ckpt")
	other := t.TempDir()
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte("retention:\n  keep_last: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("deadline: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, key, _ := run(t, "--store", t.TempDir(), "trust", "key")
	keyFile := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	inspectRoot := inspectStore(t)
	sock := filepath.Join(t.TempDir(), "nothing.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock) // doctor finds no engine

	for _, tc := range []struct {
		args  []string
		code  int
		types []string // the types of the lines, in order
	}{
		{[]string{"version"}, exitOK, []string{"result"}},
		{[]string{"ls"}, exitOK, []string{"item", "item", "item"}},
		{[]string{"ls", "web"}, exitOK, []string{"item", "item"}},
		{[]string{"ls", "../x"}, exitUsage, []string{"error"}},
		{[]string{"--store", inspectRoot, "inspect", "fixture"}, exitOK, []string{"result"}},
		{[]string{"inspect", "web:nope"}, exitError, []string{"error"}},
		{[]string{"export", "-o", archive, "web:cp1"}, exitOK, []string{"result"}},
		{[]string{"export", "-o", archive, "web:cp1"}, exitError, []string{"error"}},
		{[]string{"export", "-o", "-", "web:cp1"}, exitUsage, []string{"error"}},
		{[]string{"--store", other, "import", archive}, exitOK, []string{"result"}},
		{[]string{"--store", other, "import", archive}, exitError, []string{"error"}},
		{[]string{"rm", "--dry-run", "--all", "web"}, exitOK, []string{"result", "result", "summary"}},
		{[]string{"rm", "db:d1", "db:nope"}, exitError, []string{"result", "result", "summary"}},
		{[]string{"rm", "--all", "nope"}, exitError, []string{"result", "summary"}},
		{[]string{"prune", "--dry-run", "--policy", pol}, exitOK, []string{"result", "result", "summary"}},
		{[]string{"prune", "--policy", pol}, exitOK, []string{"result", "result", "summary"}},
		{[]string{"prune", "--policy", filepath.Join(dir, "missing.yaml")}, exitError, []string{"error"}},
		{[]string{"doctor"}, exitError, slices.Repeat([]string{"item"}, 12)},
		{[]string{"trust", "key"}, exitOK, []string{"result"}},
		{[]string{"trust", "add", "host2", keyFile}, exitOK, []string{"result"}},
		{[]string{"trust", "add", "host2", keyFile}, exitError, []string{"error"}},
		{[]string{"trust", "ls"}, exitOK, []string{"item", "item"}},
		{[]string{"trust", "rm", "host2"}, exitOK, []string{"result"}},
		{[]string{"trust", "rm", "nobody"}, exitError, []string{"error"}},
		{[]string{"policy", "check", pol}, exitOK, []string{"result"}},
		{[]string{"policy", "check", bad}, exitError, []string{"item", "item", "result"}},
	} {
		args := append([]string{"--store", dir}, tc.args...)
		args = append(args, "--json")
		code, stdout, stderr := run(t, args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d; stderr %q", tc.args, code, tc.code, stderr)
		}
		lines := jsonLines(t, stdout)
		var types []string
		for _, l := range lines {
			types = append(types, l["type"].(string))
			if cmd := l["command"]; !strings.Contains(strings.Join(tc.args, " "), cmd.(string)) {
				t.Errorf("%v: a line of command %q", tc.args, cmd)
			}
		}
		want := tc.types
		if tc.args[0] == "doctor" {
			want = append(want, "summary")
		}
		if !slices.Equal(types, want) {
			t.Errorf("%v: lines of types %v, want %v:\n%s", tc.args, types, want, stdout)
		}
	}
}

// The lines jsonWriter writes, for the commands of other files (policy
// check, hook run, trust) as for those here.
func TestJSONWriter(t *testing.T) {
	type fields struct {
		Container string `json:"container"`
		Action    string `json:"action,omitempty"`
	}
	for _, tc := range []struct {
		name    string
		command string
		write   func(j *jsonWriter)
		want    string
	}{
		{"result", "hook run shutdown", func(j *jsonWriter) { j.result(fields{"web", "saved"}, nil) },
			`{"type":"result","command":"hook run shutdown","ok":true,"container":"web","action":"saved"}`},
		{"failed result", "hook run shutdown", func(j *jsonWriter) {
			j.result(fields{Container: "web", Action: "failed"}, hint.New("it failed", "do this"))
		}, `{"type":"result","command":"hook run shutdown","ok":false,"container":"web","action":"failed","error":"it failed","hint":"do this"}`},
		{"item", "ls", func(j *jsonWriter) {
			j.item(map[string]any{"container": "web", "checkpoint": "cp1", "ref": "web:cp1", "state": "complete", "sizeBytes": 1, "memoryBytes": 0})
		}, `{"type":"item","command":"ls","checkpoint":"cp1","container":"web","memoryBytes":0,"ref":"web:cp1","sizeBytes":1,"state":"complete"}`},
		{"item from a map", "policy check", func(j *jsonWriter) {
			j.item(map[string]any{"file": "p.yaml", "line": 3, "level": "warning", "message": "rule 2 is shadowed by rule 1"})
		}, `{"type":"item","command":"policy check","file":"p.yaml","level":"warning","line":3,"message":"rule 2 is shadowed by rule 1"}`},
		{"summary", "rm", func(j *jsonWriter) { j.summary(rmSummary{Removed: 2}, true) },
			`{"type":"summary","command":"rm","ok":true,"removed":2,"dryRun":false}`},
		{"error", "rm", func(j *jsonWriter) { j.fail(errors.New("no store")) },
			`{"type":"error","command":"rm","error":"no store"}`},
		{"usage error", "rm", func(j *jsonWriter) { j.fail(usageError{err: errors.New("Bad"), cmd: "rm"}) },
			`{"type":"error","command":"rm","error":"bad","hint":"see ckpt rm --help"}`},
		{"progress", "save", func(j *jsonWriter) {
			j.Report(progress.Event{Container: "web", Phase: "checkpoint", Elapsed: 1500 * time.Millisecond, Bytes: 10})
		}, `{"type":"progress","command":"save","container":"web","phase":"checkpoint","elapsedMs":1500,"bytes":10}`},
		{"nothing without --json", "save", func(*jsonWriter) { (*jsonWriter)(nil).result(fields{}, nil) }, ``},
	} {
		var b bytes.Buffer
		tc.write(newJSONWriter(&b, tc.command))
		if got := strings.TrimSuffix(b.String(), "\n"); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
		if tc.want != "" {
			jsonLines(t, b.String())
		}
	}
}

// The meter reports bytes as progress lines with --json.
func TestMeterJSON(t *testing.T) {
	defer func(d time.Duration) { meterEvery = d }(meterEvery)
	meterEvery = 5 * time.Millisecond
	var out bytes.Buffer
	app := New(&out, &out)
	app.Commands = append(app.Commands, &cli.Command{Name: "export", Flags: progressFlags(), Action: func(c *cli.Context) error {
		js := jsonOut(c)
		m := startMeter(c, js, "web", "cp1", "export", 1000)
		w := m.writer(&bytes.Buffer{})
		for range 5 {
			w.Write(make([]byte, 100))
			time.Sleep(10 * time.Millisecond)
		}
		m.done()
		return nil
	}})
	app.Commands = app.Commands[len(app.Commands)-1:]
	if err := app.Run([]string{"ckpt", "export", "--json"}); err != nil {
		t.Fatal(err)
	}
	lines := jsonLines(t, out.String())
	if len(lines) == 0 {
		t.Fatal("no progress line")
	}
	for _, l := range lines {
		if l["type"] != "progress" || l["phase"] != "export" || l["checkpoint"] != "cp1" || l["totalBytes"] == nil {
			t.Errorf("line %v", l)
		}
	}
	// With -q, or without a terminal, nothing.
	out.Reset()
	app.Run([]string{"ckpt", "export"})
	app.Run([]string{"ckpt", "export", "-q"})
	if out.Len() != 0 {
		t.Errorf("meter without --json printed %q", out.String())
	}
}
