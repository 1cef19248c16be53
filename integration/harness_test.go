// Package integration tests ckpt end to end: the real binary against the
// real Docker engine and the real CRIU.
//
// The tests run when CKPT_INTEGRATION=1 and skip otherwise, saying why.
// With CKPT_TEST_DISALLOW_SKIP=1 (set by make test and CI) every skip is a
// failure, so a missing engine or CRIU can never pass silently.
//
// A compiled suite (go test -c) runs where there is no Go toolchain with
// CKPT_TEST_BIN_DIR (holding ckpt and testapp, built static) and
// CKPT_TEST_REPO (holding scripts/engine.sh): the VM test runs it so inside
// its guest, the project's second platform.
package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/engine"
)

const testImage = "ckpt-testapp:integration"

var (
	// unavailable says why the suite cannot run here; empty when it can.
	unavailable string
	ckptBin     string
	// ckptFaultBin is ckpt built with -tags ckptfault (internal/fault).
	ckptFaultBin string
	repoRoot     string
	docker       *client.Client
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	if r := os.Getenv("CKPT_TEST_REPO"); r != "" { // a compiled suite run elsewhere (the VM test)
		repoRoot = r
	}
	tmp, err := os.MkdirTemp("", "ckpt-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	unavailable = setUp(tmp)
	code := m.Run()
	if docker != nil {
		docker.Close()
	}
	return code
}

// setUp builds ckpt and the test image; it returns why the suite cannot run.
func setUp(tmp string) string {
	if os.Getenv("CKPT_INTEGRATION") != "1" {
		return "integration tests run with CKPT_INTEGRATION=1 (make test sets it)"
	}
	if os.Geteuid() != 0 {
		return "integration tests need root (CRIU and the engine's directories)"
	}
	var err error
	docker, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return "docker client: " + err.Error()
	}
	ctx := context.Background()
	info, err := docker.Info(ctx)
	if err != nil {
		return "no Docker engine: " + err.Error() + " (run scripts/setup.sh)"
	}
	if !info.ExperimentalBuild {
		return "the Docker engine has experimental features off (run scripts/setup.sh)"
	}
	if _, err := criu.Check(); err != nil {
		return "CRIU: " + err.Error() + " (run scripts/setup.sh)"
	}
	ckptBin = filepath.Join(tmp, "ckpt")
	app := filepath.Join(tmp, "testapp")
	if dir := os.Getenv("CKPT_TEST_BIN_DIR"); dir != "" {
		// Prebuilt binaries, for a compiled suite run where there is no Go
		// toolchain (the VM test runs it inside the guest).
		ckptBin, app = filepath.Join(dir, "ckpt"), filepath.Join(dir, "testapp")
		ckptFaultBin = filepath.Join(dir, "ckpt-fault")
	} else {
		if out, err := goBuild(ckptBin, "./cmd/ckpt"); err != nil {
			return "building ckpt: " + err.Error() + "\n" + out
		}
		ckptFaultBin = filepath.Join(tmp, "ckpt-fault")
		if out, err := goBuild(ckptFaultBin, "./cmd/ckpt", "-tags", "ckptfault"); err != nil {
			return "building ckpt with fault points: " + err.Error() + "\n" + out
		}
		if out, err := goBuild(app, "./internal/testapp"); err != nil {
			return "building the test app: " + err.Error() + "\n" + out
		}
	}
	if err := importImage(ctx, app, testImage); err != nil {
		return "importing the test image: " + err.Error()
	}
	return ""
}

func goBuild(out, pkg string, flags ...string) (string, error) {
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, pkg)...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// importImage makes a FROM-scratch image holding the test app as /app and a
// file /etc/app.conf (nothing can be pulled here).
func importImage(ctx context.Context, app, ref string) error {
	bin, err := os.ReadFile(app)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"app", 0o755, bin}, {"etc/app.conf", 0o644, []byte("from the image\n")}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		tw.Write(f.data)
	}
	// /tmp for workloads that do not run as root (they cannot create it).
	if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	rc, err := docker.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref,
		image.ImportOptions{Changes: []string{`ENTRYPOINT ["/app"]`, "EXPOSE 8080"}})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// runtimeEngine reports whether the engine cannot restore a container by
// itself (Docker 26.0.0, 28 and later): there ckpt's runtime restores it,
// in a container of that runtime, recreated the first time
// (docs/engines.md).
func runtimeEngine(t *testing.T) bool {
	t.Helper()
	v, err := docker.ServerVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return engine.RestoreBrokenIn(v.Version) != nil
}

// slow is true where everything takes many times longer: the VM test runs
// the suite in a guest under software emulation (CKPT_TEST_SLOW=1).
var slow = os.Getenv("CKPT_TEST_SLOW") == "1"

// patience scales a wait for the machine the suite runs on.
func patience(d time.Duration) time.Duration {
	if slow {
		return 10 * d
	}
	return d
}

// bigMB is the memory of containers whose save must take a while.
func bigMB() int {
	if slow {
		return 32 // under emulation, a small save already takes seconds
	}
	return 256
}

// need skips t when the suite cannot run, or fails it when skips are
// disallowed.
func need(t *testing.T) {
	t.Helper()
	if unavailable == "" {
		return
	}
	if os.Getenv("CKPT_TEST_DISALLOW_SKIP") == "1" {
		t.Fatalf("cannot run: %s (CKPT_TEST_DISALLOW_SKIP=1)", unavailable)
	}
	t.Skip(unavailable)
}

// env is one test's world: a store of its own and the containers and
// volumes it made, removed at the end.
type env struct {
	t     *testing.T
	store string
}

func newEnv(t *testing.T) *env {
	need(t)
	return &env{t: t, store: t.TempDir()}
}

// name returns a unique container or volume name for this test.
func (e *env) name(what string) string {
	b := make([]byte, 3)
	rand.Read(b)
	n := fmt.Sprintf("ckpt-it-%s-%s-%s", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(e.t.Name())), what, hex.EncodeToString(b))
	if len(n) > 60 {
		n = n[len(n)-60:]
		n = "c" + strings.TrimLeft(n, "-_.")
	}
	return n
}

// result is what a ckpt run printed.
type result struct {
	stdout, stderr string
	code           int
}

// ckpt runs the binary with this test's store.
func (e *env) ckpt(args ...string) result {
	e.t.Helper()
	return e.ckptEnv(nil, args...)
}

// ckptEnv runs ckpt with env added to its environment, and args; the words
// of args of the form CKPT_STORE=DIR are added to the environment instead.
func (e *env) ckptEnv(env []string, args ...string) result {
	e.t.Helper()
	extra := slices.Clone(env)
	var argv []string
	for _, a := range args {
		if strings.HasPrefix(a, "CKPT_STORE=") {
			extra = append(extra, a)
		} else {
			argv = append(argv, a)
		}
	}
	cmd := exec.Command(ckptBin, argv...)
	cmd.Env = e.environ(extra...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("ckpt %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), r.code, r.stdout, r.stderr)
	return r
}

// mustCkpt runs ckpt and fails the test unless it exits 0.
// storeKey returns the public key of the store at dir (ckpt trust key).
func (e *env) storeKey(dir string) string {
	e.t.Helper()
	r := e.ckpt("trust", "key", "CKPT_STORE="+dir)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ssh-ed25519 ") {
		e.t.Fatalf("ckpt trust key: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// trustStore makes e's store trust the checkpoints the store at dir signs,
// under name, as a user does with ckpt trust add.
func (e *env) trustStore(name, dir string) {
	e.t.Helper()
	e.mustCkpt("trust", "add", name, e.storeKey(dir))
}

func (e *env) mustCkpt(args ...string) result {
	e.t.Helper()
	r := e.ckpt(args...)
	if r.code != 0 {
		e.t.Fatalf("ckpt %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// exitNoMemory is ckpt resume's exit code when every container came back,
// but at least one without its memory: on its data only.
const exitNoMemory = 3

// resumeNoMemory runs ckpt resume with args, and fails the test unless it
// exits 3: the container came back on its data only, as the test meant.
func (e *env) resumeNoMemory(args ...string) result {
	e.t.Helper()
	r := e.ckpt(append([]string{"resume"}, args...)...)
	if r.code != exitNoMemory {
		e.t.Fatalf("ckpt resume %s: exit %d, want %d (resumed without memory): %s", strings.Join(args, " "), r.code, exitNoMemory, r.stderr)
	}
	return r
}

// environ is the environment a ckpt command of the test runs with: this
// process's, with the test's store, plus extra.
func (e *env) environ(extra ...string) []string {
	return append(append(os.Environ(), "CKPT_STORE="+e.store), extra...)
}

// appOpts configure a test app container.
type appOpts struct {
	volume  string // named volume at /data
	restart container.RestartPolicyMode
	allocMB int
	user    string // run as this uid:gid
	// host changes the container's host configuration before it is created.
	host func(*container.HostConfig)
}

// startApp runs the test app published on 127.0.0.1 and waits until it
// answers. The container and its volume are removed when the test ends.
func (e *env) startApp(name string, o appOpts) {
	e.t.Helper()
	e.startLabelled(name, o, nil)
}

// url returns the base URL of the app's published port.
func (e *env) url(name string) string {
	e.t.Helper()
	c, err := docker.ContainerInspect(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	// A container resumed inside its network holder (engines that cannot
	// restore otherwise, docs/engines.md) has its ports there.
	if mode := c.HostConfig.NetworkMode; mode.IsContainer() {
		if c, err = docker.ContainerInspect(context.Background(), mode.ConnectedContainer()); err != nil {
			e.t.Fatal(err)
		}
	}
	b := c.NetworkSettings.Ports["8080/tcp"]
	if len(b) == 0 {
		e.t.Fatalf("%s publishes no port (state %s)", name, c.State.Status)
	}
	return "http://" + net.JoinHostPort(b[0].HostIP, b[0].HostPort)
}

// appState is what the app's /state answers.
type appState struct {
	ID      string `json:"id"`
	Counter int64  `json:"counter"`
}

// waitState polls /state until it answers (a restored container's port
// proxy takes a moment) and returns it.
func (e *env) waitState(name string) appState {
	e.t.Helper()
	var last error
	for deadline := time.Now().Add(patience(20 * time.Second)); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		body, code, err := httpDo("GET", e.url(name)+"/state")
		if err != nil || code != 200 {
			last = fmt.Errorf("status %d, %v", code, err)
			continue
		}
		var s appState
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			e.t.Fatalf("/state: %v: %q", err, body)
		}
		return s
	}
	e.t.Fatalf("%s: /state did not answer: %v", name, last)
	return appState{}
}

// call sends a request to the app and returns the body and status.
func (e *env) call(name, method, path string) (string, int) {
	e.t.Helper()
	body, code, err := httpDo(method, e.url(name)+path)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return body, code
}

func httpDo(method, url string) (string, int, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return "", 0, err
	}
	cl := &http.Client{Timeout: patience(5 * time.Second), Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// inspect returns the container, or nil when it does not exist.
func (e *env) inspect(name string) *container.InspectResponse {
	e.t.Helper()
	c, err := docker.ContainerInspect(context.Background(), name)
	if err != nil {
		if strings.Contains(err.Error(), "No such container") {
			return nil
		}
		e.t.Fatal(err)
	}
	return &c
}

// waitRestarted waits until the engine has restarted container name at
// least n times by its restart policy and it runs again.
func (e *env) waitRestarted(name string, n int) {
	e.t.Helper()
	for deadline := time.Now().Add(patience(30 * time.Second)); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c := e.inspect(name); c != nil && c.RestartCount >= n && c.State.Running {
			return
		}
	}
	e.t.Fatalf("%s: the engine did not restart it %d times", name, n)
}

// waitCounter waits until the app's counter passes n.
func (e *env) waitCounter(name string, n int64) appState {
	e.t.Helper()
	for deadline := time.Now().Add(patience(20 * time.Second)); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if s := e.waitState(name); s.Counter > n {
			return s
		}
	}
	e.t.Fatalf("%s: counter did not pass %d", name, n)
	return appState{}
}

// assertContinues checks that the app's memory survived: same id, and a
// counter that went on from where it was rather than starting again.
func (e *env) assertContinues(name string, before appState) appState {
	e.t.Helper()
	after := e.waitState(name)
	if after.ID != before.ID {
		e.t.Fatalf("%s: memory was not restored: id %s before, %s after (counter %d before, %d after)", name, before.ID, after.ID, before.Counter, after.Counter)
	}
	if after.Counter < before.Counter {
		e.t.Fatalf("%s: counter went back from %d to %d", name, before.Counter, after.Counter)
	}
	return after
}

// removeContainer removes a container (and its anonymous volumes).
func removeContainer(t *testing.T, name string) {
	t.Helper()
	if err := docker.ContainerRemove(context.Background(), name, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// restartEngine stops the engine completely and starts it again.
func restartEngine(t *testing.T) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "scripts/engine.sh"), "restart")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restarting the engine: %v\n%s", err, out)
	}
	t.Logf("engine restarted: %s", out)
}
