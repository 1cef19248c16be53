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

// A two-service compose project — an app holding a TCP connection to a
// stateful server on the project network — is saved with --project, taken
// down with docker-compose down (containers and network gone), and resumed:
// the network comes back, the server before the app, both with their
// memory; the app reconnects to the same server; docker-compose treats the
// containers as its own.
func TestComposeProject(t *testing.T) {
	e := newEnv(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose is not installed (scripts/setup.sh installs it)")
	}
	project := strings.ReplaceAll(e.name("shop"), "-", "")
	// Compose v1 (Debian bookworm) names containers project_service_1 and
	// colours its output unless --no-ansi; v2 (trixie and later) names them
	// project-service-1 and takes --ansi never.
	sep, noColour := "_", []string{"--no-ansi"}
	if out, err := exec.Command("docker-compose", "version", "--short").Output(); err == nil && !strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), "1.") {
		sep, noColour = "-", []string{"--ansi", "never"}
	}
	dir := t.TempDir()
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
`, testImage, project, sep)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(compose), 0o600); err != nil {
		t.Fatal(err)
	}
	dc := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("docker-compose", append(append([]string{"-p", project}, noColour...), args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		t.Logf("docker-compose %s:\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("docker-compose %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	t.Cleanup(func() {
		for _, svc := range []string{"server", "app"} {
			docker.ContainerRemove(context.Background(), engine.HolderName(project+sep+svc+sep+"1"), container.RemoveOptions{Force: true})
		}
		cmd := exec.Command("docker-compose", "-p", project, "down", "-v")
		cmd.Dir = dir
		cmd.Run()
	})
	dc("up", "-d")
	server, app := project+sep+"server"+sep+"1", project+sep+"app"+sep+"1"
	serverBefore := e.waitCounter(server, 10)
	for deadline := time.Now().Add(patience(20 * time.Second)); e.peerState(app).PeerCalls < 3; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the app never reached the server")
		}
	}
	appBefore := e.peerState(app)
	if appBefore.PeerID != serverBefore.ID {
		t.Fatalf("the app sees server %s, the server is %s", appBefore.PeerID, serverBefore.ID)
	}
	ids := map[string]string{}

	r := e.mustCkpt("save", "--project", project)
	if strings.Index(r.stdout, "saved "+app) > strings.Index(r.stdout, "saved "+server) {
		t.Errorf("the server was saved before the app that depends on it:\n%s", r.stdout)
	}
	dc("down")
	if _, err := docker.NetworkInspect(context.Background(), project+"_default", network.InspectOptions{}); err == nil {
		t.Fatal("docker-compose down left the network")
	}

	r = e.mustCkpt("resume", "--project", project)
	if !strings.Contains(r.stdout, "recreated network "+project+"_default") {
		t.Errorf("resume printed %q", r.stdout)
	}
	if strings.Index(r.stdout, "resumed "+server) > strings.Index(r.stdout, "resumed "+app) {
		t.Errorf("the app was resumed before the server it depends on:\n%s", r.stdout)
	}
	e.assertContinues(server, serverBefore)
	e.assertContinues(app, appBefore.appState)
	// The app's connection to the server came back closed; it reconnects
	// and goes on talking to the same server.
	var after peerState
	for deadline := time.Now().Add(patience(20 * time.Second)); ; time.Sleep(200 * time.Millisecond) {
		if after = e.peerState(app); after.PeerCalls > appBefore.PeerCalls+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app does not reach the server after resume: %+v", after)
		}
	}
	if after.PeerID != serverBefore.ID {
		t.Fatalf("the app talks to server %s, want %s", after.PeerID, serverBefore.ID)
	}
	for _, n := range []string{server, app} {
		ids[n] = e.inspect(n).ID
	}

	// docker-compose sees its containers and does not recreate them.
	ps := dc("ps")
	for _, n := range []string{server, app} {
		if !strings.Contains(ps, n) {
			t.Errorf("docker-compose ps does not list %s", n)
		}
	}
	if holderEngine(t) {
		// There the containers share their network holders' namespaces,
		// which docker-compose does not know: up would recreate them
		// (docs/engines.md says so). What it lists is what was resumed.
		return
	}
	out := dc("up", "-d")
	if strings.Contains(out, "Recreating") || strings.Contains(out, "Creating "+project) {
		t.Errorf("docker-compose up recreated containers:\n%s", out)
	}
	for _, n := range []string{server, app} {
		if id := e.inspect(n).ID; id != ids[n] {
			t.Errorf("%s was replaced by docker-compose up", n)
		}
	}
	e.assertContinues(server, serverBefore)
}
