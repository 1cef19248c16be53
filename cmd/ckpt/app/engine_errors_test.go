package app

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// An engine that is not there: a clear error naming where ckpt looked.
func TestEngineUnreachable(t *testing.T) {
	noEnv(t)
	sock := filepath.Join(t.TempDir(), "nothing.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	for _, cmd := range []string{"save", "resume"} {
		code, _, stderr := run(t, "--store", t.TempDir(), cmd, "web")
		want := "ckpt: error: cannot reach the Docker engine at unix://" + sock + ": "
		hint := "ckpt: hint: start it (systemctl start docker, or scripts/engine.sh start) or point DOCKER_HOST at a running one\n"
		if code != exitError || !strings.HasPrefix(stderr, want) || !strings.HasSuffix(stderr, hint) {
			t.Errorf("%s: exit %d, stderr %q", cmd, code, stderr)
		}
	}
}

// An engine with experimental features off, stood in for by a server that
// answers the two calls ckpt makes before anything else (_ping and info) the
// way Docker 20.10 does.
func TestEngineWithoutExperimental(t *testing.T) {
	noEnv(t)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls []string
	)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Docker-Experimental", "false")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/info"):
			json.NewEncoder(w).Encode(map[string]any{"ServerVersion": "20.10.24", "ExperimentalBuild": false, "Driver": "overlay2", "DockerRootDir": "/var/lib/docker"})
		default:
			http.Error(w, "unexpected call", http.StatusTeapot)
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	t.Setenv("DOCKER_HOST", "unix://"+sock)

	for _, cmd := range []string{"save", "resume"} {
		mu.Lock()
		calls = nil
		mu.Unlock()
		code, _, stderr := run(t, "--store", t.TempDir(), cmd, "web")
		want := "ckpt: error: the Docker engine has experimental features off, and checkpoints need them\n" +
			"ckpt: hint: add {\"experimental\": true} to /etc/docker/daemon.json and restart dockerd\n"
		if code != exitError || stderr != want {
			t.Errorf("%s: exit %d, stderr %q", cmd, code, stderr)
		}
		mu.Lock()
		for _, c := range calls {
			if !strings.HasSuffix(c, "/_ping") && !strings.HasSuffix(c, "/info") {
				t.Errorf("%s: ckpt went on to call %s", cmd, c)
			}
		}
		mu.Unlock()
	}
}
