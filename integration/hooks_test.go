package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/ckpt-dev/ckpt/internal/engine"
)

// startLabelled is startApp with labels and environment.
func (e *env) startLabelled(name string, o appOpts, labels map[string]string, envs ...string) {
	e.t.Helper()
	ctx := context.Background()
	cfg := &container.Config{
		Image: testImage, ExposedPorts: nat.PortSet{"8080/tcp": {}}, Labels: labels,
		Env:  append([]string{fmt.Sprintf("APP_ALLOC_MB=%d", o.allocMB)}, envs...),
		User: o.user,
	}
	hc := &container.HostConfig{
		PortBindings:  nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}},
		RestartPolicy: container.RestartPolicy{Name: o.restart},
	}
	if o.volume != "" {
		hc.Binds = []string{o.volume + ":/data"}
	}
	if o.host != nil {
		o.host(hc)
	}
	e.t.Cleanup(func() {
		docker.ContainerRemove(context.Background(), name, container.RemoveOptions{Force: true})
		docker.ContainerRemove(context.Background(), engine.HolderName(name), container.RemoveOptions{Force: true})
		if o.volume != "" {
			docker.VolumeRemove(context.Background(), o.volume, true)
		}
	})
	if _, err := docker.ContainerCreate(ctx, cfg, hc, nil, nil, name); err != nil {
		e.t.Fatal(err)
	}
	if err := docker.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.waitState(name)
}

func (e *env) writePolicy(text string) string {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.mustCkpt("policy", "check", path)
	return path
}

func wantLine(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starting %q in:\n%s", prefix, out)
	return ""
}

// A simulated reboot: the shutdown hook saves hot, cold and skip containers
// chosen by the policy file and by labels; the engine stops completely and
// starts again; the boot hook brings back what was saved, dependencies
// first.
func TestHooksSimulatedReboot(t *testing.T) {
	e := newEnv(t)
	prefix := e.name("")
	dep, app, cold, skip := prefix+"dep", prefix+"app", prefix+"cold", prefix+"skip"
	depVol, coldVol := prefix+"depdata", prefix+"colddata"
	pol := e.writePolicy(fmt.Sprintf(`# test policy
deadline: 2m
parallel: 2
default:
  mode: skip          # containers of other tests, if any, are left alone
rules:
  - name: deps
    match: {names: ["%s"]}
    mode: hot
  - name: colds
    match: {names: ["%s"]}
    mode: cold
  - name: labelled
    match:
      labels: {io.ckpt.test: ""}
    mode: cold        # the app's io.ckpt.mode=hot label wins
`, dep, cold))

	e.startLabelled(dep, appOpts{volume: depVol}, nil)
	e.startLabelled(app, appOpts{restart: container.RestartPolicyUnlessStopped},
		map[string]string{"io.ckpt.test": "1", "io.ckpt.mode": "hot", "io.ckpt.after": dep})
	e.startLabelled(cold, appOpts{volume: coldVol, restart: container.RestartPolicyAlways}, nil)
	e.startLabelled(skip, appOpts{restart: container.RestartPolicyAlways}, map[string]string{"io.ckpt.mode": "skip"})
	depBefore, appBefore := e.waitCounter(dep, 10), e.waitCounter(app, 10)
	coldBefore := e.waitCounter(cold, 12)
	e.call(cold, "POST", "/write?path=/var/cold.txt&data=kept")
	coldHistory, _ := e.call(cold, "GET", "/read?path=/data/history.log")

	r := e.mustCkpt("hook", "run", "shutdown", "--policy", pol)
	wantLine(t, r.stdout, dep+": saved hot in ")
	if l := wantLine(t, r.stdout, app+": saved hot in "); !strings.Contains(l, "label io.ckpt.mode=hot") {
		t.Errorf("the label did not decide: %s", l)
	}
	if l := wantLine(t, r.stdout, cold+": saved cold in "); !strings.Contains(l, `rule "colds" at line 10`) {
		t.Errorf("the rule did not decide: %s", l)
	}
	wantLine(t, r.stdout, skip+": skipped (label io.ckpt.mode=skip)")
	wantLine(t, r.stdout, "shutdown hook: 2 hot, 1 cold, 1 skipped, 0 failed in ")
	// Dependents are saved first: the app before its dependency.
	if strings.Index(r.stdout, app+": saved") > strings.Index(r.stdout, dep+": saved") {
		t.Errorf("%s was saved before its dependent %s:\n%s", dep, app, r.stdout)
	}

	// A second shutdown hook before the boot (vagrant halt runs one, the
	// guest's systemd unit another) finds nothing new and forgets nothing.
	r = e.mustCkpt("hook", "run", "shutdown", "--policy", pol)
	wantLine(t, r.stdout, "shutdown hook: 0 hot, 0 cold, 1 skipped, 0 failed in ")

	restartEngine(t)
	// restart=always: the engine restarts what ckpt left alone. Once it has,
	// it would have restarted the saved containers too, had ckpt not held
	// their policies.
	e.waitState(skip)
	for _, n := range []string{dep, app, cold} {
		if c := e.inspect(n); c.State.Running {
			t.Fatalf("%s runs after the engine restart: the engine restarted a saved container", n)
		}
	}

	r = e.mustCkpt("hook", "run", "boot", "--policy", pol)
	wantLine(t, r.stdout, dep+": resumed hot in ")
	wantLine(t, r.stdout, app+": resumed hot in ")
	wantLine(t, r.stdout, cold+": resumed cold in ")
	wantLine(t, r.stdout, "boot hook: 2 hot, 1 cold, 0 skipped, 0 failed in ")
	if strings.Contains(r.stdout, skip) {
		t.Errorf("the boot hook touched %s:\n%s", skip, r.stdout)
	}

	e.assertContinues(dep, depBefore)
	e.assertContinues(app, appBefore)
	if s := e.waitState(cold); s.ID == coldBefore.ID {
		t.Error("the cold container kept its memory: it was not saved cold")
	}
	if got, _ := e.call(cold, "GET", "/read?path=/var/cold.txt"); got != "kept" {
		t.Errorf("cold container lost its writable layer: %q", got)
	}
	if got, _ := e.call(cold, "GET", "/read?path=/data/history.log"); !strings.HasPrefix(got, coldHistory) {
		t.Errorf("cold container lost its volume data")
	}
	for n, want := range map[string]container.RestartPolicyMode{app: container.RestartPolicyUnlessStopped, cold: container.RestartPolicyAlways, skip: container.RestartPolicyAlways} {
		if got := e.inspect(n).HostConfig.RestartPolicy.Name; got != want {
			t.Errorf("%s: restart policy %q after boot, want %q", n, got, want)
		}
	}
	depStart, appStart := e.inspect(dep).State.StartedAt, e.inspect(app).State.StartedAt
	if depStart >= appStart {
		t.Errorf("the dependency started at %s, after its dependent at %s", depStart, appStart)
	}
	if ls := e.mustCkpt("ls").stdout; strings.Contains(ls, skip) {
		t.Errorf("the skipped container has a checkpoint:\n%s", ls)
	}
	// The record is used once.
	r = e.mustCkpt("hook", "run", "boot", "--policy", pol)
	wantLine(t, r.stdout, "boot hook: nothing to resume")
}

// A hot save that CRIU refuses (the app listens with Multipath TCP, which
// CRIU cannot dump) falls back to cold, so the data is kept; with
// on_failure: fail the container is reported and left running.
func TestHookColdFallback(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("mptcp"), e.name("data")
	e.startLabelled(name, appOpts{volume: vol}, nil, "GODEBUG=multipathtcp=1")
	before := e.waitCounter(name, 12)
	history, _ := e.call(name, "GET", "/read?path=/data/history.log")

	failPol := e.writePolicy(fmt.Sprintf("default: {mode: skip}\nrules:\n  - match: {names: [%q]}\n    mode: hot\n    on_failure: fail\n", name))
	r := e.ckpt("hook", "run", "shutdown", "--policy", failPol)
	if r.code != 1 {
		t.Fatalf("on_failure: fail: exit %d", r.code)
	}
	if l := wantLine(t, r.stdout, name+": failed hot save after "); !strings.Contains(l, "the engine could not checkpoint") {
		t.Errorf("line: %s", l)
	}
	if s := e.waitState(name); s.ID != before.ID {
		t.Fatal("a failed hot save disturbed the container")
	}

	pol := e.writePolicy(fmt.Sprintf("default: {mode: skip}\nrules:\n  - match: {names: [%q]}\n    mode: hot\n", name))
	r = e.mustCkpt("hook", "run", "shutdown", "--policy", pol)
	if l := wantLine(t, r.stdout, name+": saved cold in "); !strings.Contains(l, "hot save failed: the engine could not checkpoint") {
		t.Errorf("line: %s", l)
	}
	removeContainer(t, name)
	r = e.mustCkpt("hook", "run", "boot", "--policy", pol)
	wantLine(t, r.stdout, name+": resumed cold in ")
	e.waitState(name) // a cold start: wait until the app listens
	if got, _ := e.call(name, "GET", "/read?path=/data/history.log"); !strings.HasPrefix(got, history) {
		t.Errorf("volume data lost")
	}
}

// A wrong policy file makes the hook do nothing, loudly.
func TestHookBadPolicy(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	path := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(path, []byte("deadline: 90s\nrules:\n  - match: {names: [\"[\"]}\n    mode: warm\n"), 0o600)
	r := e.ckpt("hook", "run", "shutdown", "--policy", path)
	want := "ckpt: error: " + path + ":3: bad glob \"[\" in names\n" + path + ":4: mode \"warm\": want hot, cold or skip\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Fatalf("exit %d\nstderr %q\nwant   %q", r.code, r.stderr, want)
	}
	if !e.inspect(name).State.Running {
		t.Fatal("the container was touched")
	}
}

// When the deadline is nearer than a hot save's timeout, the container is
// saved cold: quick, and its data is kept.
func TestHookDeadlineNear(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	e.waitCounter(name, 2)
	pol := e.writePolicy(fmt.Sprintf("deadline: 5s\ndefault: {mode: skip}\nrules:\n  - match: {names: [%q]}\n    mode: hot\n    timeout: 1m\n", name))
	r := e.mustCkpt("hook", "run", "shutdown", "--policy", pol)
	if l := wantLine(t, r.stdout, name+": saved cold in "); !strings.Contains(l, "the deadline is ") || !strings.Contains(l, "s away, less than its timeout 1m0s") {
		t.Errorf("line: %s", l)
	}
	r = e.mustCkpt("hook", "run", "boot", "--policy", pol)
	wantLine(t, r.stdout, name+": resumed cold in ")
	e.waitState(name)
}

// The dry runs of the hooks say what the hooks would do, in order, and
// change nothing: no save, no record, no restart policy. The real hooks
// then do what the dry runs said.
func TestHookDryRun(t *testing.T) {
	e := newEnv(t)
	prefix := e.name("")
	dep, app, cold, skip := prefix+"dep", prefix+"app", prefix+"cold", prefix+"skip"
	pol := e.writePolicy(fmt.Sprintf(`deadline: 2m
parallel: 2
default:
  mode: skip          # containers of other tests, if any, are left alone
rules:
  - name: deps
    match: {names: ["%s"]}
    mode: hot
  - name: colds
    match: {names: ["%s"]}
    mode: cold
    timeout: 45s
  - name: labelled
    match:
      labels: {io.ckpt.test: ""}
    mode: cold        # the app's io.ckpt.mode=hot label wins
`, dep, cold))
	e.startLabelled(dep, appOpts{restart: container.RestartPolicyAlways}, nil)
	e.startLabelled(app, appOpts{restart: container.RestartPolicyUnlessStopped},
		map[string]string{"io.ckpt.test": "1", "io.ckpt.mode": "hot", "io.ckpt.after": dep})
	e.startLabelled(cold, appOpts{}, nil)
	e.startLabelled(skip, appOpts{restart: container.RestartPolicyAlways}, map[string]string{"io.ckpt.mode": "skip"})
	before := map[string]*container.InspectResponse{}
	for _, n := range []string{dep, app, cold, skip} {
		before[n] = e.inspect(n)
	}

	r := e.mustCkpt("hook", "run", "shutdown", "--dry-run", "--policy", pol)
	wantLine(t, r.stdout, "shutdown hook, dry run: nothing is saved, recorded or changed")
	wantLine(t, r.stdout, "deadline 2m0s, 2 saves at a time, dependents first: 3 of ")
	// app depends on dep: it is saved alone, first.
	for prefix, want := range map[string]string{
		app + ": ":  "step 1 of 2: would save hot (label io.ckpt.mode=hot); timeout 1m0s: hot if its save starts within 1m0s of the hook's start, cold after; a failed hot save is redone cold",
		dep + ": ":  `step 2 of 2: would save hot (rule "deps" at line 6); timeout 1m0s: hot if its save starts within 1m0s of the hook's start, cold after; a failed hot save is redone cold`,
		cold + ": ": `step 2 of 2: would save cold (rule "colds" at line 9); timeout 45s`,
		skip + ": ": "would skip (label io.ckpt.mode=skip)",
	} {
		if l := wantLine(t, r.stdout, prefix); l != prefix+want {
			t.Errorf("got  %s\nwant %s", l, prefix+want)
		}
	}
	if strings.Index(r.stdout, app+": step") > strings.Index(r.stdout, dep+": step") {
		t.Errorf("the dry run saves %s before its dependent %s:\n%s", dep, app, r.stdout)
	}
	wantLine(t, r.stdout, "shutdown hook, dry run: 2 hot, 1 cold, ")
	for n, was := range before {
		now := e.inspect(n)
		if !now.State.Running || now.ID != was.ID || now.State.StartedAt != was.State.StartedAt {
			t.Errorf("%s was stopped or restarted by the dry run", n)
		}
		if now.HostConfig.RestartPolicy != was.HostConfig.RestartPolicy {
			t.Errorf("%s: restart policy %v, was %v", n, now.HostConfig.RestartPolicy, was.HostConfig.RestartPolicy)
		}
	}
	if ls := e.mustCkpt("ls").stdout; strings.Contains(ls, prefix) {
		t.Errorf("the dry run saved a checkpoint:\n%s", ls)
	}
	r = e.mustCkpt("hook", "run", "boot", "--dry-run", "--policy", pol)
	wantLine(t, r.stdout, "boot hook, dry run: nothing recorded to resume (no shutdown record in ")

	r = e.mustCkpt("hook", "run", "shutdown", "--policy", pol)
	wantLine(t, r.stdout, "shutdown hook: 2 hot, 1 cold, ")

	// The boot dry run: dependencies first, and nothing resumed.
	r = e.mustCkpt("hook", "run", "boot", "--dry-run", "--policy", pol)
	wantLine(t, r.stdout, "3 containers saved at ")
	wantLine(t, r.stdout, dep+": step 1 of 2: would resume hot from ")
	wantLine(t, r.stdout, cold+": step 1 of 2: would resume cold from ")
	wantLine(t, r.stdout, app+": step 2 of 2: would resume hot from ")
	wantLine(t, r.stdout, "boot hook, dry run: 2 hot, 1 cold, 0 skipped, 0 failed")
	for _, n := range []string{dep, app, cold} {
		if c := e.inspect(n); c.State.Running {
			t.Errorf("%s runs after the boot dry run", n)
		}
	}

	r = e.mustCkpt("hook", "run", "boot", "--policy", pol)
	wantLine(t, r.stdout, "boot hook: 2 hot, 1 cold, 0 skipped, 0 failed")
	e.waitState(cold)
	for _, n := range []string{dep, app} {
		if c := e.inspect(n); !c.State.Running {
			t.Errorf("%s is not running after the boot hook", n)
		}
	}
}
