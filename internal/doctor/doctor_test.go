package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/shim"
)

// These tests need no engine and no CRIU: a fake criu script stands first
// on PATH, and a fake engine answers on a unix socket. TestRealHost runs the
// checks against this machine when CKPT_INTEGRATION=1.

// options points every check that reads the host at temporary files,
// and the engine at a socket where nothing listens.
func options(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(dir, "no-engine.sock"))
	for _, v := range []string{"DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION", "DOCKER_CONTEXT"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o700)
	os.MkdirAll(filepath.Join(dir, "cgroup"), 0o700)
	return Options{
		Store:      filepath.Join(dir, "store"),
		TempDirs:   []string{filepath.Join(dir, "tmp")},
		RuncConf:   filepath.Join(dir, "runc.conf"),
		CgroupRoot: filepath.Join(dir, "cgroup"),
		Kernel:     "6.18.44-test",
		Timeout:    10 * time.Second,
	}
}

// fakeCRIU puts a criu shell script first on PATH.
func fakeCRIU(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "criu")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return path
}

func byCheck(t *testing.T, rs []Result) map[string]Result {
	t.Helper()
	m := map[string]Result{}
	for _, r := range rs {
		m[r.Check] = r
	}
	want := []string{"engine", "experimental", "restore", "storage", "criu", "criu check", "kernel", "cgroup", "runc.conf", "space", "io_uring", "leftovers"}
	if len(rs) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(rs), len(want), rs)
	}
	for i, w := range want {
		if rs[i].Check != w {
			t.Errorf("check %d is %q, want %q", i, rs[i].Check, w)
		}
		if rs[i].Status != OK && rs[i].Status != Skip && rs[i].Fix == "" {
			t.Errorf("%s: %s without a fix: %s", rs[i].Check, rs[i].Status, rs[i].Finding)
		}
	}
	return m
}

func expect(t *testing.T, m map[string]Result, check string, status Status, finding, fix string) {
	t.Helper()
	r := m[check]
	if r.Status != status || !strings.Contains(r.Finding, finding) || !strings.Contains(r.Fix, fix) {
		t.Errorf("%s: got %s %q (fix %q), want %s containing %q (fix containing %q)", check, r.Status, r.Finding, r.Fix, status, finding, fix)
	}
}

// A CRIU whose criu check fails: the failure's last lines and a fix.
func TestCRIUCheckFails(t *testing.T) {
	o := options(t)
	path := fakeCRIU(t, `case "$1" in
check)
	echo "Warn  (criu/kerndat.c:1): something harmless"
	echo "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds" >&2
	echo "Error (criu/crtools.c:260): Could not initialize kernel features detection." >&2
	exit 1;;
*) exit 1;;
esac
`)
	rs := Run(context.Background(), o)
	m := byCheck(t, rs)
	expect(t, m, "criu check", Fail,
		"criu check failed (exit status 1): Warn  (criu/kerndat.c:1): something harmless; Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds; Error (criu/crtools.c:260): Could not initialize kernel features detection.",
		"install CRIU >= 4.2")
	expect(t, m, "criu", Fail, path+": cannot ask CRIU for its version: ", "run criu check as root")
	expect(t, m, "kernel", Skip, "not checked: the CRIU version is unknown; kernel 6.18.44-test needs CRIU >= 4.2.0", "")
	if !Failed(rs) {
		t.Error("Failed is false")
	}
}

// A criu that passes criu check but cannot answer go-criu's version request
// (sent over criu swrk, which a script cannot speak): the version check
// says so, and the kernel check, which needs the version, is skipped.
func TestCRIUVersionUnavailable(t *testing.T) {
	for _, swrk := range []string{"exit 1", "echo garbage >&2; exit 0", "sleep 0.2; exit 3"} {
		t.Run(swrk, func(t *testing.T) {
			o := options(t)
			path := fakeCRIU(t, `case "$1" in
check) echo "Looks good."; exit 0;;
swrk) `+swrk+`;;
esac
`)
			m := byCheck(t, Run(context.Background(), o))
			expect(t, m, "criu check", OK, "passed: Looks good.", "")
			expect(t, m, "criu", Fail, path+": cannot ask CRIU for its version: ", "run criu check as root to see what is wrong")
			expect(t, m, "kernel", Skip, "CRIU version is unknown", "")
		})
	}
}

func TestNoCRIU(t *testing.T) {
	o := options(t)
	t.Setenv("PATH", t.TempDir())
	m := byCheck(t, Run(context.Background(), o))
	expect(t, m, "criu", Fail, "CRIU is not installed (no criu on PATH)", "install CRIU >= 4.2.0 (scripts/setup.sh in ckpt's source builds one)")
	expect(t, m, "criu check", Skip, "no criu on PATH", "")
	expect(t, m, "kernel", Skip, "CRIU version is unknown", "")
}

// The CRIU each kernel needs.
func TestKernelNeeds(t *testing.T) {
	for _, tc := range []struct {
		kernel  string
		version int
		status  Status
		finding string
	}{
		{"6.18.44-fc-v657", 40201, OK, "kernel 6.18.44-fc-v657 needs CRIU >= 4.2.0, and CRIU is 4.2.1"},
		{"6.18.44-fc-v657", 40100, Fail, "CRIU 4.1.0 is too old for kernel 6.18.44-fc-v657: it needs >= 4.2.0 (Linux 6.16 restricted SO_PASSCRED/SO_PASSSEC"},
		{"6.18.0", 31700, Fail, "CRIU 3.17.0 is too old for kernel 6.18.0: it needs >= 4.2.0"},
		{"6.16.1", 40200, OK, "needs CRIU >= 4.2.0"},
		{"6.14.2", 31700, Fail, "CRIU 3.17.0 is too old for kernel 6.14.2: it needs >= 4.1.0 (Linux 6.13 changed the vDSO layout"},
		{"6.13.0", 40100, OK, "needs CRIU >= 4.1.0"},
		{"6.12.9", 31700, OK, "kernel 6.12.9 needs CRIU >= 3.11.0, and CRIU is 3.17.0"},
		{"5.10.0-28-amd64", 31100, OK, "needs CRIU >= 3.11.0"},
		{"5.10.0", 31000, Fail, "CRIU 3.10.0 is too old"},
	} {
		r := checkKernel(tc.kernel, tc.version)
		if r.Status != tc.status || !strings.Contains(r.Finding, tc.finding) {
			t.Errorf("%s with %d: %s %q, want %s %q", tc.kernel, tc.version, r.Status, r.Finding, tc.status, tc.finding)
		}
		if tc.status == Fail && !strings.HasPrefix(r.Fix, "install CRIU >= ") {
			t.Errorf("%s with %d: fix %q", tc.kernel, tc.version, r.Fix)
		}
	}
}

// fakeEngine answers the calls doctor makes the way Docker 20.10 does; info
// is the document GET /info returns, and the engine runs containers (by
// id, with their inspect and stats documents).
type fakeEngine struct {
	info       map[string]any
	containers []fakeContainer
	mu         sync.Mutex
	calls      []string
}

type fakeContainer struct {
	id, name       string
	inspect, stats map[string]any
}

func (f *fakeEngine) start(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Docker-Experimental", "false")
		p := r.URL.Path
		switch {
		case strings.HasSuffix(p, "/_ping"):
			w.Write([]byte("OK"))
			return
		case strings.HasSuffix(p, "/info"):
			json.NewEncoder(w).Encode(f.info)
			return
		case strings.HasSuffix(p, "/containers/json"):
			list := []map[string]any{}
			for _, c := range f.containers {
				list = append(list, map[string]any{"Id": c.id, "Names": []string{"/" + c.name}, "State": "running"})
			}
			json.NewEncoder(w).Encode(list)
			return
		}
		for _, c := range f.containers {
			switch {
			case strings.HasSuffix(p, "/containers/"+c.id+"/json"):
				json.NewEncoder(w).Encode(c.inspect)
				return
			case strings.HasSuffix(p, "/containers/"+c.id+"/stats"):
				json.NewEncoder(w).Encode(c.stats)
				return
			}
		}
		http.Error(w, "unexpected call", http.StatusTeapot)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	return sock
}

func info20(experimental bool, driver string) map[string]any {
	return map[string]any{"ServerVersion": "20.10.24", "ExperimentalBuild": experimental, "Driver": driver,
		"DockerRootDir": "/var/lib/docker", "CgroupVersion": "2"}
}

// An engine with experimental features off fails; the fix says how to turn
// them on.
func TestEngineWithoutExperimental(t *testing.T) {
	o := options(t)
	fakeCRIU(t, "exit 1\n")
	f := &fakeEngine{info: info20(false, "overlay2")}
	sock := f.start(t)
	rs := Run(context.Background(), o)
	m := byCheck(t, rs)
	expect(t, m, "engine", OK, "Docker 20.10.24 (API 1.41) at unix://"+sock, "")
	expect(t, m, "experimental", Fail, "experimental features off", `add {"experimental": true} to /etc/docker/daemon.json and restart dockerd`)
	expect(t, m, "storage", OK, "storage driver overlay2", "")
	expect(t, m, "cgroup", OK, "the engine uses cgroup v2; "+o.CgroupRoot+" is cgroup v1 (no cgroup.controllers)", "")
	expect(t, m, "space", OK, "no running container to compare with", "")
	if !Failed(rs) {
		t.Error("Failed is false")
	}
}

func TestStorageDriver(t *testing.T) {
	o := options(t)
	fakeCRIU(t, "exit 1\n")
	(&fakeEngine{info: info20(true, "devicemapper")}).start(t)
	m := byCheck(t, Run(context.Background(), o))
	expect(t, m, "experimental", OK, "experimental features on", "")
	expect(t, m, "storage", Fail, "uses the devicemapper storage driver; ckpt reads writable layers of overlay2 only", `"storage-driver": "overlay2"`)
}

// Without an engine, the checks that need it are skipped, and the others
// run.
func TestEngineUnreachable(t *testing.T) {
	o := options(t)
	fakeCRIU(t, `[ "$1" = check ] && echo "Looks good."; exit 0`+"\n")
	os.WriteFile(filepath.Join(o.CgroupRoot, "cgroup.controllers"), []byte("cpu memory\n"), 0o644)
	rs := Run(context.Background(), o)
	m := byCheck(t, rs)
	expect(t, m, "engine", Fail, "cannot reach the Docker engine at unix://", "start it (systemctl start docker, or scripts/engine.sh start) or point DOCKER_HOST at a running one")
	expect(t, m, "experimental", Skip, "not checked: the engine is unreachable", "")
	expect(t, m, "storage", Skip, "not checked: the engine is unreachable", "")
	expect(t, m, "space", Skip, "free in "+filepath.Dir(o.Store)+" (the store "+o.Store+" does not exist yet); not compared with the containers: the engine is unreachable", "")
	expect(t, m, "criu check", OK, "passed: Looks good.", "")
	expect(t, m, "cgroup", OK, "engine unreachable; "+o.CgroupRoot+" is cgroup v2", "")
	expect(t, m, "runc.conf", Warn, o.RuncConf+" does not exist", "ckpt adds it on the next save")
	expect(t, m, "leftovers", OK, "no leftover", "")
}

func TestRuncConf(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "runc.conf")
	os.WriteFile(conf, []byte("log-file /tmp/x.log\n"), 0o644)
	if r := checkRuncConf(conf); r.Status != Warn || !strings.Contains(r.Finding, "lacks ckpt's block") || r.Fix != "nothing to do: ckpt adds it on the next save" {
		t.Errorf("without the block: %+v", r)
	}
	before, _ := os.ReadFile(conf)
	if string(before) != "log-file /tmp/x.log\n" {
		t.Errorf("doctor changed the file: %q", before)
	}
	os.WriteFile(conf, []byte("log-file /tmp/x.log\n# BEGIN ckpt: established TCP connections are checkpointed and come back closed; file locks are kept\ntcp-established\ntcp-close\nfile-locks\n# END ckpt\n"), 0o644)
	if r := checkRuncConf(conf); r.Status != OK || r.Finding != conf+" holds ckpt's block (tcp-established, tcp-close, file-locks)" {
		t.Errorf("with the block: %+v", r)
	}
}

// Copies of restored checkpoints left by containerd: a warning with their
// count and size, and the command that removes them.
func TestLeftovers(t *testing.T) {
	o := options(t)
	tmp := o.TempDirs[0]
	for _, d := range []string{"ctrd-checkpointTEST123", "ctrd-checkpoint456"} {
		os.MkdirAll(filepath.Join(tmp, d), 0o700)
		os.WriteFile(filepath.Join(tmp, d, "pages-1.img"), make([]byte, 1536), 0o600)
	}
	os.WriteFile(filepath.Join(tmp, "ctrd-checkpoint-file"), []byte("not a directory"), 0o600)
	r := checkLeftovers(o.TempDirs)
	want := "2 leftover copies of restored checkpoints (" + tmp + "/ctrd-checkpoint*) hold 3.0 KiB: containerd leaves one for every restore (containerd issue 10166)"
	if r.Status != Warn || r.Finding != want || r.Fix != "rm -rf "+tmp+"/ctrd-checkpoint* (when no container restore is running)" {
		t.Errorf("got %+v\nwant finding %q", r, want)
	}
	os.RemoveAll(filepath.Join(tmp, "ctrd-checkpoint456"))
	if r := checkLeftovers(o.TempDirs); r.Status != Warn || !strings.HasPrefix(r.Finding, "1 leftover copy of restored checkpoints") || !strings.Contains(r.Finding, "holds 1.5 KiB") {
		t.Errorf("one left: %+v", r)
	}
}

// Free space against the largest running container: memory less the
// inactive page cache, plus volumes and writable layer.
func TestSpace(t *testing.T) {
	o := options(t)
	fakeCRIU(t, "exit 1\n")
	vol, upper := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(vol, "data"), make([]byte, 3<<20), 0o600)
	os.WriteFile(filepath.Join(upper, "file"), make([]byte, 1<<20), 0o600)
	mib := func(n int) int { return n << 20 }
	f := &fakeEngine{info: info20(true, "overlay2"), containers: []fakeContainer{
		{id: "aaa", name: "small",
			inspect: map[string]any{"Id": "aaa", "Name": "/small", "GraphDriver": map[string]any{"Name": "overlay2", "Data": map[string]string{}}},
			stats:   map[string]any{"memory_stats": map[string]any{"usage": mib(20), "stats": map[string]any{"inactive_file": mib(5)}}}},
		{id: "bbb", name: "web",
			inspect: map[string]any{"Id": "bbb", "Name": "/web",
				"GraphDriver": map[string]any{"Name": "overlay2", "Data": map[string]string{"UpperDir": upper}},
				"Mounts":      []map[string]any{{"Type": "volume", "Name": "webdata", "Source": vol, "Destination": "/data", "Driver": "local"}}},
			stats: map[string]any{"memory_stats": map[string]any{"usage": mib(110), "stats": map[string]any{"total_inactive_file": mib(10)}}}},
	}}
	f.start(t)
	want := "the largest running container, web, needs about 204.0 MiB (memory 100.0 MiB twice, volumes and writable layer 4.0 MiB)"

	o.Free = func(string) (int64, error) { return 1 << 30, nil }
	m := byCheck(t, Run(context.Background(), o))
	expect(t, m, "space", OK, "1.0 GiB free in "+filepath.Dir(o.Store)+" (the store "+o.Store+" does not exist yet); "+want, "")

	o.Free = func(string) (int64, error) { return 210 << 20, nil } // less than 204 MiB + 5% + 16 MiB
	m = byCheck(t, Run(context.Background(), o))
	expect(t, m, "space", Warn, "210.0 MiB free in", "free space there (ckpt rm and ckpt prune remove old checkpoints), or use another store")
	if m["space"].Fix != "free space there (ckpt rm and ckpt prune remove old checkpoints), or use another store" {
		t.Errorf("fix %q", m["space"].Fix)
	}
	o.StoreSetting = "--store DIR"
	m = byCheck(t, Run(context.Background(), o))
	expect(t, m, "space", Warn, "210.0 MiB free in", "free space there (ckpt rm and ckpt prune remove old checkpoints), or use another store (--store DIR)")
	if Failed([]Result{m["space"]}) {
		t.Error("a warning failed")
	}
}

// The real checks on this machine: with a working engine and CRIU, all of
// them pass or warn.
func TestRealHost(t *testing.T) {
	if os.Getenv("CKPT_INTEGRATION") != "1" {
		if os.Getenv("CKPT_TEST_DISALLOW_SKIP") == "1" {
			t.Fatal("the real checks run with CKPT_INTEGRATION=1 (CKPT_TEST_DISALLOW_SKIP=1 forbids skipping)")
		}
		t.Skip("the real checks run with CKPT_INTEGRATION=1 (make test sets it)")
	}
	o := Options{Store: os.Getenv("CKPT_STORE")}
	for _, r := range Run(context.Background(), o) {
		t.Logf("%-5s %s: %s", r.Status, r.Check, r.Finding)
		if r.Status != OK && r.Status != Warn {
			t.Errorf("%s: %s: %s (fix: %s)", r.Check, r.Status, r.Finding, r.Fix)
		}
	}
}

// Docker 28 and later cannot restore: doctor names the bug and what ckpt
// does; Docker 20.10 can.
func TestRestoreBug(t *testing.T) {
	for _, tc := range []struct {
		version string
		status  Status
		finding string
	}{
		{"20.10.24", OK, "Docker 20.10.24 starts containers from checkpoints"},
		{"28.5.2", Warn, "Docker 28.5.2 cannot start a container from a checkpoint: since moby 28.0"},
	} {
		o := options(t)
		fakeCRIU(t, "exit 1\n")
		info := info20(true, "overlay2")
		info["ServerVersion"] = tc.version
		f := &fakeEngine{info: info}
		f.start(t)
		m := byCheck(t, Run(context.Background(), o))
		fix := ""
		if tc.status != OK {
			fix = "the next ckpt save or resume installs a link to ckpt"
		}
		expect(t, m, "restore", tc.status, tc.finding, fix)
	}
}

// On an engine that cannot restore, doctor says whether containerd finds
// ckpt's runtime, and whether it is this ckpt.
func TestRestoreRuntime(t *testing.T) {
	broken := errors.New("Docker 28.5.2 cannot start a container from a checkpoint")
	for _, tc := range []struct {
		name    string
		st      shim.Status
		err     error
		status  Status
		finding string
		fix     string
	}{
		{"installed", shim.Status{Path: "/usr/local/bin/containerd-shim-ckpt-v2", Target: "/usr/bin/ckpt", Self: true}, nil, OK,
			"ckpt's runtime io.containerd.ckpt.v2 restores here (/usr/local/bin/containerd-shim-ckpt-v2 -> /usr/bin/ckpt)", ""},
		{"missing", shim.Status{Dirs: []string{"/usr/local/bin", "/usr/bin"}}, nil, Warn,
			"which containerd does not find: no containerd-shim-ckpt-v2 in /usr/local/bin:/usr/bin", "the next ckpt save or resume installs"},
		{"another", shim.Status{Path: "/usr/bin/containerd-shim-ckpt-v2", Target: "/opt/old/ckpt"}, nil, Warn,
			"it is another executable (/opt/old/ckpt)", "makes it a link to this ckpt"},
		{"no containerd here", shim.Status{}, errors.New("no containerd runs here"), Warn,
			"cannot tell whether containerd finds it: no containerd runs here", "run ckpt on the engine's host"},
	} {
		r := runtimeResult(broken, func() (shim.Status, error) { return tc.st, tc.err })
		if r.Status != tc.status || !strings.Contains(r.Finding, tc.finding) || !strings.Contains(r.Fix, tc.fix) {
			t.Errorf("%s: %s %q (fix %q)", tc.name, r.Status, r.Finding, r.Fix)
		}
	}
}
