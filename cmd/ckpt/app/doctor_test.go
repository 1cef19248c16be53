package app

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/doctor"
)

// doctorEngine stands in for a Docker 20.10 engine with experimental
// features off and no running container, answering what doctor asks.
func doctorEngine(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Docker-Experimental", "false")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/info"):
			json.NewEncoder(w).Encode(map[string]any{"ServerVersion": "20.10.24", "ExperimentalBuild": false,
				"Driver": "overlay2", "DockerRootDir": "/var/lib/docker", "CgroupVersion": "1"})
		case strings.HasSuffix(r.URL.Path, "/containers/json"):
			w.Write([]byte("[]"))
		default:
			http.Error(w, "unexpected call", http.StatusTeapot)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	return sock
}

func TestDoctorWithoutExperimental(t *testing.T) {
	noEnv(t)
	sock := doctorEngine(t)
	store := t.TempDir()
	code, stdout, stderr := run(t, "--store", store, "doctor")
	if code != exitError || stderr != "" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"ok    engine: Docker 20.10.24 (API 1.41) at unix://" + sock + "\n",
		"FAIL  experimental: the Docker engine has experimental features off, and checkpoints need them\n" +
			"      fix: add {\"experimental\": true} to /etc/docker/daemon.json and restart dockerd\n",
		"ok    storage: storage driver overlay2\n",
		"ok    cgroup: the engine uses cgroup v1; ",
		" free in " + store + "; no running container to compare with\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(store, "containers")); err == nil {
		t.Error("doctor created the store")
	}

	code, stdout, _ = run(t, "--store", store, "doctor", "--json")
	lines := jsonLines(t, stdout)
	var rs []doctor.Result
	for _, l := range strings.SplitAfter(strings.TrimSuffix(stdout, "\n"), "\n") {
		var r doctor.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("--json: %v\n%s", err, stdout)
		}
		rs = append(rs, r)
	}
	if code != exitError || len(rs) != 13 {
		t.Fatalf("--json: exit %d, %d lines", code, len(rs))
	}
	if r := rs[1]; r.Check != "experimental" || r.Status != doctor.Fail || r.Fix != `add {"experimental": true} to /etc/docker/daemon.json and restart dockerd` {
		t.Errorf("--json: %+v", r)
	}
	if !strings.HasPrefix(stdout, `{"type":"item","command":"doctor","check":"engine","status":"ok",`) {
		t.Errorf("--json:\n%s", stdout)
	}
	if last := lines[len(lines)-1]; last["type"] != "summary" || last["ok"] != false || last["failed"] != json.Number("1") {
		t.Errorf("--json summary: %v", last)
	}
}

func TestDoctorEngineUnreachable(t *testing.T) {
	noEnv(t)
	sock := filepath.Join(t.TempDir(), "nothing.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	code, stdout, stderr := run(t, "--store", t.TempDir(), "doctor")
	if code != exitError || stderr != "" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"FAIL  engine: cannot reach the Docker engine at unix://" + sock + ": ",
		"      fix: start it (systemctl start docker, or scripts/engine.sh start) or point DOCKER_HOST at a running one\n",
		"skip  experimental: not checked: the engine is unreachable\n",
		"skip  storage: not checked: the engine is unreachable\n",
		"cgroup: engine unreachable; /sys/fs/cgroup is cgroup v",
		"runc.conf: ",
		"; not compared with the containers: the engine is unreachable\n",
		"leftovers: ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestDoctorUsage(t *testing.T) {
	noEnv(t)
	code, _, stderr := run(t, "doctor", "web")
	if code != exitUsage || stderr != usage("doctor", "doctor takes no arguments") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
