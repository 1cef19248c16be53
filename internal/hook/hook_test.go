package hook_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/engine/fake"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hook"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/policy"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// env is a host with containers on a fake engine, a store and a policy
// (parsed from YAML, as the hooks get it).
type env struct {
	f    *fake.Engine
	st   *store.Store
	out  *bytes.Buffer
	opts hook.Options
}

func newEnv(t *testing.T, policyYAML string, containers ...string) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"))
	must(t, err)
	f := fake.New(filepath.Join(dir, "engine"))
	for _, c := range containers {
		f.Run(c, "app:1")
	}
	pol, err := policy.Parse([]byte(policyYAML), "policy.yaml")
	must(t, err)
	out := &bytes.Buffer{}
	return &env{f: f, st: st, out: out,
		opts: hook.Options{Store: st, Engine: f, Host: fake.NewHost().Preflight(), Policy: pol, Out: out}}
}

func (e *env) label(name, key, value string) {
	e.f.Update(name, func(c *container.InspectResponse) { c.Config.Labels[key] = value })
}

func (e *env) running(t *testing.T, name string) bool {
	t.Helper()
	c, err := e.f.Lookup(context.Background(), name)
	must(t, err)
	return c != nil && c.State.Running
}

func (e *env) record(t *testing.T) *format.ShutdownRecordDoc {
	t.Helper()
	rec, err := e.st.ReadShutdownRecord()
	must(t, err)
	return rec
}

func TestShutdownModes(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n", "web", "db", "cache", "tmp")
	e.label("db", policy.LabelMode, "cold")
	e.label("tmp", policy.LabelMode, "skip")
	e.label("cache", policy.LabelMode, "warm") // not a mode: left running
	e.label("web", policy.LabelAfter, "db")
	out, err := hook.Shutdown(context.Background(), e.opts)
	if err == nil || !strings.Contains(err.Error(), "1 of 4 containers failed") {
		t.Errorf("err = %v", err)
	}
	if out != (hook.Outcome{Hot: 1, Cold: 1, Skipped: 1, Failed: 1}) {
		t.Errorf("outcome %s", out)
	}
	for name, want := range map[string]bool{"web": false, "db": false, "tmp": true, "cache": true} {
		if e.running(t, name) != want {
			t.Errorf("%s running = %v, want %v", name, !want, want)
		}
	}
	rec := e.record(t)
	var saved []string
	for _, s := range rec.Saved {
		saved = append(saved, s.Name+":"+string(s.Mode))
	}
	// web depends on db: web is saved first, db after it.
	if !slices.Equal(saved, []string{"web:hot", "db:cold"}) {
		t.Errorf("record %q", saved)
	}
	for _, line := range []string{"tmp: skipped", "cache: failed", "web: saved hot", "db: saved cold", "shutdown hook: 1 hot, 1 cold, 1 skipped, 1 failed"} {
		if !strings.Contains(e.out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, e.out)
		}
	}
}

// TestShutdownDeadline: a hot save that could not finish before the
// deadline is taken cold.
func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t, "deadline: 10s\ndefault:\n  mode: hot\n  timeout: 1m\n", "web")
	out, err := hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	if out.Cold != 1 || out.Hot != 0 {
		t.Errorf("outcome %s", out)
	}
	if !strings.Contains(e.out.String(), "less than its timeout") {
		t.Errorf("output:\n%s", e.out)
	}
}

func TestShutdownFallback(t *testing.T) {
	for _, tt := range []struct {
		onFailure string
		want      hook.Outcome
		line      string
	}{
		{"cold", hook.Outcome{Cold: 1}, "hot save failed: the engine could not checkpoint web"},
		{"fail", hook.Outcome{Failed: 1}, "web: failed hot save"},
	} {
		t.Run(tt.onFailure, func(t *testing.T) {
			e := newEnv(t, "default:\n  mode: hot\n  on_failure: "+tt.onFailure+"\n", "web")
			e.f.FailOn("CheckpointCreate", errors.New("criu failed"))
			out, _ := hook.Shutdown(context.Background(), e.opts)
			if out != tt.want {
				t.Errorf("outcome %s, want %s", out, tt.want)
			}
			if !strings.Contains(e.out.String(), tt.line) {
				t.Errorf("output lacks %q:\n%s", tt.line, e.out)
			}
		})
	}
}

// TestShutdownKeepsUnusedRecord: a second shutdown before a boot keeps what
// the first saved.
func TestShutdownKeepsUnusedRecord(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n", "web")
	_, err := hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	e.f.Run("db", "app:1")
	_, err = hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	var names []string
	for _, s := range e.record(t).Saved {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"db", "web"}) {
		t.Errorf("record holds %q", names)
	}
}

func TestShutdownEngineFails(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n", "web")
	e.f.FailOn("Running", errors.New("engine gone"))
	if _, err := hook.Shutdown(context.Background(), e.opts); err == nil || !strings.Contains(err.Error(), "engine gone") {
		t.Errorf("err = %v", err)
	}
	if e.record(t) != nil {
		t.Error("a record was written though nothing was saved")
	}
}

func TestShutdownCycle(t *testing.T) {
	e := newEnv(t, "default:\n  mode: cold\n", "a", "b")
	e.label("a", policy.LabelAfter, "b")
	e.label("b", policy.LabelAfter, "a")
	out, err := hook.Shutdown(context.Background(), e.opts)
	if err == nil || out.Cold != 2 {
		t.Errorf("outcome %s, err %v: a cycle is reported and both are saved", out, err)
	}
	if !strings.Contains(e.out.String(), "saving in name order") {
		t.Errorf("output:\n%s", e.out)
	}
}

func TestBoot(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n", "web", "db", "cache")
	e.label("db", policy.LabelMode, "cold")
	e.label("web", policy.LabelAfter, "db")
	_, err := hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	// cache is started by hand before the boot hook runs.
	must(t, e.f.ContainerStart(context.Background(), "cache", container.StartOptions{}))
	e.out.Reset()
	var order []string
	e.f.Before("StartFromCheckpoint", func() { order = append(order, "hot") })
	e.f.Before("ContainerStart", func() { order = append(order, "cold") })
	out, err := hook.Boot(context.Background(), e.opts)
	must(t, err)
	// cache, found running, is left alone: skipped.
	if out != (hook.Outcome{Hot: 1, Cold: 1, Skipped: 1}) {
		t.Errorf("outcome %s", out)
	}
	// db (cold) before web (hot), which comes after it.
	if !slices.Equal(order, []string{"cold", "hot"}) {
		t.Errorf("starts %q, want db before web", order)
	}
	for _, name := range []string{"web", "db", "cache"} {
		if !e.running(t, name) {
			t.Errorf("%s not running after boot", name)
		}
	}
	for _, line := range []string{"cache: already running, left alone", "db: resumed cold", "web: resumed hot"} {
		if !strings.Contains(e.out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, e.out)
		}
	}
	// The record is used: a second boot has nothing to do.
	e.out.Reset()
	_, err = hook.Boot(context.Background(), e.opts)
	must(t, err)
	if !strings.Contains(e.out.String(), "nothing to resume") {
		t.Errorf("second boot:\n%s", e.out)
	}
}

func TestBootFailures(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n", "web", "db")
	_, err := hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	e.f.FailOn("StartFromCheckpoint", errors.New("criu failed"), nil)
	e.f.FailOn("ContainerStart", errors.New("no start"))
	out, err := hook.Boot(context.Background(), e.opts)
	if err == nil || out.Failed != 1 || out.Hot != 1 {
		t.Errorf("outcome %s, err %v", out, err)
	}
	if !strings.Contains(e.out.String(), "failed to resume") {
		t.Errorf("output:\n%s", e.out)
	}
}

func TestBootFallbackLine(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n", "web")
	_, err := hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	e.f.FailOn("StartFromCheckpoint", errors.New("criu failed"))
	out, err := hook.Boot(context.Background(), e.opts)
	must(t, err)
	if out.Cold != 1 || !strings.Contains(e.out.String(), "memory NOT restored: criu failed") {
		t.Errorf("outcome %s:\n%s", out, e.out)
	}
}

// TestShutdownRecordsAsItGoes: each container is in the record as soon as
// it is saved, so a shutdown cut short (a hung call, SIGKILL, systemd's
// forced power-off) keeps what it saved.
func TestShutdownRecordsAsItGoes(t *testing.T) {
	e := newEnv(t, "parallel: 1\ndefault:\n  mode: hot\n", "a", "b")
	var during []string
	calls := 0
	e.f.Before("CheckpointCreate", func() {
		if calls++; calls == 2 {
			for _, s := range e.record(t).Saved {
				during = append(during, s.Name)
			}
		}
	})
	_, err := hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	if len(during) != 1 {
		t.Errorf("while the second container was saved, the record held %q, want the first", during)
	}
}

// TestBootRetriesFailures: a container that fails to resume stays in the
// record, and the next boot resumes it.
func TestBootRetriesFailures(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n", "web", "db")
	e.label("web", policy.LabelAfter, "db")
	_, err := hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	// db comes first: its restore fails, and so does its start on its data.
	e.f.FailOn("StartFromCheckpoint", errors.New("criu failed"))
	e.f.FailOn("ContainerStart", errors.New("no start"))
	out, err := hook.Boot(context.Background(), e.opts)
	if err == nil || out.Failed != 1 || out.Hot != 1 {
		t.Fatalf("first boot: %s, %v", out, err)
	}
	rec := e.record(t)
	if rec == nil || len(rec.Saved) != 1 || rec.Saved[0].Name != "db" {
		t.Fatalf("record after the first boot: %+v, want db only", rec)
	}
	if !strings.Contains(e.out.String(), "the next boot tries them again") {
		t.Errorf("output:\n%s", e.out)
	}
	out, err = hook.Boot(context.Background(), e.opts)
	must(t, err)
	if out != (hook.Outcome{Hot: 1}) || !e.running(t, "db") {
		t.Errorf("second boot: %s, db running %v", out, e.running(t, "db"))
	}
	if e.record(t) != nil {
		t.Error("the record is still there after every container resumed")
	}
}

// TestShutdownUnreadableRecord: a record that cannot be read is kept
// aside, not silently overwritten.
func TestShutdownUnreadableRecord(t *testing.T) {
	e := newEnv(t, "default:\n  mode: cold\n", "web")
	dir := filepath.Join(e.st.Root, format.HooksDir)
	must(t, os.MkdirAll(dir, 0o700))
	must(t, os.WriteFile(filepath.Join(dir, format.ShutdownRecord), []byte("{not json"), 0o600))
	_, err := hook.Shutdown(context.Background(), e.opts)
	must(t, err)
	if !strings.Contains(e.out.String(), "the previous shutdown record cannot be read") {
		t.Errorf("output:\n%s", e.out)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, format.ShutdownRecord+".unreadable-*"))
	if len(aside) != 1 {
		t.Errorf("set aside: %q", aside)
	}
	if rec := e.record(t); rec == nil || len(rec.Saved) != 1 {
		t.Errorf("new record %+v", rec)
	}
}

// killedSave runs a save of container name that dies, as under SIGKILL,
// when the engine is called for method: nothing after that runs, no undo.
func (e *env) killedSave(name, method string) {
	e.f.Before(method, runtime.Goexit)
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkpoint.SaveContainer(context.Background(), checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host}, name)
	}()
	<-done
	e.f.Before(method, nil)
}

// TestBootRecoversKilledSave: the boot hook finishes or undoes a save that
// a power cut killed, though no record names its container.
func TestBootRecoversKilledSave(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n")
	e.f.Run("web", "app:1", "data:/data")
	e.f.Update("web", func(c *container.InspectResponse) {
		c.HostConfig.RestartPolicy = container.RestartPolicy{Name: "always"}
	})
	e.killedSave("web", "VolumeInspect") // the save dies after the checkpoint stopped web
	if e.running(t, "web") {
		t.Fatal("the killed save left web running")
	}
	_, err := hook.Boot(context.Background(), e.opts)
	must(t, err)
	if !e.running(t, "web") || !strings.Contains(e.out.String(), "web: a save of web was interrupted") {
		t.Errorf("web running %v; output:\n%s", e.running(t, "web"), e.out)
	}
}

// TestBootResumesCommittedSave: a shutdown hook killed after a save
// committed its checkpoint but before it recorded the save: the boot hook
// finishes the save and resumes the container from that checkpoint.
func TestBootResumesCommittedSave(t *testing.T) {
	e := newEnv(t, "default:\n  mode: hot\n")
	e.f.Info.ServerVersion = "28.5.2" // paused, checkpointed, killed after the commit
	id := e.f.Run("web", "app:1", "data:/data")
	e.f.Update("web", func(c *container.InspectResponse) {
		c.HostConfig.RestartPolicy = container.RestartPolicy{Name: "always"}
	})
	e.killedSave("web", "ContainerKill")
	if rec, err := e.st.ReadShutdownRecord(); err != nil || rec != nil {
		t.Fatalf("a shutdown record %+v, %v", rec, err)
	}
	out, err := hook.Boot(context.Background(), e.opts)
	must(t, err)
	if !e.running(t, "web") || out.Hot != 1 || !strings.Contains(e.out.String(), "stopped it as the save would have") ||
		!strings.Contains(e.out.String(), "web: resumed hot") {
		t.Errorf("web running %v, outcome %+v; output:\n%s", e.running(t, "web"), out, e.out)
	}
	// This engine resumes into a recreated container, in a network holder.
	c, err := e.f.Lookup(context.Background(), "web")
	must(t, err)
	if c.ID == id || e.f.RestoredFrom(c.ID) == "" {
		t.Errorf("web (id %s, was %s) was not restored from its checkpoint", c.ID, id)
	}
}
