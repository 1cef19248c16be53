package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func wantExit(t *testing.T, r result, code int, stderr string) {
	t.Helper()
	if r.code != code || r.stderr != stderr {
		t.Fatalf("got exit %d, stderr:\n%s\nwant exit %d, stderr:\n%s", r.code, r.stderr, code, stderr)
	}
}

func TestUnknownContainer(t *testing.T) {
	e := newEnv(t)
	wantExit(t, e.ckpt("save", "ckpt-it-nope"), 1,
		"ckpt: error: no such container: ckpt-it-nope\nckpt: hint: docker ps -a lists containers, ckpt ls lists saved ones\n")
	wantExit(t, e.ckpt("resume", "ckpt-it-nope"), 1,
		"ckpt: error: no checkpoint for container ckpt-it-nope in "+e.store+"\nckpt: hint: save one first with ckpt save ckpt-it-nope; ckpt ls lists the checkpoints in the store\n")
	wantExit(t, e.ckpt("save"), 2, "ckpt: error: save needs a container name (or --all, or --project)\nckpt: hint: see ckpt save --help\n")
	wantExit(t, e.ckpt("save", "--all", "x"), 2, "ckpt: error: give container names, --all or --project, only one of them\nckpt: hint: see ckpt save --help\n")
	if r := e.ckpt("save", "--bogus", "x"); r.code != 2 || !strings.HasPrefix(r.stderr, "ckpt: error: flag provided but not defined: -bogus\n") {
		t.Fatalf("unknown flag: exit %d, %q", r.code, r.stderr)
	}
}

// A manifest changed by one byte is refused and nothing starts.
func TestCorruptManifest(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	e.waitCounter(name, 2)
	e.mustCkpt("save", name)
	path := checkpointFile(t, e.store, name, "manifest.json")
	flipByte(t, path, 40)
	ck := filepath.Base(filepath.Dir(path))
	damaged := "ckpt: error: checkpoint " + name + ":" + ck + " is damaged: manifest.json: sha256 mismatch\n" +
		"ckpt: hint: nothing was changed; resume another checkpoint with ckpt resume " + name + ":NAME (ckpt ls " + name + " lists them), or remove this one with ckpt rm " + name + ":" + ck + "\n"
	wantExit(t, e.ckpt("resume", name), 1, damaged)
	wantExit(t, e.ckpt("resume", name+":"+ck), 1, damaged)
	if ls := e.mustCkpt("ls", name).stdout; !strings.Contains(ls, "damaged") {
		t.Fatalf("ls does not show the damage:\n%s", ls)
	}
	if c := e.inspect(name); c.State.Running {
		t.Fatal("the container was started")
	}
}

// One flipped byte in a memory image: refused before anything is created or
// started, and the checkpoint stays as it is.
func TestFlippedByteInMemoryImage(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol})
	e.waitCounter(name, 2)
	e.mustCkpt("save", name)
	ck := filepath.Base(filepath.Dir(checkpointFile(t, e.store, name, "manifest.json")))
	// The memory images are in chunks: the byte flipped is in one of them.
	path, at, chunk := storedByte(t, e.store, name, "criu/pages-1.img", 4096+17)
	if chunk < 0 {
		t.Fatal("the memory images are not in chunks")
	}
	flipByte(t, path, at)
	removeContainer(t, name)
	if err := docker.VolumeRemove(context.Background(), vol, false); err != nil {
		t.Fatal(err)
	}
	wantExit(t, e.ckpt("resume", name), 1,
		fmt.Sprintf("ckpt: error: checkpoint %s:%s is damaged: criu/pages-1.img: chunk %d (%s): sha256 mismatch\n", name, ck, chunk, filepath.Base(path)[:12])+
			"ckpt: hint: nothing was started or changed; resume an older checkpoint with ckpt resume "+name+":NAME (ckpt ls "+name+" lists them), or remove this one with ckpt rm "+name+":"+ck+"\n")
	if c := e.inspect(name); c != nil {
		t.Fatalf("a container %s was created (%s)", name, c.State.Status)
	}
	if _, err := docker.VolumeInspect(context.Background(), vol); err == nil {
		t.Fatal("the volume was recreated")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the checkpoint was touched: %v", err)
	}
}

// Two saves of one container at once: the second is refused, naming the
// first; the first completes.
func TestConcurrentSaves(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{allocMB: bigMB()}) // a save that takes seconds
	e.waitCounter(name, 2)

	first := exec.Command(ckptBin, "save", "-q", name)
	first.Env = e.environ()
	var out1 strings.Builder
	first.Stdout, first.Stderr = &out1, &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(e.store, "containers", name, "lock")
	for deadline := time.Now().Add(patience(20 * time.Second)); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(lock); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first save never took the lock")
		}
	}
	r := e.ckpt("save", name)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "ckpt: error: container "+name+" is busy: ckpt save (pid ") ||
		!strings.HasSuffix(r.stderr, "ckpt: hint: wait until it finishes and try again\n") {
		t.Fatalf("second save: exit %d, %q", r.code, r.stderr)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first save: %v\n%s", err, out1.String())
	}
	if ls := e.mustCkpt("ls", name).stdout; strings.Count(ls, "complete") != 1 {
		t.Fatalf("ls:\n%s", ls)
	}
}

// SIGINT during a save: ckpt cleans up, the container runs again with its
// memory, and no checkpoint looks complete.
func TestInterruptedSave(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) { interruptSave(t, sig) })
	}
}

// interruptSave sends sig to a save once the engine has started
// checkpointing: the container continues from the checkpoint just taken,
// and no checkpoint is left.
func interruptSave(t *testing.T, sig syscall.Signal) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{allocMB: bigMB()})
	before := e.waitCounter(name, 2)
	var out strings.Builder
	cmd := e.saveUntilCheckpointing(name, &out)
	cmd.Process.Signal(sig)
	err := cmd.Wait()
	t.Logf("interrupted save: %v\n%s", err, out.String())
	if err == nil {
		t.Fatal("an interrupted save exited 0")
	}
	if !strings.Contains(out.String(), "ckpt: "+sig.String()+": cleaning up") || !strings.Contains(out.String(), "(memory kept)") {
		t.Fatalf("output:\n%s", out.String())
	}
	e.assertContinues(name, before)
	if ls := e.mustCkpt("ls", name).stdout; strings.Contains(ls, "complete") || strings.Contains(ls, "incomplete") {
		t.Fatalf("the interrupted save left a checkpoint:\n%s", ls)
	}
}

// saveUntilCheckpointing starts ckpt save name, its output to out, and
// returns once the engine has started writing the checkpoint.
func (e *env) saveUntilCheckpointing(name string, out *strings.Builder) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(ckptBin, "save", name)
	cmd.Env = e.environ()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	for deadline := time.Now().Add(patience(20 * time.Second)); ; time.Sleep(10 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(e.store, "containers", name, "checkpoints", ".tmp-*", "criu")); len(m) > 0 {
			return cmd
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			e.t.Fatal("the save never started checkpointing")
		}
	}
}

// ckpt save web | head: the reader goes away; the save is not killed
// halfway, it completes, and the container resumes from it.
func TestSaveReaderGone(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	before := e.waitCounter(name, 2)
	cmd := exec.Command(ckptBin, "save", name)
	cmd.Env = e.environ()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader is gone before the first line
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = w, &stderr
	err = cmd.Run()
	w.Close()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("ckpt was killed by %v\n%s", ws.Signal(), stderr.String())
	}
	t.Logf("save with its reader gone: %v\n%s", err, stderr.String())
	if ls := e.mustCkpt("ls", name).stdout; !strings.Contains(ls, "complete") {
		t.Fatalf("no complete checkpoint:\n%s", ls)
	}
	e.mustCkpt("resume", name)
	e.assertContinues(name, before)
}

// When CRIU cannot restore (a file the process holds open changed size),
// resume starts the container normally, says so and exits 3; with
// --require-memory it fails, leaves the container stopped and the
// checkpoint intact.
func TestRestoreFailureFallback(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	before := e.waitCounter(name, 2)
	e.mustCkpt("save", name)
	upper := e.inspect(name).GraphDriver.Data["UpperDir"]
	f, err := os.OpenFile(filepath.Join(upper, "tmp/held.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("changed behind the process's back\n")
	f.Close()
	if runtimeEngine(t) {
		// There the container is recreated with ckpt's runtime, with the
		// writable layer of the checkpoint: the change is gone, and the
		// restore works.
		r := e.mustCkpt("resume", "--require-memory", name)
		if !strings.Contains(r.stdout, "memory restored") {
			t.Fatalf("resume printed %q", r.stdout)
		}
		e.assertContinues(name, before)
		return
	}

	r := e.ckpt("resume", "--require-memory", name)
	if r.code != 1 || !strings.Contains(r.stderr, "ckpt: error: memory could not be restored, and a start on the saved data only was ruled out") ||
		!strings.Contains(r.stderr, "tmp/held.txt has bad size") ||
		!strings.Contains(r.stderr, "ckpt: hint: a file the process had open changed or is missing") {
		t.Fatalf("--require-memory: exit %d\n%s", r.code, r.stderr)
	}
	if c := e.inspect(name); c.State.Running {
		t.Fatal("--require-memory started the container")
	}
	if ls := e.mustCkpt("ls", name).stdout; !strings.Contains(ls, "complete") {
		t.Fatalf("checkpoint gone:\n%s", ls)
	}

	r = e.resumeNoMemory(name)
	if !strings.Contains(r.stdout, "memory NOT restored, started normally") || !strings.Contains(r.stderr, "ckpt: warning: memory of "+name+" was not restored") {
		t.Fatalf("fallback output:\n%s\n%s", r.stdout, r.stderr)
	}
	if after := e.waitState(name); after.ID == before.ID {
		t.Fatal("memory claimed lost but the id survived")
	}
}
