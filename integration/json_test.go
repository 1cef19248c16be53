package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/jsonout"
)

// jsonLines checks out, the --json output of a ckpt command, against the
// schema of docs/json.md (internal/jsonout), and returns its lines.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	lines, err := jsonout.CheckAll([]byte(out))
	if err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	return lines
}

// jsonOf checks out as jsonLines does, and decodes its lines of type typ
// into Ts.
func jsonOf[T any](t *testing.T, out, typ string) []T {
	t.Helper()
	jsonLines(t, out)
	var all []T
	for _, l := range strings.SplitAfter(strings.TrimSuffix(out, "\n"), "\n") {
		var head struct{ Type string }
		if err := json.Unmarshal([]byte(l), &head); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if head.Type != typ {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		all = append(all, v)
	}
	return all
}

// Every command that needs the engine or a registry, with --json, against
// a real container and registry: every line of their output, successes
// and failures, passes the schema of docs/json.md, and says which command
// printed it. (The commands that need neither are checked the same way by
// cmd/ckpt/app's TestJSONOutput.) A resume without memory exits 3 and says
// so in its result.
func TestJSONEveryCommand(t *testing.T) {
	e := newEnv(t)
	reg := startRegistry(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol})
	before := e.waitCounter(name, 3)
	creds := []string{"DOCKER_CONFIG=" + reg.config}

	// run runs ckpt --json ARGS, checks its exit code and its lines, and
	// returns its result lines.
	run := func(env []string, code int, args ...string) []map[string]any {
		t.Helper()
		r := e.ckptEnv(env, append(args, "--json")...)
		if r.code != code {
			t.Fatalf("ckpt %s --json: exit %d, want %d\n%s", strings.Join(args, " "), r.code, code, r.stderr)
		}
		lines := jsonLines(t, r.stdout)
		if len(lines) == 0 {
			t.Fatalf("ckpt %s --json printed nothing", strings.Join(args, " "))
		}
		var results []map[string]any
		for _, l := range lines {
			if cmd := l["command"].(string); !strings.HasPrefix(strings.Join(args, " "), cmd) {
				t.Errorf("ckpt %s --json: a line of command %q", strings.Join(args, " "), cmd)
			}
			if l["type"] == "result" {
				results = append(results, l)
			}
		}
		return results
	}
	field := func(results []map[string]any, i int, k string) any {
		t.Helper()
		if i >= len(results) {
			t.Fatalf("%d results, want more: %v", len(results), results)
		}
		return results[i][k]
	}

	// Failures first: nothing to resume, no such container.
	if res := run(nil, 1, "save", "ckpt-it-nope"); field(res, 0, "ok") != false || field(res, 0, "error") == nil {
		t.Errorf("save of nothing: %v", res)
	}
	run(nil, 1, "resume", "ckpt-it-nope")
	run(nil, 2, "resume", "reg.example/x:1")

	// Save, with progress; list and inspect it.
	r := e.ckpt("save", "--json", name+":one")
	if r.code != 0 || !strings.Contains(r.stdout, `{"type":"progress","command":"save"`) {
		t.Fatalf("save --json: exit %d\n%s", r.code, r.stdout)
	}
	res := jsonOf[struct {
		OK          bool
		Ref, Mode   string
		MemoryBytes int64
	}](t, r.stdout, "result")
	if len(res) != 1 || !res[0].OK || res[0].Ref != name+":one" || res[0].Mode != "hot" || res[0].MemoryBytes <= 0 {
		t.Fatalf("save --json: %+v", res)
	}
	run(nil, 0, "ls")
	run(nil, 0, "inspect", name+":one")
	run(nil, 0, "version")
	run(nil, 0, "doctor")

	// Resume, with its memory.
	if res := run(nil, 0, "resume", name+":one"); field(res, 0, "memoryRestored") != true || field(res, 0, "ref") != name+":one" {
		t.Fatalf("resume --json: %v", res)
	}
	before = e.assertContinues(name, before)

	// Push and pull.
	e.mustCkpt("save", "--leave-running", name+":two")
	ref := reg.host + "/team/" + name + ":two"
	if res := run(creds, 0, "push", "--ca-file", reg.ca, name+":two", ref); field(res, 0, "ref") != name+":two" {
		t.Errorf("push --json: %v", res)
	}
	run(creds, 1, "push", name+":two", ref) // no CA: refused
	other := "CKPT_STORE=" + t.TempDir()
	if res := run(append(creds, other), 0, "pull", "--ca-file", reg.ca, ref); field(res, 0, "ref") != name+":two" {
		t.Errorf("pull --json: %v", res)
	}
	run(append(creds, other), 1, "pull", "--ca-file", reg.ca, reg.host+"/team/nothing:here")

	// Export, and import into a store that does not trust this one: the
	// resume of a removed container comes back on its data only, exit 3.
	archive := filepath.Join(t.TempDir(), "a.ckpt")
	run(nil, 0, "export", "-o", archive, name+":two")
	run(nil, 1, "export", "-o", archive, name+":two") // it exists
	if st, err := os.Stat(archive); err != nil || st.Size() == 0 {
		t.Fatalf("archive: %v", err)
	}
	untrusting := "CKPT_STORE=" + t.TempDir()
	if res := run([]string{untrusting}, 0, "import", archive); field(res, 0, "trust").(map[string]any)["level"] != "untrusted" {
		t.Errorf("import --json: %v", res)
	}
	removeAll := func() {
		t.Helper()
		removeContainer(t, name)
		must(t, docker.VolumeRemove(context.Background(), vol, true))
	}
	removeAll()
	res2 := run([]string{untrusting}, exitNoMemory, "resume", name)
	if field(res2, 0, "ok") != true || field(res2, 0, "memoryRestored") != false || field(res2, 0, "trust").(map[string]any)["level"] != "untrusted" {
		t.Errorf("resume --json of an untrusted checkpoint: %v", res2)
	}
	removeAll()

	// The store's own checkpoint again: whole; then rm and prune.
	if res := run(nil, 0, "resume", name+":two"); field(res, 0, "memoryRestored") != true || field(res, 0, "recreated") != true {
		t.Errorf("resume --json into a removed container: %v", res)
	}
	before = e.assertContinues(name, before)

	// The hooks: a dry run, then a shutdown and a boot, each a result line
	// per container and a summary.
	hookPol := filepath.Join(t.TempDir(), "hooks.yaml")
	write(t, hookPol, fmt.Sprintf("default:\n  mode: skip\nrules:\n  - name: it\n    match: {names: [%q]}\n    mode: hot\n", name))
	has := func(res []map[string]any, action string) bool {
		return slices.ContainsFunc(res, func(l map[string]any) bool { return l["container"] == name && l["action"] == action })
	}
	if res := run(nil, 0, "hook", "run", "shutdown", "--dry-run", "--policy", hookPol); !has(res, "would save") {
		t.Errorf("hook run shutdown --dry-run --json: %v", res)
	}
	if res := run(nil, 0, "hook", "run", "shutdown", "--policy", hookPol); !has(res, "saved") {
		t.Errorf("hook run shutdown --json: %v", res)
	}
	if res := run(nil, 0, "hook", "run", "boot", "--policy", hookPol); !has(res, "resumed") ||
		!slices.ContainsFunc(res, func(l map[string]any) bool { return l["container"] == name && l["memoryRestored"] == true }) {
		t.Errorf("hook run boot --json: %v", res)
	}
	e.assertContinues(name, before)
	run(nil, 0, "rm", "--dry-run", "--all", name)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, pol, "retention:\n  keep_last: 1\n")
	if res := run(nil, 0, "prune", "--policy", pol, name); !slices.ContainsFunc(res, func(l map[string]any) bool { return l["action"] == "remove" }) {
		t.Errorf("prune --json removed nothing: %v", res)
	}
	run(nil, 0, "rm", "--all", name)
	run(nil, 1, "rm", name+":gone")
}
