package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/ckpt-dev/ckpt/internal/engine"
)

// peerState is the app's /state with its view of the server.
type peerState struct {
	appState
	PeerID     string `json:"peer_id"`
	PeerCalls  int64  `json:"peer_calls"`
	PeerErrors int64  `json:"peer_errors"`
}

func (e *env) peerState(name string) peerState {
	e.t.Helper()
	e.waitState(name)
	body, _ := e.call(name, "GET", "/state")
	var s peerState
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// composeProject is a two-service compose project of the test app — a
// server with a named volume and an app holding a TCP connection to it on
// the project network, both published on 127.0.0.1 — brought up for a
// test and taken down with its volumes when the test ends.
type composeProject struct {
	e            *env
	name, dir    string
	sep          string
	server, app  string
	noColour     []string
	serverBefore appState
	appBefore    peerState
	ids          map[string]string
}

func newComposeProject(e *env) *composeProject {
	t := e.t
	t.Helper()
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose is not installed (scripts/setup.sh installs it)")
	}
	p := &composeProject{e: e, name: strings.ReplaceAll(e.name("shop"), "-", ""), dir: t.TempDir(), ids: map[string]string{}}
	// Compose v1 (Debian bookworm) names containers project_service_1 and
	// colours its output unless --no-ansi; v2 (trixie and later) names them
	// project-service-1 and takes --ansi never.
	p.sep, p.noColour = "_", []string{"--no-ansi"}
	if out, err := exec.Command("docker-compose", "version", "--short").Output(); err == nil && !strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), "1.") {
		p.sep, p.noColour = "-", []string{"--ansi", "never"}
	}
	compose := fmt.Sprintf(`version: "3.7"
services:
  server:
    image: %[1]s
    ports: ["127.0.0.1::8080"]
    volumes: ["data:/data"]
  app:
    image: %[1]s
    ports: ["127.0.0.1::8080"]
    environment: ["APP_PEER=server:8080"]
    depends_on: [server]
    labels:
      io.ckpt.after: %[2]s%[3]sserver%[3]s1
volumes:
  data: {}
`, testImage, p.name, p.sep)
	if err := os.WriteFile(filepath.Join(p.dir, "docker-compose.yml"), []byte(compose), 0o600); err != nil {
		t.Fatal(err)
	}
	p.server, p.app = p.name+p.sep+"server"+p.sep+"1", p.name+p.sep+"app"+p.sep+"1"
	t.Cleanup(func() {
		for _, n := range []string{p.server, p.app} {
			docker.ContainerRemove(context.Background(), engine.HolderName(n), container.RemoveOptions{Force: true})
		}
		cmd := exec.Command("docker-compose", "-p", p.name, "down", "-v")
		cmd.Dir = p.dir
		cmd.Run()
	})
	p.dc("up", "-d")
	p.serverBefore = e.waitCounter(p.server, 10)
	for deadline := time.Now().Add(patience(20 * time.Second)); e.peerState(p.app).PeerCalls < 3; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the app never reached the server")
		}
	}
	p.appBefore = e.peerState(p.app)
	if p.appBefore.PeerID != p.serverBefore.ID {
		t.Fatalf("the app sees server %s, the server is %s", p.appBefore.PeerID, p.serverBefore.ID)
	}
	return p
}

// dc runs docker-compose on the project and returns its output.
func (p *composeProject) dc(args ...string) string {
	t := p.e.t
	t.Helper()
	cmd := exec.Command("docker-compose", append(append([]string{"-p", p.name}, p.noColour...), args...)...)
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	t.Logf("docker-compose %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("docker-compose %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// assertBack checks that both services came back with their memory, and
// that the app reconnects to the same server.
func (p *composeProject) assertBack() {
	e, t := p.e, p.e.t
	t.Helper()
	e.assertContinues(p.server, p.serverBefore)
	e.assertContinues(p.app, p.appBefore.appState)
	// The app's connection to the server came back closed; it reconnects
	// and goes on talking to the same server.
	var after peerState
	for deadline := time.Now().Add(patience(20 * time.Second)); ; time.Sleep(200 * time.Millisecond) {
		if after = e.peerState(p.app); after.PeerCalls > p.appBefore.PeerCalls+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app does not reach the server after resume: %+v", after)
		}
	}
	if after.PeerID != p.serverBefore.ID {
		t.Fatalf("the app talks to server %s, want %s", after.PeerID, p.serverBefore.ID)
	}
	for _, n := range []string{p.server, p.app} {
		p.ids[n] = e.inspect(n).ID
	}
}

// assertComposeKeeps checks that docker-compose takes the resumed
// containers for its own: ps lists them, up -d recreates nothing (the same
// processes answer), the ports are the containers' own for docker-compose
// port and docker port, and down -v leaves no container, network or volume
// of the project.
func (p *composeProject) assertComposeKeeps() {
	e, t := p.e, p.e.t
	t.Helper()
	ps := p.dc("ps")
	for _, n := range []string{p.server, p.app} {
		if !strings.Contains(ps, n) {
			t.Errorf("docker-compose ps does not list %s", n)
		}
	}
	out := p.dc("up", "-d")
	if strings.Contains(out, "Recreat") || strings.Contains(out, "Creating "+p.name) {
		t.Errorf("docker-compose up recreated containers:\n%s", out)
	}
	for _, n := range []string{p.server, p.app} {
		c := e.inspect(n)
		if c.ID != p.ids[n] {
			t.Errorf("%s was replaced by docker-compose up", n)
		}
		if c.HostConfig.NetworkMode.IsContainer() {
			t.Errorf("%s is in network mode %s, not its own", n, c.HostConfig.NetworkMode)
		}
	}
	e.assertContinues(p.server, p.serverBefore)
	// The last line: compose v1 warns of its own flags first.
	lines := strings.Split(strings.TrimSpace(p.dc("port", "server", "8080")), "\n")
	composePort := strings.TrimSpace(lines[len(lines)-1])
	dockerPort, err := exec.Command("docker", "port", p.server, "8080/tcp").Output()
	if err != nil || composePort == "" || !strings.Contains(string(dockerPort), composePort) {
		t.Errorf("docker-compose port %q, docker port %q (%v)", composePort, dockerPort, err)
	}
	if body, code := e.call(p.server, "GET", "/state"); code != 200 || !strings.Contains(body, p.serverBefore.ID) {
		t.Errorf("the server on its published port: %d %s", code, body)
	}
	p.dc("down", "-v")
	ctx := context.Background()
	left, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+p.name))})
	if err != nil || len(left) > 0 {
		t.Errorf("docker-compose down -v left containers: %d (%v)", len(left), err)
	}
	for _, n := range []string{p.server, p.app} {
		if c, _ := docker.ContainerInspect(ctx, engine.HolderName(n)); c.ContainerJSONBase != nil {
			t.Errorf("a network holder is left: %s", c.Name)
		}
	}
	if _, err := docker.NetworkInspect(ctx, p.name+"_default", network.InspectOptions{}); err == nil {
		t.Error("docker-compose down -v left the network")
	}
	if _, err := docker.VolumeInspect(ctx, p.name+"_data"); err == nil {
		t.Error("docker-compose down -v left the volume")
	}
}

// A two-service compose project is saved with --project, taken down with
// docker-compose down (containers and network gone), and resumed: the
// network comes back, the server before the app, both with their memory;
// the app reconnects to the same server; docker-compose treats the
// containers as its own, on every engine (on Docker 28 and later through
// ckpt's runtime): up -d keeps them, their ports are their own, down -v
// leaves nothing.
func TestComposeProject(t *testing.T) {
	e := newEnv(t)
	p := newComposeProject(e)
	r := e.mustCkpt("save", "--project", p.name)
	if strings.Index(r.stdout, "saved "+p.app) > strings.Index(r.stdout, "saved "+p.server) {
		t.Errorf("the server was saved before the app that depends on it:\n%s", r.stdout)
	}
	p.dc("down")
	if _, err := docker.NetworkInspect(context.Background(), p.name+"_default", network.InspectOptions{}); err == nil {
		t.Fatal("docker-compose down left the network")
	}
	r = e.mustCkpt("resume", "--project", p.name)
	if !strings.Contains(r.stdout, "recreated network "+p.name+"_default") {
		t.Errorf("resume printed %q", r.stdout)
	}
	if strings.Index(r.stdout, "resumed "+p.server) > strings.Index(r.stdout, "resumed "+p.app) {
		t.Errorf("the app was resumed before the server it depends on:\n%s", r.stdout)
	}
	p.assertBack()
	p.assertComposeKeeps()
}

// The same project through the host hooks: the shutdown hook saves it, the
// engine stops and starts again, the boot hook resumes it; docker-compose
// keeps what comes back.
func TestComposeProjectHooks(t *testing.T) {
	e := newEnv(t)
	p := newComposeProject(e)
	pol := e.writePolicy(fmt.Sprintf(`default:
  mode: skip
rules:
  - name: shop
    match:
      labels: {com.docker.compose.project: %s}
    mode: hot
`, p.name))
	r := e.mustCkpt("hook", "run", "shutdown", "--policy", pol)
	wantLine(t, r.stdout, "shutdown hook: 2 hot, 0 cold, ")
	restartEngine(t)
	r = e.mustCkpt("hook", "run", "boot", "--policy", pol)
	wantLine(t, r.stdout, "boot hook: 2 hot, 0 cold, 0 skipped, 0 failed in ")
	p.assertBack()
	p.assertComposeKeeps()
}
