package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/engine"
)

// A volume whose root is a data directory as database servers keep it (its
// own owner, mode 0700, an extended attribute) with the process working in
// it: CRIU checks the mode of the working directory on restore, so a resume
// after the volume was removed must give the new volume's root the saved
// metadata, or memory is lost ("has bad mode 040755 (expect 040700)").
func TestVolumeRootKept(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	ctx := context.Background()
	v, err := docker.VolumeCreate(ctx, volume.CreateOptions{Name: vol})
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.Chown(v.Mountpoint, 999, 998))
	must(t, os.Chmod(v.Mountpoint, 0o700))
	must(t, unix.Lsetxattr(v.Mountpoint, "user.ckpt-test", []byte("data directory"), 0))
	e.startLabelled(name, appOpts{volume: vol}, nil, "APP_CWD=/data")
	before := e.waitCounter(name, 2)

	e.mustCkpt("save", name)
	removeContainer(t, name)
	must(t, docker.VolumeRemove(ctx, vol, true))
	r := e.mustCkpt("resume", name)
	if !strings.Contains(r.stdout, "memory restored") {
		t.Fatalf("memory was not restored:\n%s%s", r.stdout, r.stderr)
	}
	e.assertContinues(name, before)

	v, err = docker.VolumeInspect(ctx, vol)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	must(t, unix.Stat(v.Mountpoint, &st))
	if st.Mode&0o7777 != 0o700 || st.Uid != 999 || st.Gid != 998 {
		t.Errorf("volume root: mode %#o owner %d:%d, want 0700 999:998", st.Mode&0o7777, st.Uid, st.Gid)
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(v.Mountpoint, "user.ckpt-test", buf)
	if err != nil || string(buf[:n]) != "data directory" {
		t.Errorf("volume root xattr user.ckpt-test = %q, %v", buf[:max(n, 0)], err)
	}
}

// Save, resume into a recreated container, save again, and so on: the hooks
// do this at every reboot. Each resume must bring the memory back, and the
// restored processes must live in the new container's cgroup (on cgroup v2
// CRIU otherwise puts them back into the removed container's, and the next
// save fails: "freezer not supported: ... cgroup.freeze: no such file").
func TestSaveResumeCycles(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol})
	first := e.waitCounter(name, 2)
	ctx := context.Background()
	for cycle := 1; cycle <= 3; cycle++ {
		before := e.waitState(name)
		e.mustCkpt("save", name)
		removeContainer(t, name)
		must(t, docker.VolumeRemove(ctx, vol, true))
		r := e.mustCkpt("resume", name)
		if !strings.Contains(r.stdout, "memory restored") {
			t.Fatalf("cycle %d: memory was not restored:\n%s%s", cycle, r.stdout, r.stderr)
		}
		after := e.assertContinues(name, before)
		if after.ID != first.ID {
			t.Fatalf("cycle %d: id %s, want %s", cycle, after.ID, first.ID)
		}
		assertOwnCgroup(t, name)
		t.Logf("cycle %d: same process, counter %d -> %d", cycle, before.Counter, after.Counter)
	}
}

// assertOwnCgroup checks that the container's init process is in a cgroup
// that names the container's own id, in every hierarchy.
func assertOwnCgroup(t *testing.T, name string) {
	t.Helper()
	c, err := docker.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.State.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] == "/" {
			continue // a hierarchy the engine does not manage
		}
		if !strings.Contains(parts[2], c.ID) {
			t.Fatalf("pid %d of %s (id %.12s) is in cgroup %q, not its own", c.State.Pid, name, c.ID, line)
		}
	}
}

const mariadbImage = "ckpt-test-mariadb:latest"

// A real MariaDB (Debian's 10.11) whose data directory is the volume's root,
// under load from clients on TCP (a writer recording what the server
// acknowledged, and mariadb-slap) and on the Unix socket (a session inside
// the container) during the save; then the container and the volume are
// removed and resumed, twice. Each time: the same server process (a global
// variable set only in its memory is still set), every acknowledged
// transaction present, mariadb-check clean, new writes accepted. mysqld runs
// as user mysql where CRIU can dump another user's processes (the VM guest),
// as root where it cannot (this sandbox drops CAP_SYS_RESOURCE).
func TestMariaDB(t *testing.T) {
	e := newEnv(t)
	if _, err := docker.ImageInspect(context.Background(), mariadbImage); err != nil {
		t.Fatalf("the MariaDB test image is missing (integration/images/mariadb/build.sh makes it; make test runs it): %v", err)
	}
	name, vol := e.name("db"), e.name("dbdata")
	user := "mysql"
	if !hasCapSysResource(t) {
		user = "root"
	}
	ctx := context.Background()
	cfg := &container.Config{Image: mariadbImage, Env: []string{"DB_USER=" + user}, ExposedPorts: nat.PortSet{"3306/tcp": {}}}
	hc := &container.HostConfig{
		PortBindings: nat.PortMap{"3306/tcp": {{HostIP: "127.0.0.1"}}},
		Binds:        []string{vol + ":/var/lib/mysql"},
	}
	t.Cleanup(func() {
		docker.ContainerRemove(context.Background(), name, container.RemoveOptions{Force: true})
		docker.ContainerRemove(context.Background(), engine.HolderName(name), container.RemoveOptions{Force: true})
		docker.VolumeRemove(context.Background(), vol, true)
	})
	if _, err := docker.ContainerCreate(ctx, cfg, hc, nil, nil, name); err != nil {
		t.Fatal(err)
	}
	must(t, docker.ContainerStart(ctx, name, container.StartOptions{}))
	db := &mariadb{e: e, name: name}
	db.waitReady()
	marker := strconv.Itoa(100000 + int(time.Now().UnixNano()%800000))
	db.sql("SET GLOBAL max_connect_errors = " + marker)
	t.Logf("mysqld runs as %s; marker max_connect_errors=%s", user, marker)

	for cycle := 1; cycle <= 2; cycle++ {
		w := db.startWriter()
		slap := db.startSlap()
		w.waitAcked(20)
		db.waitUnixAcked(20)

		start := time.Now()
		e.mustCkpt("save", name)
		saved := time.Since(start)
		acked := w.stop()
		slap.stop()
		removeContainer(t, name)
		must(t, docker.VolumeRemove(ctx, vol, true))
		start = time.Now()
		r := e.mustCkpt("resume", name)
		resumed := time.Since(start)
		if !strings.Contains(r.stdout, "memory restored") {
			t.Fatalf("cycle %d: memory was not restored:\n%s%s", cycle, r.stdout, r.stderr)
		}
		db.waitReady()
		if got := db.sql("SELECT @@max_connect_errors"); got != marker {
			t.Fatalf("cycle %d: max_connect_errors is %s, want %s: the server was restarted, not resumed", cycle, got, marker)
		}
		found, _ := strconv.Atoi(db.sql(fmt.Sprintf("SELECT COUNT(*) FROM t.acked WHERE src = 'tcp%d' AND n <= %d", cycle, acked)))
		if found != acked {
			t.Fatalf("cycle %d: %d TCP transactions acknowledged, %d found", cycle, acked, found)
		}
		unixAcked := db.unixAcked()
		unixFound, _ := strconv.Atoi(db.sql(fmt.Sprintf("SELECT COUNT(*) FROM t.acked WHERE src = 'unix' AND n <= %d", unixAcked)))
		if unixFound != unixAcked {
			t.Fatalf("cycle %d: %d Unix-socket transactions acknowledged, %d found", cycle, unixAcked, unixFound)
		}
		// The Unix-socket session was restored with the server: it goes on.
		db.waitUnixAcked(unixAcked + 5)
		if out := db.check(); strings.Contains(out, "error") || strings.Contains(out, "corrupt") {
			t.Fatalf("cycle %d: mariadb-check:\n%s", cycle, out)
		}
		db.sql(fmt.Sprintf("INSERT INTO t.acked (src, n) VALUES ('new%d', 1)", cycle))
		assertOwnCgroup(t, name)
		t.Logf("cycle %d: save %.1fs, resume %.1fs; TCP acknowledged %d found %d; Unix socket acknowledged %d found %d; mariadb-check clean; new writes accepted",
			cycle, saved.Seconds(), resumed.Seconds(), acked, found, unixAcked, unixFound)
	}
}

// mariadb drives the test server: SQL through a client container on the
// host's network, to the port published on 127.0.0.1.
type mariadb struct {
	e     *env
	name  string
	cycle int
}

func (m *mariadb) port() string {
	m.e.t.Helper()
	c, err := docker.ContainerInspect(context.Background(), m.name)
	if err != nil {
		m.e.t.Fatal(err)
	}
	if mode := c.HostConfig.NetworkMode; mode.IsContainer() {
		if c, err = docker.ContainerInspect(context.Background(), mode.ConnectedContainer()); err != nil {
			m.e.t.Fatal(err)
		}
	}
	b := c.NetworkSettings.Ports["3306/tcp"]
	if len(b) == 0 {
		m.e.t.Fatalf("%s publishes no port (state %s)", m.name, c.State.Status)
	}
	return b[0].HostPort
}

// client returns a docker run command of tool from the test image against
// the server.
func (m *mariadb) client(tool string, args ...string) *exec.Cmd {
	return exec.Command("docker", m.clientArgs("", tool, args...)...)
}

// clientArgs are the docker arguments that run tool against the server in a
// client container, named cname unless empty.
func (m *mariadb) clientArgs(cname, tool string, args ...string) []string {
	base := []string{"run", "--rm", "-i", "--network", "host", "--entrypoint", tool}
	if cname != "" {
		base = append(base, "--name", cname)
	}
	base = append(base, mariadbImage, "-h127.0.0.1", "-P"+m.port(), "-uload", "-pload")
	return append(base, args...)
}

// sql runs one statement and returns its output without headers.
func (m *mariadb) sql(stmt string) string {
	m.e.t.Helper()
	out, err := m.client("mariadb", "-N", "-B", "-e", stmt).CombinedOutput()
	if err != nil {
		m.e.t.Fatalf("%s: %v\n%s", stmt, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (m *mariadb) check() string {
	m.e.t.Helper()
	out, err := m.client("mariadb-check", "--all-databases").CombinedOutput()
	if err != nil {
		m.e.t.Fatalf("mariadb-check: %v\n%s", err, out)
	}
	return string(out)
}

// waitReady waits until the server answers on TCP and its schema exists.
func (m *mariadb) waitReady() {
	m.e.t.Helper()
	var last string
	for deadline := time.Now().Add(patience(60 * time.Second)); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+m.port(), time.Second)
		if err != nil {
			last = err.Error()
			continue
		}
		conn.Close()
		out, err := m.client("mariadb", "-N", "-B", "-e", "SELECT COUNT(*) FROM t.acked").CombinedOutput()
		if err == nil {
			return
		}
		last = string(out)
	}
	m.e.t.Fatalf("%s: MariaDB did not answer: %s", m.name, last)
}

// unixAcked is the highest n the Unix-socket session printed as committed.
func (m *mariadb) unixAcked() int {
	m.e.t.Helper()
	out, err := exec.Command("docker", "exec", m.name, "tail", "-n", "1", "/ack/unix.log").CombinedOutput()
	if err != nil {
		m.e.t.Fatalf("reading /ack/unix.log: %v\n%s", err, out)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func (m *mariadb) waitUnixAcked(n int) {
	m.e.t.Helper()
	for deadline := time.Now().Add(patience(30 * time.Second)); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if m.unixAcked() >= n {
			return
		}
	}
	m.e.t.Fatalf("%s: the Unix-socket session did not reach %d (at %d)", m.name, n, m.unixAcked())
}

// writer is a client that inserts ('tcpN', 1), ('tcpN', 2), ... over one TCP
// connection and prints each n once the server acknowledged its commit.
type writer struct {
	t     *testing.T
	cname string // its client container
	cmd   *exec.Cmd
	lines chan int
	done  chan struct{}
	last  int
}

func (m *mariadb) startWriter() *writer {
	m.e.t.Helper()
	m.cycle++
	loop := fmt.Sprintf(`i=0; while :; do i=$((i+1)); echo "INSERT INTO t.acked (src, n) VALUES ('tcp%d', $i); SELECT $i;"; sleep 0.02; done`, m.cycle)
	cname := m.e.name("writer")
	cmd := exec.Command("sh", "-c", loop+" | docker "+strings.Join(m.clientArgs(cname, "mariadb", "-N", "-B", "--unbuffered"), " "))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		m.e.t.Fatal(err)
	}
	w := &writer{t: m.e.t, cname: cname, cmd: cmd, lines: make(chan int, 1<<16), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		m.e.t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
				w.lines <- n
			}
		}
	}()
	m.e.t.Cleanup(func() { w.kill() })
	return w
}

func (w *writer) waitAcked(n int) {
	w.t.Helper()
	timeout := time.After(patience(30 * time.Second))
	for w.last < n {
		select {
		case w.last = <-w.lines:
		case <-timeout:
			w.t.Fatalf("the TCP writer reached %d acknowledged transactions, not %d", w.last, n)
		}
	}
}

// stop ends the writer (the save cut its connection already) and returns
// the highest acknowledged n.
func (w *writer) stop() int {
	w.kill()
	<-w.done
	for {
		select {
		case n := <-w.lines:
			w.last = n
		default:
			return w.last
		}
	}
}

// kill ends the client: its container, then the local processes.
func (w *writer) kill() {
	docker.ContainerRemove(context.Background(), w.cname, container.RemoveOptions{Force: true})
	if w.cmd.Process != nil {
		syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		w.cmd.Wait()
	}
}

// startSlap runs mariadb-slap's mixed load on 4 TCP connections until
// stopped; the save cuts them and it ends with an error, as designed.
func (m *mariadb) startSlap() *writer {
	m.e.t.Helper()
	cname := m.e.name("slap")
	cmd := exec.Command("docker", m.clientArgs(cname, "mariadb-slap", "--concurrency=4", "--iterations=1000", "--number-of-queries=100000",
		"--auto-generate-sql", "--auto-generate-sql-load-type=mixed", "--auto-generate-sql-add-autoincrement", "--create-schema=slap")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		m.e.t.Fatal(err)
	}
	w := &writer{t: m.e.t, cname: cname, cmd: cmd, done: make(chan struct{})}
	close(w.done)
	m.e.t.Cleanup(func() { w.kill() })
	return w
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
