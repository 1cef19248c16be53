package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/fault"
)

// faultCkpt runs the fault build of ckpt (internal/fault) with this test's
// store and env (fault.Env, "CKPT_FAULT_TRACE") added. It reports whether
// the run was killed by its fault point; any other failure fails the test.
func (e *env) faultCkpt(env []string, args ...string) (killed bool) {
	e.t.Helper()
	if _, err := os.Stat(ckptFaultBin); err != nil {
		e.t.Fatalf("no fault build of ckpt (go build -tags ckptfault ./cmd/ckpt): %v", err)
	}
	cmd := exec.Command(ckptFaultBin, args...)
	cmd.Env = e.environ(env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			e.t.Logf("ckpt %s, killed at its fault point:\n%s", strings.Join(args, " "), out)
			return true
		}
	}
	if err != nil {
		e.t.Fatalf("ckpt %s (fault build): %v\n%s", strings.Join(args, " "), err, out)
	}
	return false
}

// points runs the fault build once without killing it and returns the
// fault points the operation passed, in order, each once.
func (e *env) points(args ...string) []string {
	e.t.Helper()
	return e.tracePoints(nil, args...)
}

// tracePoints is points with env added to ckpt's environment.
func (e *env) tracePoints(env []string, args ...string) []string {
	e.t.Helper()
	trace := filepath.Join(e.t.TempDir(), "trace")
	if e.faultCkpt(append(env, "CKPT_FAULT_TRACE="+trace), args...) {
		e.t.Fatal("killed without a fault point set")
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		e.t.Fatal(err)
	}
	var pts []string
	for _, p := range strings.Fields(strings.ReplaceAll(string(b), " ", "_")) {
		if p = strings.ReplaceAll(p, "_", " "); !slices.Contains(pts, p) {
			pts = append(pts, p)
		}
	}
	if len(pts) < 5 {
		e.t.Fatalf("ckpt %s passed only the fault points %q", strings.Join(args, " "), pts)
	}
	return pts
}

// assertWhole checks a container after a killed ckpt and the run that
// recovered from it: running, unpaused, its memory kept (the same app),
// its restart policy as it was.
func (e *env) assertWhole(name string, before appState, policy container.RestartPolicyMode, at string) appState {
	e.t.Helper()
	c := e.inspect(name)
	if !c.State.Running || c.State.Paused {
		e.t.Fatalf("killed at %s: the container runs %v, paused %v", at, c.State.Running, c.State.Paused)
	}
	if got := c.HostConfig.RestartPolicy.Name; got != policy {
		e.t.Fatalf("killed at %s: restart policy %q, want %q", at, got, policy)
	}
	return e.assertContinues(name, before)
}

// SIGKILL at every phase of a save (each step, and between the checkpoint's
// files and its commit): the next ckpt run finds the save in its journal and
// finishes or undoes it. The container then runs with its memory and its
// restart policy, whether the save had committed (resume restores it) or
// not (the container was started again or unpaused), and no half
// checkpoint is ever resumed.
func TestKilledAtEverySavePhase(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	policy := container.RestartPolicyUnlessStopped
	e.startApp(name, appOpts{volume: vol, restart: policy})
	before := e.waitCounter(name, 2)
	pts := e.points("save", name)
	e.mustCkpt("resume", name)
	before = e.assertWhole(name, before, policy, "nothing")
	for _, at := range pts {
		if !e.faultCkpt([]string{fault.Env + "=" + at}, "save", name) {
			t.Fatalf("the save was not killed at %s", at)
		}
		r := e.ckpt("resume", name)
		switch {
		case r.code == 0:
			// It had committed: resumed from the checkpoint; or the
			// recovery started the container again from the images taken.
		case strings.Contains(r.stderr, "is running"):
			// It had not: the recovery started it again or unpaused it.
			if !strings.Contains(r.stderr, "interrupted") && at != "step:preflight" && at != "step:begin" && at != "step:journal" {
				t.Fatalf("killed at %s: the recovery said nothing:\n%s", at, r.stderr)
			}
		default:
			t.Fatalf("killed at %s: resume exit %d:\n%s%s", at, r.code, r.stdout, r.stderr)
		}
		before = e.assertWhole(name, before, policy, at)
	}
	// The store is usable: a save cleans up what was left unfinished.
	e.mustCkpt("save", name)
	if ls := e.mustCkpt("ls", name).stdout; strings.Contains(ls, "incomplete") {
		t.Fatalf("a save left the unfinished checkpoints:\n%s", ls)
	}
	e.mustCkpt("resume", name)
	e.assertWhole(name, before, policy, "the end")
}

// SIGKILL at every step of a resume into a removed container and volume:
// the next resume removes what the killed one had created (containers,
// networks, a half-filled volume) and resumes from the checkpoint again;
// or, killed after the container started, only puts its restart policy
// back.
func TestKilledAtEveryResumePhase(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	policy := container.RestartPolicyUnlessStopped
	e.startApp(name, appOpts{volume: vol, restart: policy})
	e.call(name, "POST", "/write?path=/data/kept.txt&data=kept")
	before := e.waitCounter(name, 2)
	saveAndRemove := func() {
		e.mustCkpt("save", name)
		removeContainer(t, name)
		e.removeHolder(name)
		must(t, docker.VolumeRemove(t.Context(), vol, true))
	}
	saveAndRemove()
	pts := e.points("resume", name)
	before = e.assertWhole(name, before, policy, "nothing")
	for _, at := range pts {
		saveAndRemove()
		if !e.faultCkpt([]string{fault.Env + "=" + at}, "resume", name) {
			t.Fatalf("the resume was not killed at %s", at)
		}
		r := e.ckpt("resume", name)
		if r.code != 0 && !strings.Contains(r.stderr, "is running") {
			t.Fatalf("killed at %s: the next resume exit %d:\n%s", at, r.code, r.stderr)
		}
		before = e.assertWhole(name, before, policy, at)
		if kept, _ := e.call(name, "GET", "/read?path=/data/kept.txt"); kept != "kept" {
			t.Fatalf("killed at %s: the volume holds %q, want the file written before the save", at, kept)
		}
	}
}

// SIGKILL while a checkpoint is imported or removed: never a checkpoint
// that looks whole and is not; the import or removal done again completes.
func TestKilledImportAndRemove(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	e.waitCounter(name, 2)
	e.mustCkpt("save", "--leave-running", name+":cp1")
	e.mustCkpt("save", "--leave-running", name+":cp2")
	archive := filepath.Join(t.TempDir(), "cp1.ckpt")
	e.mustCkpt("export", "-o", archive, name+":cp1")

	other := &env{t: t, store: t.TempDir()}
	if !other.faultCkpt([]string{fault.Env + "=store:commit"}, "import", archive) {
		t.Fatal("the import was not killed before its commit")
	}
	if ls := other.ckpt("ls", name); strings.Contains(ls.stdout, " complete") {
		t.Fatalf("a killed import left a checkpoint that looks whole:\n%s", ls.stdout)
	}
	other.mustCkpt("import", archive)
	if ls := other.mustCkpt("ls", name).stdout; !strings.Contains(ls, "cp1") || !strings.Contains(ls, "complete") {
		t.Fatalf("the import again did not complete:\n%s", ls)
	}

	if !e.faultCkpt([]string{fault.Env + "=store:remove"}, "rm", name+":cp1") {
		t.Fatal("the removal was not killed")
	}
	ls := e.mustCkpt("ls", name).stdout
	for _, l := range strings.Split(ls, "\n") {
		if strings.Contains(l, "cp1") && strings.Contains(l, " complete") {
			t.Fatalf("a killed removal left cp1 looking whole:\n%s", ls)
		}
	}
	if !strings.Contains(ls, "cp2") {
		t.Fatalf("a killed removal of cp1 lost cp2:\n%s", ls)
	}
	e.mustCkpt("save", "--leave-running", name) // cleans up what is unfinished
	if ls := e.mustCkpt("ls", name).stdout; strings.Contains(ls, "cp1") || strings.Contains(ls, "incomplete") {
		t.Fatalf("the killed removal's leftovers stayed:\n%s", ls)
	}
}

// removeHolder removes the network holder of a container, if it has one
// (engines that cannot restore in the container's own namespace).
func (e *env) removeHolder(name string) {
	docker.ContainerRemove(e.t.Context(), engine.HolderName(name), container.RemoveOptions{Force: true})
}

// SIGKILL at every phase of the shutdown hook (each step of the save it
// runs, after the record of a saved container, before the final record):
// the boot hook brings the container back with its memory and its restart
// policy, from the checkpoint when the save had recorded it, else by
// finishing or undoing the interrupted save.
func TestKilledShutdownHook(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	pol := e.writePolicy(fmt.Sprintf("default:\n  mode: skip\nrules:\n  - name: app\n    match: {names: [%q]}\n    mode: hot\n", name))
	policy := container.RestartPolicyUnlessStopped
	e.startApp(name, appOpts{restart: policy})
	before := e.waitCounter(name, 2)
	pts := e.points("hook", "run", "shutdown", "--policy", pol)
	e.mustCkpt("hook", "run", "boot", "--policy", pol)
	before = e.assertWhole(name, before, policy, "nothing")
	for _, at := range pts {
		if !e.faultCkpt([]string{fault.Env + "=" + at}, "hook", "run", "shutdown", "--policy", pol) {
			t.Fatalf("the shutdown hook was not killed at %s", at)
		}
		e.mustCkpt("hook", "run", "boot", "--policy", pol)
		before = e.assertWhole(name, before, policy, at)
	}
}
