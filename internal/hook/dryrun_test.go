package hook_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/ckpt-dev/ckpt/internal/engine/fake"
	"github.com/ckpt-dev/ckpt/internal/hook"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/policy"
)

// snapshot lists every file under dir with its mode, size and time.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, fmt.Sprintf("%s %v %d %v", path, fi.Mode(), fi.Size(), fi.ModTime()))
		return nil
	})
	must(t, err)
	return files
}

// unchanged fails unless the engine was only asked about containers and
// the store is as it was.
func (e *env) unchanged(t *testing.T, before []string) {
	t.Helper()
	for _, c := range e.f.Calls() {
		if method, _, _ := strings.Cut(c, " "); method != "Running" && method != "Lookup" {
			t.Errorf("the dry run called the engine: %s", c)
		}
	}
	if after := snapshot(t, e.st.Root); !slices.Equal(before, after) {
		t.Errorf("the dry run changed the store:\nbefore %q\nafter  %q", before, after)
	}
}

// linesOf returns out's lines that start with name and ": ".
func linesOf(out, name string) []string {
	var ls []string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, name+": ") {
			ls = append(ls, l)
		}
	}
	return ls
}

func TestDryRunShutdown(t *testing.T) {
	e := newEnv(t, `deadline: 2m
parallel: 3
default:
  mode: hot
rules:
  - name: dbs
    match: {names: [db]}
    mode: cold
    timeout: 45s
`, "web", "db", "cache", "bad", "slow", "strict")
	e.label("web", policy.LabelAfter, "db")
	e.label("cache", policy.LabelMode, "skip")
	e.label("bad", policy.LabelMode, "warm")
	e.label("slow", policy.LabelTimeout, "3m")
	e.label("strict", policy.LabelOnFailure, "fail")
	before := snapshot(t, e.st.Root)

	out, err := hook.DryRunShutdown(context.Background(), e.opts)
	if err == nil || err.Error() != "1 of 6 containers would fail" {
		t.Errorf("err = %v", err)
	}
	if out != (hook.Outcome{Hot: 2, Cold: 2, Skipped: 1, Failed: 1}) {
		t.Errorf("outcome %s", out)
	}
	e.unchanged(t, before)
	for _, name := range []string{"web", "db", "cache", "bad", "slow", "strict"} {
		if !e.running(t, name) {
			t.Errorf("%s was stopped", name)
		}
	}
	if rec := e.record(t); rec != nil {
		t.Errorf("a record was written: %+v", rec)
	}

	got := e.out.String()
	for name, want := range map[string]string{
		"cache":  "cache: would skip (label io.ckpt.mode=skip)",
		"bad":    `bad: would fail: container bad: label io.ckpt.mode="warm": mode "warm": want hot, cold or skip (left running)`,
		"slow":   "slow: step 2 of 2: would save cold (default, but its timeout 3m0s does not fit in the deadline 2m0s)",
		"strict": "strict: step 2 of 2: would save hot (default); timeout 1m0s: hot if its save starts within 1m0s of the hook's start, cold after; a failed hot save leaves it running",
		"web":    "web: step 1 of 2: would save hot (default); timeout 1m0s: hot if its save starts within 1m0s of the hook's start, cold after; a failed hot save is redone cold",
		"db":     `db: step 2 of 2: would save cold (rule "dbs" at line 6); timeout 45s`,
	} {
		if ls := linesOf(got, name); len(ls) != 1 || ls[0] != want {
			t.Errorf("%s: got %q\nwant %q", name, ls, want)
		}
	}
	// The order of the saves: dependents first, in name order within a
	// step. web depends on db: it is saved alone, before everything else.
	var order []string
	for l := range strings.SplitSeq(got, "\n") {
		if name, rest, ok := strings.Cut(l, ": step "); ok && rest != "" {
			order = append(order, name)
		}
	}
	if want := []string{"web", "db", "slow", "strict"}; !slices.Equal(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
	for _, line := range []string{
		"shutdown hook, dry run: nothing is saved, recorded or changed\n",
		"deadline 2m0s, 3 saves at a time, dependents first: 4 of 6 running containers to save\n",
		"shutdown hook, dry run: 2 hot, 2 cold, 1 skipped, 1 failed\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("output lacks %q:\n%s", line, got)
		}
	}
}

func TestDryRunShutdownCycle(t *testing.T) {
	e := newEnv(t, "default:\n  mode: cold\n", "a", "b")
	e.label("a", policy.LabelAfter, "b")
	e.label("b", policy.LabelAfter, "a")
	before := snapshot(t, e.st.Root)
	out, err := hook.DryRunShutdown(context.Background(), e.opts)
	if err == nil || !strings.Contains(err.Error(), "ordering cycle") || out.Cold != 2 {
		t.Errorf("outcome %s, err %v", out, err)
	}
	if !strings.Contains(e.out.String(), "would save in name order") {
		t.Errorf("output:\n%s", e.out)
	}
	e.unchanged(t, before)
}

func TestDryRunShutdownEngineFails(t *testing.T) {
	e := newEnv(t, "", "web")
	e.f.FailOn("Running", errors.New("engine gone"))
	if _, err := hook.DryRunShutdown(context.Background(), e.opts); err == nil || !strings.Contains(err.Error(), "engine gone") {
		t.Errorf("err = %v", err)
	}
}

// TestDryRunShutdownKeepsRecord: the record of an earlier shutdown is read,
// and said, not changed.
func TestDryRunShutdownKeepsRecord(t *testing.T) {
	e := newEnv(t, "default:\n  mode: cold\n", "web")
	_, err := hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	e.f.Run("db", "app:1")
	e.out.Reset()
	before := snapshot(t, e.st.Root)
	_, err = hook.DryRunShutdown(context.Background(), e.opts)
	must(t, err)
	e.unchanged(t, before)
	if !strings.Contains(e.out.String(), "the record of an earlier shutdown, not yet resumed, holds 1 containers") {
		t.Errorf("output:\n%s", e.out)
	}
}

func TestDryRunBoot(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n", "web", "db", "cache")
	e.label("db", policy.LabelMode, "cold")
	e.label("web", policy.LabelAfter, "db")

	// No record yet.
	before := snapshot(t, e.st.Root)
	out, err := hook.DryRunBoot(context.Background(), e.opts)
	must(t, err)
	if out != (hook.Outcome{}) || !strings.Contains(e.out.String(), "nothing recorded to resume (no shutdown record in ") {
		t.Errorf("outcome %s:\n%s", out, e.out)
	}
	e.unchanged(t, before)

	_, err = hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	must(t, e.f.ContainerStart(context.Background(), "cache", container.StartOptions{}))
	e.out.Reset()
	rec := e.record(t)
	before = snapshot(t, e.st.Root)
	e.f.Run("other", "app:1") // clears the engine's calls

	out, err = hook.DryRunBoot(context.Background(), e.opts)
	must(t, err)
	if out != (hook.Outcome{Hot: 1, Cold: 1, Skipped: 1}) {
		t.Errorf("outcome %s", out)
	}
	e.unchanged(t, before)
	if e.running(t, "web") || e.running(t, "db") {
		t.Error("the dry run resumed a container")
	}
	ckpt := map[string]string{}
	for _, s := range rec.Saved {
		ckpt[s.Name] = s.Checkpoint
	}
	got := e.out.String()
	for name, want := range map[string]string{
		"cache": "cache: step 1 of 2: already running: would be left alone",
		"db":    "db: step 1 of 2: would resume cold from " + ckpt["db"] + " (started fresh on its saved data)",
		"web":   "web: step 2 of 2: would resume hot from " + ckpt["web"] + " (on its data alone if its memory cannot be restored)",
	} {
		if ls := linesOf(got, name); len(ls) != 1 || ls[0] != want {
			t.Errorf("%s: got %q\nwant %q", name, ls, want)
		}
	}
	if !strings.Contains(got, "boot hook, dry run: 1 hot, 1 cold, 1 skipped, 0 failed\n") {
		t.Errorf("output:\n%s", got)
	}
	// The real boot still has everything to do.
	if r := e.record(t); r == nil || len(r.Saved) != 3 {
		t.Errorf("record after the dry run: %+v", r)
	}
}

// TestDryRunBootInterrupted: an interrupted save is said, not recovered.
func TestDryRunBootInterrupted(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n")
	e.f.Run("web", "app:1", "data:/data")
	e.killedSave("web", "VolumeInspect")
	e.f.Run("other", "app:1") // clears the engine's calls
	before := snapshot(t, e.st.Root)
	_, err := hook.DryRunBoot(context.Background(), e.opts)
	must(t, err)
	e.unchanged(t, before)
	for _, line := range []string{
		"web: an interrupted save: would be finished or undone first (and web resumed if its checkpoint was committed)",
		"boot hook, dry run: no shutdown record in ",
	} {
		if !strings.Contains(e.out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, e.out)
		}
	}
}

// TestDryRunBootNoStore: a store that does not exist is not created.
func TestDryRunBootNoStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	f := fake.New(t.TempDir())
	pol := policy.Default()
	var out strings.Builder
	_, err := hook.DryRunBoot(context.Background(), hook.Options{Store: &store.Store{Root: dir}, Engine: f, Policy: pol, Out: &out})
	must(t, err)
	if !strings.Contains(out.String(), "no shutdown record in "+dir) {
		t.Errorf("output:\n%s", out.String())
	}
	if m, _ := filepath.Glob(dir); len(m) > 0 {
		t.Errorf("the dry run created %s", dir)
	}
}
