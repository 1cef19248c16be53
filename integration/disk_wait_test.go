package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/ckpt-dev/ckpt/internal/criu"
)

// A thread in uninterruptible sleep (here the app's writer, blocked on a
// frozen file system, as a database's fsync is on a very busy disk) can be
// neither paused by the engine nor frozen by CRIU. The save says so, lets
// the container run until the wait is over, and tries again: the container
// is saved whole and resumes where it stopped. Without the retry the save
// fails (CI saw it on a loaded machine with MariaDB).
func TestSaveWaitsOutDiskSleep(t *testing.T) {
	e := newEnv(t)
	dir := freezableFS(t)
	name := e.name("app")
	e.startApp(name, appOpts{host: func(hc *container.HostConfig) { hc.Binds = []string{dir + ":/data"} }})
	before := e.waitCounter(name, 2)

	runCmd(t, "fsfreeze", "--freeze", dir)
	thawed := false
	thaw := func() {
		if !thawed {
			runCmd(t, "fsfreeze", "--unfreeze", dir)
			thawed = true
		}
	}
	t.Cleanup(thaw)
	// The app appends to /data/history.log every second: wait until that
	// write blocks.
	pid := e.inspect(name).State.Pid
	for deadline := time.Now().Add(patience(20 * time.Second)); len(criu.Blocked(pid)) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no thread of the app blocked on the frozen file system")
		}
	}

	cmd := exec.Command(ckptBin, "save", name)
	cmd.Env = e.environ()
	pr, pw, err := os.Pipe()
	must(t, err)
	cmd.Stdout, cmd.Stderr = pw, pw
	must(t, cmd.Start())
	pw.Close()
	var out strings.Builder
	warned, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "waiting for the disk") {
				once.Do(func() { close(warned) })
			}
		}
	}()
	select {
	case <-warned:
	case <-done:
	case <-time.After(patience(2 * time.Minute)):
		cmd.Process.Kill()
	}
	thaw()
	<-done
	err = cmd.Wait()
	t.Logf("save with a thread waiting for the disk: %v\n%s", err, out.String())
	if err != nil {
		t.Fatalf("the save failed: %v", err)
	}
	if !strings.Contains(out.String(), "waiting for the disk") {
		t.Fatal("the save did not say it waited for the disk")
	}
	if st := e.inspect(name).State; st.Running {
		t.Fatalf("the saved container still runs (%s)", st.Status)
	}
	e.mustCkpt("resume", name)
	e.assertContinues(name, before)
}

// freezableFS mounts a small ext4 file system (a file on a loop device)
// that fsfreeze can freeze, and unmounts it when the test ends.
func freezableFS(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	img, dir := filepath.Join(tmp, "fs.img"), filepath.Join(tmp, "mnt")
	must(t, os.Mkdir(dir, 0o755))
	f, err := os.Create(img)
	must(t, err)
	must(t, f.Truncate(32<<20))
	must(t, f.Close())
	runCmd(t, "mkfs.ext4", "-q", img)
	runCmd(t, "mount", "-o", "loop", img, dir)
	t.Cleanup(func() {
		exec.Command("fsfreeze", "--unfreeze", dir).Run()
		runCmd(t, "umount", dir)
	})
	return dir
}

// runCmd runs a command and fails the test when it fails.
func runCmd(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
