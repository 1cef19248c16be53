package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// These tests run only commands that never reach the engine: usage errors,
// help, and ls and rm, which work on the store alone.

// run calls Main with args (without the program name) and returns its exit
// code and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(append([]string{"ckpt"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// noEnv keeps the environment's CKPT_STORE out of the tests.
func noEnv(t *testing.T) {
	t.Helper()
	t.Setenv("CKPT_STORE", "")
	os.Unsetenv("CKPT_STORE")
}

func TestUsageErrors(t *testing.T) {
	noEnv(t)
	usage := func(msg string) string {
		return "ckpt: error: " + msg + "\nckpt: hint: see ckpt --help\n"
	}
	for _, tc := range []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"save"}, "ckpt: error: save needs a container name (or --all, or --project)\nckpt: hint: see ckpt --help\n"},
		{[]string{"resume"}, usage("resume needs a container name (or --all, or --project)")},
		{[]string{"save", "--all", "web"}, usage("give container names, --all or --project, only one of them")},
		{[]string{"resume", "--all", "web"}, usage("give container names, --all or --project, only one of them")},
		{[]string{"resume", "--from", "x", "a", "b"}, usage("--from takes exactly one container")},
		{[]string{"resume", "--from", "x", "--all"}, usage("--from takes exactly one container")},
		{[]string{"--bogus"}, usage("flag provided but not defined: -bogus")},
		{[]string{"save", "--bogus", "web"}, usage("flag provided but not defined: -bogus")},
		{[]string{"resume", "--bogus", "web"}, usage("flag provided but not defined: -bogus")},
		{[]string{"ls", "--bogus"}, usage("flag provided but not defined: -bogus")},
		{[]string{"rm", "--bogus", "web"}, usage("flag provided but not defined: -bogus")},
		{[]string{"rm"}, usage("rm needs a container name")},
		{[]string{"rm", "../x"}, usage(`invalid container name "../x"`)},
		{[]string{"ls", "a", "b"}, usage("ls takes at most one container name")},
		{[]string{"save", "--project", "shop", "web"}, usage("give container names, --all or --project, only one of them")},
		{[]string{"save", "--cold", "--leave-running", "web"}, usage("--cold stops the containers; it does not go with --leave-running")},
		{[]string{"hook", "run"}, usage("hook run takes shutdown or boot")},
		{[]string{"hook", "run", "reboot"}, usage("hook run takes shutdown or boot")},
		{[]string{"policy", "check"}, usage("policy check takes one file")},
		{[]string{"ls", "../x"}, usage(`invalid container name "../x"`)},
		{[]string{"bogus"}, usage(`unknown command "bogus"`)},
		{[]string{"push", "web"}, usage("push takes CONTAINER[:NAME] and HOST/REPOSITORY[:TAG]")},
		{[]string{"push", "../x", "reg.example/web"}, usage(`invalid container name "../x"`)},
		{[]string{"pull"}, usage("pull takes one HOST/REPOSITORY:TAG")},
		{[]string{"resume", "--all", "--from", "reg.example/web:v1"}, usage("--from reg.example/web:v1 resumes one container: the one it was pushed from")},
		{[]string{"resume", "--from", "reg.example/web:v1", "a", "b"}, usage("--from reg.example/web:v1 resumes one container: the one it was pushed from")},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// A store that is never created: usage errors stop before.
			dir := filepath.Join(t.TempDir(), "store")
			code, stdout, stderr := run(t, append([]string{"--store", dir}, tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if stderr != tc.wantStderr {
				t.Errorf("stderr:\n got %q\nwant %q", stderr, tc.wantStderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			if _, err := os.Lstat(dir); err == nil {
				t.Errorf("%v created the store", tc.args)
			}
		})
	}
}

func TestUsageErrorWithoutStoreFlag(t *testing.T) {
	noEnv(t)
	code, stdout, stderr := run(t, "save")
	if code != exitUsage || stdout != "" ||
		stderr != "ckpt: error: save needs a container name (or --all, or --project)\nckpt: hint: see ckpt --help\n" {
		t.Errorf("ckpt save = %d, %q, %q", code, stdout, stderr)
	}
}

// TestHelp checks what the help says, not how urfave/cli lays it out: ckpt
// --help names every command with its usage, and each command's --help its
// usage, its arguments and every flag with its usage text.
func TestHelp(t *testing.T) {
	noEnv(t)
	code, stdout, stderr := run(t, "--help")
	if code != exitOK || stderr != "" {
		t.Fatalf("ckpt --help = %d, stderr %q", code, stderr)
	}
	app := New(io.Discard, io.Discard)
	want := []string{app.Name, app.Usage, app.Version}
	for _, c := range app.Commands {
		if !c.Hidden {
			want = append(want, c.Name, c.Usage)
		}
	}
	want = append(want, flagTexts(t, app.Flags)...)
	wantHelp(t, "ckpt --help", stdout, want)

	for _, args := range [][]string{nil, {"-h"}} {
		code, out, errOut := run(t, args...)
		if code != exitOK || errOut != "" || out != stdout {
			t.Errorf("ckpt %v = %d, stderr %q, stdout %q; want the --help output", args, code, errOut, out)
		}
	}

	var walk func(path []string, cs []*cli.Command)
	walk = func(path []string, cs []*cli.Command) {
		for _, c := range cs {
			if c.Hidden {
				continue
			}
			p := append(slices.Clone(path), c.Name)
			name := "ckpt " + strings.Join(p, " ")
			code, stdout, stderr := run(t, append(p, "--help")...)
			if code != exitOK || stderr != "" {
				t.Errorf("%s --help = %d, stderr %q", name, code, stderr)
				continue
			}
			want := []string{name, c.Usage, c.ArgsUsage}
			for _, sub := range c.Subcommands {
				if !sub.Hidden {
					want = append(want, sub.Name, sub.Usage)
				}
			}
			wantHelp(t, name+" --help", stdout, append(want, flagTexts(t, c.Flags)...))
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
}

// flagTexts returns what help must say of flags: each visible one's names,
// as -x or --name, and its usage text (with its `placeholder` quotes gone).
func flagTexts(t *testing.T, flags []cli.Flag) []string {
	t.Helper()
	var texts []string
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		for _, n := range f.Names() {
			if len(n) == 1 {
				texts = append(texts, "-"+n)
			} else {
				texts = append(texts, "--"+n)
			}
		}
		d, ok := f.(cli.DocGenerationFlag)
		if !ok {
			t.Errorf("flag %v has no usage text", f.Names())
			continue
		}
		texts = append(texts, strings.ReplaceAll(d.GetUsage(), "`", ""))
	}
	return texts
}

// wantHelp fails unless help contains every non-empty string of want.
func wantHelp(t *testing.T, what, help string, want []string) {
	t.Helper()
	for _, w := range want {
		if w != "" && !strings.Contains(help, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, help)
		}
	}
}

func TestCommandHelp(t *testing.T) {
	noEnv(t)
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"save", []string{"ckpt save [command options] CONTAINER...", "--all", "--leave-running", "--name NAME", "--quiet, -q"}},
		{"resume", []string{"ckpt resume [command options] CONTAINER...", "--all", "--from NAME", "--no-fallback", "--quiet, -q"}},
		{"ls", []string{"ckpt ls [command options] [CONTAINER]", "--json"}},
		{"rm", []string{"ckpt rm [command options] CONTAINER [NAME...]"}},
	} {
		code, stdout, stderr := run(t, tc.cmd, "--help")
		if code != exitOK || stderr != "" {
			t.Errorf("ckpt %s --help = %d, stderr %q", tc.cmd, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("ckpt %s --help lacks %q:\n%s", tc.cmd, w, stdout)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, stderr := run(t, "--version")
	if code != exitOK || stderr != "" || stdout != "ckpt version "+Version+"\n" {
		t.Errorf("ckpt --version = %d, %q, %q", code, stdout, stderr)
	}
}

const lsHeader = "CONTAINER  CHECKPOINT  CREATED  SIZE  MEMORY  STATE  ORIGIN\n"

func TestLsEmpty(t *testing.T) {
	noEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ls"}, lsHeader},
		{[]string{"ls", "web"}, lsHeader},
		{[]string{"ls", "--json"}, "[]\n"},
		{[]string{"ls", "--json", "web"}, "[]\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			code, stdout, stderr := run(t, append([]string{"--store", dir}, tc.args...)...)
			if code != exitOK || stderr != "" {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
			if stdout != tc.want {
				t.Errorf("stdout:\n got %q\nwant %q", stdout, tc.want)
			}
		})
	}
}

func TestLsFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CKPT_STORE", dir)
	saveCheckpoint(t, dir, "web", "cp1", time.Now(), 1)
	code, stdout, stderr := run(t, "ls", "--json")
	if code != exitOK || stderr != "" || !strings.Contains(stdout, `"name": "cp1"`) {
		t.Errorf("CKPT_STORE=%s ckpt ls --json = %d, %q, %q", dir, code, stdout, stderr)
	}
}

func TestRmNothing(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"rm", "nope"}, "ckpt: error: no checkpoints for container nope\nckpt: hint: ckpt ls lists the checkpoints in the store\n"},
		{[]string{"rm", "nope", "cp1"}, "ckpt: error: no checkpoints for container nope\nckpt: hint: ckpt ls lists the checkpoints in the store\n"},
	} {
		code, stdout, stderr := run(t, append([]string{"--store", dir}, tc.args...)...)
		if code != exitError {
			t.Errorf("%v: exit %d, want %d", tc.args, code, exitError)
		}
		if stderr != tc.wantStderr {
			t.Errorf("%v: stderr:\n got %q\nwant %q", tc.args, stderr, tc.wantStderr)
		}
		if stdout != "" {
			t.Errorf("%v: stdout %q", tc.args, stdout)
		}
	}
	// Nothing to remove leaves nothing behind, not even a lock file.
	if _, err := os.Stat(filepath.Join(dir, "containers", "nope")); !os.IsNotExist(err) {
		t.Errorf("rm of nothing created %s: %v", filepath.Join(dir, "containers", "nope"), err)
	}
}

// saveCheckpoint writes a complete checkpoint of container into the store at
// dir with the store's API, and returns the size of its files.
func saveCheckpoint(t *testing.T, dir, container, name string, created time.Time, memory int64) int64 {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Begin(container, name)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]string{"Name": "/" + container, "Id": strings.Repeat("ab", 32)}
	if err := p.WriteJSON(format.ContainerFile, doc); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteJSON(format.NetworksFile, []string{}); err != nil {
		t.Fatal(err)
	}
	manifest, err := p.Manifest(&format.Manifest{Created: created, Mode: format.ModeHot, MemoryBytes: memory})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(manifest); err != nil {
		t.Fatal(err)
	}
	// The sizes, computed the way WriteJSON writes.
	var size int64
	for _, v := range []any{doc, []string{}} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		size += int64(len(b)) + 1
	}
	return size
}

func TestLsAndRm(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	created := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	const memory = 3 << 20
	size := saveCheckpoint(t, dir, "web", "cp1", created, memory)

	// Table.
	code, stdout, stderr := run(t, "--store", dir, "ls")
	if code != exitOK || stderr != "" {
		t.Fatalf("ls: exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("ls printed %q, want a header and one line", stdout)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "CONTAINER CHECKPOINT CREATED SIZE MEMORY STATE ORIGIN" {
		t.Errorf("header %q", lines[0])
	}
	want := fmt.Sprintf("web cp1 %s %s %s complete here", created.Local().Format(time.DateTime), units.Bytes(size), units.Bytes(memory))
	if got := strings.Join(strings.Fields(lines[1]), " "); got != want {
		t.Errorf("ls line %q, want the fields %q", lines[1], want)
	}
	if !strings.HasSuffix(lines[1], "  3.0 MiB  complete  here") {
		t.Errorf("ls line %q", lines[1])
	}
	// Columns line up: every header title starts where its values start.
	for _, title := range []string{"CHECKPOINT", "CREATED", "STATE"} {
		i := strings.Index(lines[0], title)
		if i < 0 || i >= len(lines[1]) || lines[1][i-1] != ' ' || lines[1][i] == ' ' {
			t.Errorf("column %s is not aligned:\n%s", title, stdout)
		}
	}

	// JSON, with and without a container name.
	for _, args := range [][]string{{"ls", "--json"}, {"ls", "--json", "web"}} {
		code, stdout, stderr = run(t, append([]string{"--store", dir}, args...)...)
		if code != exitOK || stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
		var got []map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("%v: %v in %q", args, err, stdout)
		}
		if len(got) != 1 {
			t.Fatalf("%v: %d entries in %q", args, len(got), stdout)
		}
		e := got[0]
		for k, v := range map[string]any{
			"container":   "web",
			"name":        "cp1",
			"state":       "complete",
			"mode":        "hot",
			"memoryBytes": float64(memory),
			"sizeBytes":   float64(size),
			"created":     created.Format(time.RFC3339),
		} {
			if e[k] != v {
				t.Errorf("%v: %s = %v (%T), want %v", args, k, e[k], e[k], v)
			}
		}
		for _, k := range []string{"error", "leftRunning"} {
			if _, ok := e[k]; ok {
				t.Errorf("%v: %s present in %q", args, k, stdout)
			}
		}
	}
	// Another container's listing is empty.
	if code, stdout, _ := run(t, "--store", dir, "ls", "--json", "db"); code != exitOK || stdout != "[]\n" {
		t.Errorf("ls --json db = %d, %q", code, stdout)
	}

	code, stdout, stderr = run(t, "--store", dir, "rm", "web")
	if code != exitOK || stderr != "" || stdout != "removed web:cp1\n" {
		t.Errorf("rm web = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = run(t, "--store", dir, "ls")
	if code != exitOK || stdout != lsHeader {
		t.Errorf("ls after rm = %d, %q", code, stdout)
	}
	code, stdout, _ = run(t, "--store", dir, "ls", "--json")
	if code != exitOK || stdout != "[]\n" {
		t.Errorf("ls --json after rm = %d, %q", code, stdout)
	}
}

func TestLsStates(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	saveCheckpoint(t, dir, "web", "new", t0.Add(time.Hour), 0)
	saveCheckpoint(t, dir, "web", "old", t0, 0)
	saveCheckpoint(t, dir, "db", "d1", t0, 0)
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Begin("web", "pending"); err != nil {
		t.Fatal(err)
	}
	// Damage: the manifest's checksum no longer matches.
	if err := os.WriteFile(filepath.Join(dir, format.ContainersDir, "db", format.CheckpointsDir, "d1", format.ManifestSumFile), []byte("0\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run(t, "--store", dir, "ls", "--json")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var got []lsEntry
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	type row struct{ container, name, state string }
	var rows []row
	for _, e := range got {
		rows = append(rows, row{e.Container, e.Name, e.State})
		if (e.State == store.StateComplete) != (e.Created != nil) {
			t.Errorf("%+v: created set only for complete checkpoints", e)
		}
		if (e.State == store.StateDamaged) != strings.Contains(e.Error, "sha256 mismatch") {
			t.Errorf("%+v: error set only for damaged checkpoints", e)
		}
	}
	wantRows := []row{
		{"db", "d1", "damaged"},
		{"web", "old", "complete"},
		{"web", "new", "complete"},
		{"web", "pending", "incomplete"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(wantRows) {
		t.Errorf("ls --json rows %v, want %v", rows, wantRows)
	}

	code, stdout, _ = run(t, "--store", dir, "ls", "web")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if code != exitOK || len(lines) != 4 {
		t.Fatalf("ls web = %d, %q", code, stdout)
	}
	if f := strings.Fields(lines[3]); strings.Join(f, " ") != "web pending - - - incomplete -" {
		t.Errorf("incomplete line %q", lines[3])
	}

	// rm with names removes just those; without, the rest, incomplete too.
	code, stdout, stderr = run(t, "--store", dir, "rm", "web", "old")
	if code != exitOK || stdout != "removed web:old\n" || stderr != "" {
		t.Errorf("rm web old = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "--store", dir, "rm", "web")
	if code != exitOK || stdout != "removed web:new\nremoved web:pending\n" || stderr != "" {
		t.Errorf("rm web = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "--store", dir, "rm", "db")
	if code != exitOK || stdout != "removed db:d1\n" || stderr != "" {
		t.Errorf("rm db = %d, %q, %q", code, stdout, stderr)
	}
	if code, stdout, _ := run(t, "--store", dir, "ls", "--json"); code != exitOK || stdout != "[]\n" {
		t.Errorf("ls --json at the end = %d, %q", code, stdout)
	}
}

func TestRmBusy(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	saveCheckpoint(t, dir, "web", "cp1", time.Now(), 0)
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Lock("web", "save")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	code, stdout, stderr := run(t, "--store", dir, "rm", "web")
	wantPrefix := fmt.Sprintf("ckpt: error: container web is busy: ckpt save (pid %d) since ", os.Getpid())
	if code != exitError || stdout != "" || !strings.HasPrefix(stderr, wantPrefix) ||
		!strings.HasSuffix(stderr, "\nckpt: hint: wait until it finishes and try again\n") {
		t.Errorf("rm of a busy container = %d, %q, %q", code, stdout, stderr)
	}
	if _, err := st.Load("web", "cp1"); err != nil {
		t.Errorf("the checkpoint is gone: %v", err)
	}
}
