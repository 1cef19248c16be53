package integration

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/ckpt-dev/ckpt/internal/store"
)

// Memory continues in the same container: save stops it, resume brings the
// same process back.
func TestSaveResumeSameContainer(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol})
	before := e.waitCounter(name, 5)

	r := e.mustCkpt("save", name)
	if !strings.HasPrefix(r.stdout, "saved "+name+" as ") {
		t.Fatalf("save printed %q", r.stdout)
	}
	if c := e.inspect(name); c.State.Running {
		t.Fatalf("%s still runs after save", name)
	}

	ls := jsonOf[struct {
		Container, Checkpoint, Ref, State string
		MemoryBytes                       int64
		SizeBytes                         int64
	}](t, e.mustCkpt("ls", "--json").stdout, "item")
	if len(ls) != 1 || ls[0].Container != name || ls[0].Ref != name+":"+ls[0].Checkpoint || ls[0].State != "complete" ||
		ls[0].MemoryBytes <= 0 || ls[0].SizeBytes < ls[0].MemoryBytes {
		t.Fatalf("ls --json: %+v", ls)
	}
	assertPrivate(t, e.store)

	leaks := func() []string { m, _ := filepath.Glob("/tmp/ctrd-checkpoint*"); return m }
	leftBefore := leaks()
	r = e.mustCkpt("resume", name)
	if left := leaks(); len(left) > len(leftBefore) {
		t.Errorf("containerd's copy of the checkpoint was left behind: %v", left)
	}
	if runtimeEngine(t) {
		// Recreated with ckpt's runtime, which restores it on this engine,
		// with its own network and ports.
		if !strings.Contains(r.stdout, "memory restored, container recreated") || !strings.Contains(r.stdout, "recreated with ckpt's runtime io.containerd.ckpt.v2") {
			t.Fatalf("resume printed %q", r.stdout)
		}
		if c := e.inspect(name); c.HostConfig.Runtime != "io.containerd.ckpt.v2" || c.HostConfig.NetworkMode.IsContainer() || len(c.NetworkSettings.Ports["8080/tcp"]) == 0 {
			t.Fatalf("resumed container: runtime %q, network mode %q, ports %v", c.HostConfig.Runtime, c.HostConfig.NetworkMode, c.NetworkSettings.Ports)
		}
	} else if !strings.Contains(r.stdout, "memory restored") || strings.Contains(r.stdout, "container recreated") {
		t.Fatalf("resume printed %q", r.stdout)
	}
	after := e.assertContinues(name, before)
	t.Logf("id %s, counter %d before save, %d after resume", after.ID, before.Counter, after.Counter)
}

// assertPrivate checks that the store holds nothing readable by others.
func assertPrivate(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// After docker rm -f and docker volume rm, resume recreates both: memory
// continues, the volume's history is back, a file held open in the writable
// layer still works through its descriptor, and a deleted file stays deleted.
func TestResumeAfterRemove(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol})
	e.waitCounter(name, 25) // a few lines of history
	if _, code := e.call(name, "POST", "/write?path=/etc/added.txt&data=added"); code != 200 {
		t.Fatal("write failed")
	}
	if _, code := e.call(name, "POST", "/rm?path=/etc/app.conf"); code != 200 {
		t.Fatal("rm failed")
	}
	e.call(name, "POST", "/held?data=before-save%0A")
	history, _ := e.call(name, "GET", "/read?path=/data/history.log")
	if strings.Count(history, "\n") < 2 {
		t.Fatalf("history too short: %q", history)
	}
	before := e.waitState(name)

	e.mustCkpt("save", name)
	removeContainer(t, name)
	if err := docker.VolumeRemove(context.Background(), vol, false); err != nil {
		t.Fatal(err)
	}

	r := e.mustCkpt("resume", name)
	if !strings.Contains(r.stdout, "memory restored, container recreated") || !strings.Contains(r.stdout, "restored volume "+vol) {
		t.Fatalf("resume printed %q", r.stdout)
	}
	e.assertContinues(name, before)

	got, _ := e.call(name, "GET", "/read?path=/data/history.log")
	if !strings.HasPrefix(got, history) {
		t.Fatalf("volume history lost:\nbefore save:\n%s\nafter resume:\n%s", history, got)
	}
	if body, code := e.call(name, "GET", "/read?path=/etc/app.conf"); code != 404 {
		t.Fatalf("deleted /etc/app.conf is back: %d %q", code, body)
	}
	if body, _ := e.call(name, "GET", "/read?path=/etc/added.txt"); body != "added" {
		t.Fatalf("/etc/added.txt = %q", body)
	}
	e.call(name, "POST", "/held?data=after-resume%0A")
	held, _ := e.call(name, "GET", "/held")
	if want := "held by " + before.ID + "\nbefore-save\nafter-resume\n"; held != want {
		t.Fatalf("held file through its descriptor = %q, want %q", held, want)
	}
	c := e.inspect(name)
	if c.ID == before.ID || !strings.HasPrefix(c.Config.Image, "ckpt-testapp") {
		t.Fatalf("recreated container: image %q", c.Config.Image)
	}
}

// A container with restart policy unless-stopped stays down after save,
// even across an engine restart, and gets its policy back on resume.
func TestRestartPolicyHeldAcrossEngineRestart(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{restart: container.RestartPolicyUnlessStopped})
	// A control with the same policy, killed as a checkpoint kills: once the
	// engine has restarted it, it would have restarted the saved one too.
	control := e.name("control")
	e.startApp(control, appOpts{restart: container.RestartPolicyUnlessStopped})
	before := e.waitCounter(name, 5)

	e.mustCkpt("save", name)
	// Killed behind the engine's back, as CRIU ends a checkpointed process
	// (docker kill would count as a manual stop, which the policy respects).
	if err := syscall.Kill(e.inspect(control).State.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.waitRestarted(control, 1)
	c := e.inspect(name)
	if c.State.Running || c.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Fatalf("after save: running=%v policy=%q", c.State.Running, c.HostConfig.RestartPolicy.Name)
	}
	restartEngine(t)
	e.waitState(control) // the engine started the control again
	if c := e.inspect(name); c.State.Running {
		t.Fatal("the engine restarted the saved container")
	}

	e.mustCkpt("resume", name)
	e.assertContinues(name, before)
	if c := e.inspect(name); c.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Fatalf("restart policy after resume: %q", c.HostConfig.RestartPolicy.Name)
	}
}

// The engine stops and starts between save and resume.
func TestEngineRestartBetweenSaveAndResume(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol})
	before := e.waitCounter(name, 5)
	e.mustCkpt("save", name)
	restartEngine(t)
	e.mustCkpt("resume", name)
	e.assertContinues(name, before)
}

// A client holds a TCP connection through the published port during the
// save: the save succeeds (tcp-established), the client sees its connection
// closed, reconnects, and finds the old state.
func TestSaveWithOpenConnection(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	before := e.waitCounter(name, 5)

	addr := strings.TrimPrefix(e.url(name), "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// One request on a kept-alive connection proves the connection reaches
	// the app, so the app holds an established socket during the save.
	if _, err := conn.Write([]byte("GET /state HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(patience(5 * time.Second)))
	if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), before.ID) {
		t.Fatalf("first request: %v %q", err, buf[:n])
	}

	e.mustCkpt("save", name)
	e.mustCkpt("resume", name)

	// The old connection is closed: a read ends instead of waiting.
	conn.SetReadDeadline(time.Now().Add(patience(10 * time.Second)))
	conn.Write([]byte("GET /state HTTP/1.1\r\nHost: x\r\n\r\n"))
	n, err := conn.Read(buf)
	if err == nil && n > 0 {
		t.Fatalf("the old connection still answers: %q", buf[:n])
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the old connection hangs instead of being closed")
	}
	e.assertContinues(name, before) // a new connection, to the new port
}

// checkpointFile returns the path of a checkpoint file for tampering.
func checkpointFile(t *testing.T, store, container, rel string) string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(store, "containers", container, "checkpoints", "2*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("checkpoints of %s: %v %v", container, dirs, err)
	}
	return filepath.Join(dirs[0], rel)
}

// storedByte returns where byte off of the checkpoint file rel of the one
// checkpoint of container is on disk: the file, or the chunk that holds
// it, and the offset there; and the chunk's index (-1 for a file).
func storedByte(t *testing.T, root, container, rel string, off int64) (path string, at int64, chunk int) {
	t.Helper()
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := st.Latest(container)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ck.Manifest.Files {
		if f.Path != rel {
			continue
		}
		paths := ck.Stored(rel)
		for i, c := range f.Chunks {
			if off < c.Size {
				return paths[i], off, i
			}
			off -= c.Size
		}
		return paths[0], off, -1
	}
	t.Fatalf("checkpoint %s:%s has no file %s", container, ck.Name, rel)
	return "", 0, 0
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// Containers that run inside a network holder (resumed by a ckpt from
// before its runtime, or with CKPT_NO_RUNTIME=1) keep working: saved, they
// resume inside their holder, in place and after docker rm, with their
// memory. On an engine that restores by itself, CKPT_NO_RUNTIME changes
// nothing: no holder, the container resumed in place.
func TestHolderKeepsWorking(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	before := e.waitCounter(name, 3)
	noRuntime := []string{"CKPT_NO_RUNTIME=1"}
	e.ckptEnv(noRuntime, "save", name).must(t)
	r := e.ckptEnv(noRuntime, "resume", name).must(t)
	holder := e.inspect(name).HostConfig.NetworkMode
	if !runtimeEngine(t) {
		if holder.IsContainer() || strings.Contains(r.stdout, "container recreated") {
			t.Fatalf("resumed in network mode %s: %s", holder, r.stdout)
		}
		e.assertContinues(name, before)
		return
	}
	if !holder.IsContainer() || !strings.Contains(r.stdout, "recreated inside its network holder") {
		t.Fatalf("resumed in network mode %s: %s", holder, r.stdout)
	}
	before = e.assertContinues(name, before)

	// Without CKPT_NO_RUNTIME now, as after an upgrade: a container inside
	// its holder is saved for it, and resumes inside it.
	e.mustCkpt("save", name)
	if r := e.mustCkpt("resume", name); strings.Contains(r.stdout, "container recreated") {
		t.Errorf("resumed %s", r.stdout)
	}
	before = e.assertContinues(name, before)
	e.mustCkpt("save", name)
	removeContainer(t, name)
	e.mustCkpt("resume", name)
	if got := e.inspect(name).HostConfig.NetworkMode; !got.IsContainer() {
		t.Errorf("after docker rm: network mode %s", got)
	}
	e.assertContinues(name, before)
}

// A container ckpt recreated (on Docker 28 and later, one of ckpt's
// runtime) is a normal container afterwards: docker stop and start (a fresh
// start: the runtime restores only when asked), docker restart, its restart
// policy through an engine restart, a later save and resume with memory,
// and docker rm.
func TestRecreatedContainerIsNormal(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol, restart: container.RestartPolicyUnlessStopped})
	before := e.waitCounter(name, 3)
	e.mustCkpt("save", name)
	removeContainer(t, name)
	e.mustCkpt("resume", name)
	before = e.assertContinues(name, before)
	ctx := context.Background()

	if err := docker.ContainerStop(ctx, name, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := docker.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatalf("docker start: %v", err)
	}
	if s := e.waitState(name); s.ID == before.ID {
		t.Fatal("a plain docker start restored the checkpoint again")
	}
	if err := docker.ContainerRestart(ctx, name, container.StopOptions{}); err != nil {
		t.Fatalf("docker restart: %v", err)
	}
	e.waitState(name)
	if got := e.inspect(name).HostConfig.RestartPolicy.Name; got != container.RestartPolicyUnlessStopped {
		t.Fatalf("restart policy %q", got)
	}
	restartEngine(t)
	running := e.waitState(name) // brought back by its restart policy

	e.mustCkpt("save", name)
	if r := e.mustCkpt("resume", name); strings.Contains(r.stdout, "container recreated") {
		t.Errorf("a second resume recreated it: %s", r.stdout)
	}
	e.assertContinues(name, running)
	removeContainer(t, name)
	if c, err := docker.ContainerInspect(ctx, name); err == nil {
		t.Errorf("docker rm left %s", c.Name)
	}
}
