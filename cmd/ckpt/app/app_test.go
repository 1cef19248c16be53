package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
	"github.com/ckpt-dev/ckpt/restore"
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

// usage is what a usage error of command prints on stderr: the error,
// and a hint at the command's help ("" for ckpt's own).
func usage(command, msg string) string {
	help := "ckpt --help"
	if command != "" {
		help = "ckpt " + command + " --help"
	}
	return "ckpt: error: " + msg + "\nckpt: hint: see " + help + "\n"
}

func TestUsageErrors(t *testing.T) {
	noEnv(t)
	for _, tc := range []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"save"}, usage("save", "save needs a container name (or --all, or --project)")},
		{[]string{"resume"}, usage("resume", "resume needs a container name (or --all, or --project)")},
		{[]string{"save", "--all", "web"}, usage("save", "give container names, --all or --project, only one of them")},
		{[]string{"resume", "--all", "web"}, usage("resume", "give container names, --all or --project, only one of them")},
		{[]string{"resume", "--from", "x", "a", "b"}, usage("resume", "--from takes exactly one container")},
		{[]string{"resume", "--from", "x", "--all"}, usage("resume", "--from takes exactly one container")},
		{[]string{"resume", "--from", "x", "web:y"}, usage("resume", "web:y names its checkpoint already: give CONTAINER:NAME or --from NAME, not both")},
		{[]string{"resume", "reg.example/web:v1"}, usage("resume", "reg.example/web:v1 is a registry reference, not CONTAINER[:NAME]: ckpt pull or ckpt resume --from take it")},
		{[]string{"resume", "web:"}, usage("resume", `missing checkpoint name after ":" in "web:"`)},
		{[]string{"save", "--name", "x", "web:y"}, usage("save", "web:y names its checkpoint already: give CONTAINER:NAME or --name, not both")},
		{[]string{"save", "web:../x"}, usage("save", `invalid checkpoint name "../x"`)},
		{[]string{"--bogus"}, usage("", "flag provided but not defined: -bogus")},
		{[]string{"save", "--bogus", "web"}, usage("save", "flag provided but not defined: -bogus")},
		{[]string{"resume", "--bogus", "web"}, usage("resume", "flag provided but not defined: -bogus")},
		{[]string{"ls", "--bogus"}, usage("ls", "flag provided but not defined: -bogus")},
		{[]string{"rm", "--bogus", "web"}, usage("rm", "flag provided but not defined: -bogus")},
		{[]string{"rm"}, usage("rm", "rm needs CONTAINER:NAME, or --all CONTAINER")},
		{[]string{"rm", "../x"}, usage("rm", `invalid container name "../x"`)},
		{[]string{"rm", "web"}, usage("rm", "rm web would remove every checkpoint of web: give --all for that, or name one as web:NAME")},
		{[]string{"rm", "--dry-run", "web"}, usage("rm", "rm web would remove every checkpoint of web: give --all for that, or name one as web:NAME")},
		{[]string{"rm", "web:cp1", "db"}, usage("rm", "rm db would remove every checkpoint of db: give --all for that, or name one as db:NAME")},
		{[]string{"rm", "--all", "web:cp1"}, usage("rm", "--all removes every checkpoint of a container: give web, not web:cp1")},
		{[]string{"ls", "a", "b"}, usage("ls", "ls takes at most one container name")},
		{[]string{"save", "--project", "shop", "web"}, usage("save", "give container names, --all or --project, only one of them")},
		{[]string{"save", "--cold", "--leave-running", "web"}, usage("save", "--cold stops the containers; it does not go with --leave-running")},
		{[]string{"hook", "run"}, usage("hook run", "hook run takes shutdown or boot")},
		{[]string{"hook", "run", "reboot"}, usage("hook run", "hook run takes shutdown or boot")},
		{[]string{"policy", "check"}, usage("policy check", "policy check takes one file")},
		{[]string{"trust", "add", "x"}, usage("trust add", "trust add takes NAME and KEY (a public key line, or a file holding one)")},
		{[]string{"ls", "../x"}, usage("ls", `invalid container name "../x"`)},
		{[]string{"bogus"}, usage("", `unknown command "bogus"`)},
		{[]string{"help", "bogus"}, usage("help", `unknown command "bogus"`)},
		{[]string{"help", "trust", "bogus"}, usage("help", `unknown command "trust bogus"`)},
		{[]string{"version", "x"}, usage("version", "version takes no arguments")},
		{[]string{"push", "web"}, usage("push", "push takes CONTAINER[:NAME] and HOST/REPOSITORY[:TAG]")},
		{[]string{"push", "../x", "reg.example/web"}, usage("push", `invalid container name "../x"`)},
		{[]string{"pull"}, usage("pull", "pull takes one HOST/REPOSITORY:TAG")},
		{[]string{"resume", "--all", "--from", "reg.example/web:v1"}, usage("resume", "--from reg.example/web:v1 resumes one container: the one it was pushed from")},
		{[]string{"resume", "--from", "reg.example/web:v1", "a", "b"}, usage("resume", "--from reg.example/web:v1 resumes one container: the one it was pushed from")},
		{[]string{"resume", "--from", "reg.example/web:v1", "web:cp1"}, usage("resume", "--from reg.example/web:v1 names the checkpoint: give the container without :NAME")},
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
	if code != exitUsage || stdout != "" || stderr != usage("save", "save needs a container name (or --all, or --project)") {
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
			if c.Hidden || c.Name == "help" { // ckpt help --help is ckpt --help: TestHelpCommand
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
		{"save", []string{"ckpt save [command options] CONTAINER[:NAME]...", "--all", "--leave-running", "--name NAME", "--quiet, -q", "--json"}},
		{"resume", []string{"ckpt resume [command options] CONTAINER[:NAME]...", "--all", "--from HOST/REPOSITORY:TAG", "--require-memory", "--quiet, -q", "exits 3"}},
		{"ls", []string{"ckpt ls [command options] [CONTAINER]", "--json", "MODE is hot"}},
		{"rm", []string{"ckpt rm [command options] CONTAINER:NAME... | --all CONTAINER...", "--all", "--dry-run", "--json"}},
		{"version", []string{"ckpt version [command options]", "--json"}},
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
		// The old names are hidden.
		for _, old := range []string{"--no-fallback", "--force"} {
			if tc.cmd == "resume" && old == "--force" {
				continue
			}
			if strings.Contains(stdout, old) {
				t.Errorf("ckpt %s --help shows %s", tc.cmd, old)
			}
		}
	}
}

// ckpt help is ckpt --help; ckpt help COMMAND... is ckpt COMMAND... --help.
func TestHelpCommand(t *testing.T) {
	noEnv(t)
	for _, tc := range []struct{ help, want []string }{
		{[]string{"help"}, []string{"--help"}},
		{[]string{"help", "rm"}, []string{"rm", "--help"}},
		{[]string{"help", "trust", "add"}, []string{"trust", "add", "--help"}},
		{[]string{"help", "hook", "run", "boot"}, []string{"hook", "run", "boot", "--help"}},
	} {
		code, got, stderr := run(t, tc.help...)
		_, want, _ := run(t, tc.want...)
		if code != exitOK || stderr != "" || got != want || want == "" {
			t.Errorf("ckpt %v = %d, stderr %q, stdout:\n%s\nwant the output of ckpt %v:\n%s", tc.help, code, stderr, got, tc.want, want)
		}
	}
}

func TestVersion(t *testing.T) {
	noEnv(t)
	code, first, stderr := run(t, "--version")
	if code != exitOK || stderr != "" || !strings.HasPrefix(first, "ckpt "+Version+" (commit ") || strings.Count(first, "\n") != 1 {
		t.Fatalf("ckpt --version = %d, %q, %q", code, first, stderr)
	}
	code, stdout, stderr := run(t, "version")
	if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, first) {
		t.Fatalf("ckpt version = %d, %q, %q; want it to start with %q", code, stdout, stderr, first)
	}
	for _, want := range []string{
		fmt.Sprintf("store format: writes %d, reads 1 to %d (chunked files from %d)\n", format.Version, format.Version, format.FirstChunked),
		"engines tested: Docker " + strings.Join(engine.TestedVersions(), ", ") + "\n",
		"CRIU needed: ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("ckpt version lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = run(t, "version", "--json")
	lines := jsonLines(t, stdout)
	if code != exitOK || len(lines) != 1 || lines[0]["release"] != Version || lines[0]["formatVersion"] != json.Number(fmt.Sprint(format.Version)) {
		t.Errorf("ckpt version --json = %d, %q", code, stdout)
	}
}

const lsHeader = "CHECKPOINT  CREATED  MODE  SIZE  MEMORY  STATE  ORIGIN\n"

func TestLsEmpty(t *testing.T) {
	noEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ls"}, lsHeader},
		{[]string{"ls", "web"}, lsHeader},
		{[]string{"ls", "--json"}, ""},
		{[]string{"ls", "--json", "web"}, ""},
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
	if code != exitOK || stderr != "" || !strings.Contains(stdout, `"ref":"web:cp1"`) {
		t.Errorf("CKPT_STORE=%s ckpt ls --json = %d, %q, %q", dir, code, stdout, stderr)
	}
}

func TestRmNothing(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	noCheckpoints := "ckpt: error: no checkpoints for container nope\nckpt: hint: ckpt ls lists the checkpoints in the store\n"
	for _, tc := range []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"rm", "--all", "nope"}, noCheckpoints},
		{[]string{"rm", "nope:cp1"}, noCheckpoints},
		{[]string{"rm", "--dry-run", "nope:cp1"}, noCheckpoints},
		{[]string{"rm", "nope", "cp1"}, "ckpt: warning: rm CONTAINER NAME is deprecated, use ckpt rm nope:cp1\n" + noCheckpoints},
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
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "CHECKPOINT CREATED MODE SIZE MEMORY STATE ORIGIN" {
		t.Errorf("header %q", lines[0])
	}
	want := fmt.Sprintf("web:cp1 %s hot %s %s complete here", created.Local().Format(time.DateTime), units.Bytes(size), units.Bytes(memory))
	if got := strings.Join(strings.Fields(lines[1]), " "); got != want {
		t.Errorf("ls line %q, want the fields %q", lines[1], want)
	}
	if !strings.HasSuffix(lines[1], "  3.0 MiB  complete  here") {
		t.Errorf("ls line %q", lines[1])
	}
	// Columns line up: every header title starts where its values start.
	for _, title := range []string{"CREATED", "MODE", "STATE"} {
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
		got := jsonLines(t, stdout)
		if len(got) != 1 {
			t.Fatalf("%v: %d lines in %q", args, len(got), stdout)
		}
		e := got[0]
		for k, v := range map[string]any{
			"type":        "item",
			"command":     "ls",
			"container":   "web",
			"checkpoint":  "cp1",
			"ref":         "web:cp1",
			"state":       "complete",
			"mode":        "hot",
			"memoryBytes": json.Number(fmt.Sprint(memory)),
			"sizeBytes":   json.Number(fmt.Sprint(size)),
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
	if code, stdout, _ := run(t, "--store", dir, "ls", "--json", "db"); code != exitOK || stdout != "" {
		t.Errorf("ls --json db = %d, %q", code, stdout)
	}

	code, stdout, stderr = run(t, "--store", dir, "rm", "--all", "web")
	if code != exitOK || stderr != "" || stdout != "removed web:cp1\n" {
		t.Errorf("rm --all web = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = run(t, "--store", dir, "ls")
	if code != exitOK || stdout != lsHeader {
		t.Errorf("ls after rm = %d, %q", code, stdout)
	}
	code, stdout, _ = run(t, "--store", dir, "ls", "--json")
	if code != exitOK || stdout != "" {
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
	jsonLines(t, stdout)
	var got []lsEntry
	for _, l := range strings.SplitAfter(strings.TrimSuffix(stdout, "\n"), "\n") {
		var e lsEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	type row struct{ ref, state string }
	var rows []row
	for _, e := range got {
		rows = append(rows, row{e.Ref, e.State})
		if (e.State == store.StateComplete) != (e.Created != nil) {
			t.Errorf("%+v: created set only for complete checkpoints", e)
		}
		if (e.State == store.StateDamaged) != strings.Contains(e.Error, "sha256 mismatch") {
			t.Errorf("%+v: error set only for damaged checkpoints", e)
		}
	}
	wantRows := []row{
		{"db:d1", "damaged"},
		{"web:old", "complete"},
		{"web:new", "complete"},
		{"web:pending", "incomplete"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(wantRows) {
		t.Errorf("ls --json rows %v, want %v", rows, wantRows)
	}

	code, stdout, _ = run(t, "--store", dir, "ls", "web")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if code != exitOK || len(lines) != 4 {
		t.Fatalf("ls web = %d, %q", code, stdout)
	}
	if f := strings.Fields(lines[3]); strings.Join(f, " ") != "web:pending - - - - incomplete -" {
		t.Errorf("incomplete line %q", lines[3])
	}

	// A dry run says what would go, and removes nothing.
	code, stdout, stderr = run(t, "--store", dir, "rm", "--dry-run", "--all", "web", "db")
	if code != exitOK || stdout != "would remove web:old\nwould remove web:new\nwould remove web:pending\nwould remove db:d1\n" || stderr != "" {
		t.Errorf("rm --dry-run --all web db = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "--store", dir, "rm", "--dry-run", "web:old")
	if code != exitOK || stdout != "would remove web:old\n" || stderr != "" {
		t.Errorf("rm --dry-run web:old = %d, %q, %q", code, stdout, stderr)
	}
	if _, err := st.Load("web", "old"); err != nil {
		t.Fatalf("the dry run removed web:old: %v", err)
	}

	// Named ones go; --all takes the rest, incomplete too; the old form
	// works and warns.
	code, stdout, stderr = run(t, "--store", dir, "rm", "web", "old")
	if code != exitOK || stdout != "removed web:old\n" || stderr != "ckpt: warning: rm CONTAINER NAME is deprecated, use ckpt rm web:old\n" {
		t.Errorf("rm web old = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "--store", dir, "rm", "web:old")
	if code != exitError || stdout != "" || stderr != "ckpt: error: no checkpoint \"old\" for container web\nckpt: hint: ckpt ls web lists its checkpoints\n" {
		t.Errorf("rm web:old again = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "--store", dir, "rm", "--all", "web")
	if code != exitOK || stdout != "removed web:new\nremoved web:pending\n" || stderr != "" {
		t.Errorf("rm --all web = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "--store", dir, "rm", "db:d1")
	if code != exitOK || stdout != "removed db:d1\n" || stderr != "" {
		t.Errorf("rm db:d1 = %d, %q, %q", code, stdout, stderr)
	}
	if code, stdout, _ := run(t, "--store", dir, "ls", "--json"); code != exitOK || stdout != "" {
		t.Errorf("ls --json at the end = %d, %q", code, stdout)
	}
}

// rm of several checkpoints of several containers: each named one goes,
// one that is not there fails alone, and --json says so line by line.
func TestRmSeveral(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	for _, ref := range []string{"web:a", "web:b", "web:c", "db:x"} {
		c, n, _ := strings.Cut(ref, ":")
		saveCheckpoint(t, dir, c, n, time.Now(), 0)
	}
	code, stdout, stderr := run(t, "--store", dir, "rm", "web:a", "db:x", "web:b", "web:a", "db:nope")
	if code != exitError || stdout != "removed web:a\nremoved web:b\nremoved db:x\n" ||
		stderr != "ckpt: error: db:nope: no checkpoint \"nope\" for container db\nckpt: hint: ckpt ls db lists its checkpoints\n" {
		t.Errorf("rm = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, _ = run(t, "--store", dir, "rm", "--json", "--dry-run", "--all", "web")
	lines := jsonLines(t, stdout)
	if code != exitOK || len(lines) != 2 || lines[0]["ref"] != "web:c" || lines[0]["dryRun"] != true ||
		lines[1]["type"] != "summary" || lines[1]["removed"] != json.Number("1") || lines[1]["dryRun"] != true {
		t.Errorf("rm --json --dry-run --all web = %d, %q", code, stdout)
	}
	code, stdout, _ = run(t, "--store", dir, "rm", "--json", "web:gone", "web:c")
	lines = jsonLines(t, stdout)
	if code != exitError || len(lines) != 3 || lines[0]["ok"] != false || lines[0]["ref"] != "web:gone" ||
		lines[1]["ok"] != true || lines[1]["ref"] != "web:c" ||
		lines[2]["type"] != "summary" || lines[2]["removed"] != json.Number("1") || lines[2]["ok"] != false {
		t.Errorf("rm --json = %d, %q", code, stdout)
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
	code, stdout, stderr := run(t, "--store", dir, "rm", "web:cp1")
	wantPrefix := fmt.Sprintf("ckpt: error: container web is busy: ckpt save (pid %d) since ", os.Getpid())
	if code != exitError || stdout != "" || !strings.HasPrefix(stderr, wantPrefix) ||
		!strings.HasSuffix(stderr, "\nckpt: hint: wait until it finishes and try again\n") {
		t.Errorf("rm of a busy container = %d, %q, %q", code, stdout, stderr)
	}
	if _, err := st.Load("web", "cp1"); err != nil {
		t.Errorf("the checkpoint is gone: %v", err)
	}
	// A dry run takes no lock.
	if code, stdout, _ := run(t, "--store", dir, "rm", "--dry-run", "web:cp1"); code != exitOK || stdout != "would remove web:cp1\n" {
		t.Errorf("rm --dry-run of a busy container = %d, %q", code, stdout)
	}
}

// report maps errors to exit codes: 3 for a resume without memory.
func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"nil", nil, exitOK, ""},
		{"reported", errReported, exitError, ""},
		{"without memory", errNoMemory, exitNoMemory, ""},
		{"usage of a command", usageError{err: errors.New("Bad"), cmd: "trust add"}, exitUsage, usage("trust add", "bad")},
		{"usage of ckpt", usagef("bad"), exitUsage, usage("", "bad")},
		{"error", hint.New("it failed", "do this"), exitError, "ckpt: error: it failed\nckpt: hint: do this\n"},
	} {
		var b bytes.Buffer
		if code := report(&b, tc.err); code != tc.code || b.String() != tc.stderr {
			t.Errorf("%s: report = %d, %q; want %d, %q", tc.name, code, b.String(), tc.code, tc.stderr)
		}
	}
}

// A resume exits 3 when a container came back without the memory its
// checkpoint holds; a cold checkpoint holds none.
func TestWithoutMemory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results []restore.Result
		want    error
	}{
		{"with memory", []restore.Result{{MemoryRestored: true}, {MemoryRestored: true}}, nil},
		{"cold", []restore.Result{{Cold: true}, {MemoryRestored: true}}, nil},
		{"untrusted cold", []restore.Result{{Cold: true, Untrusted: true}}, nil},
		{"fallback", []restore.Result{{MemoryRestored: true}, {Fallback: errors.New("criu failed")}}, errNoMemory},
		{"untrusted", []restore.Result{{Untrusted: true}}, errNoMemory},
		{"failed", []restore.Result{{Err: errors.New("x")}}, nil},
	} {
		if got := withoutMemory(tc.results); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The old forms still work, and say what replaces them. These stop at the
// engine, which is not there: what matters is the line before.
func TestDeprecatedForms(t *testing.T) {
	noEnv(t)
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "nothing.sock"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"save", "--name", "before", "web", "db"}, "ckpt: warning: save --name is deprecated, use ckpt save web:before db:before\n"},
		{[]string{"resume", "--from", "cp1", "web"}, "ckpt: warning: resume --from NAME is deprecated, use ckpt resume web:cp1\n"},
		{[]string{"resume", "--no-fallback", "web"}, "ckpt: warning: --no-fallback is deprecated, use --require-memory\n"},
	} {
		code, _, stderr := run(t, append([]string{"--store", t.TempDir()}, tc.args...)...)
		if code != exitError || !strings.HasPrefix(stderr, tc.want+"ckpt: error: cannot reach the Docker engine") {
			t.Errorf("%v = %d, %q; want a line %q first", tc.args, code, stderr, tc.want)
		}
	}
	// --name with --all or --project has no other form: no warning.
	if _, _, stderr := run(t, "--store", t.TempDir(), "save", "--all", "--name", "x"); strings.Contains(stderr, "deprecated") {
		t.Errorf("save --all --name warns: %q", stderr)
	}
}
