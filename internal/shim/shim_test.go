package shim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A create as containerd's runc shim (go-runc) writes it becomes the
// restore containerd's runc shim would run for a checkpoint.
func TestRestoreArgs(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"plain", []string{"--root", "/run/containerd/runc/moby", "--log", "/b/log.json", "--log-format", "json",
			"create", "--bundle", "/b", "--pid-file", "/b/init.pid", id},
			[]string{"--root", "/run/containerd/runc/moby", "--log", "/b/log.json", "--log-format", "json",
				"restore", "--detach", "--no-subreaper", "--bundle", "/b", "--image-path", "/img", "--work-path", "/work",
				"--pid-file", "/b/init.pid", id}},
		{"terminal, no pivot, flags with =", []string{"--root=/r", "--debug", "create", "-b", "/b", "--console-socket=/tmp/pty.sock",
			"--pid-file", "/b/init.pid", "--no-pivot", "--no-new-keyring", id},
			[]string{"--root=/r", "--debug", "restore", "--detach", "--no-subreaper", "--bundle", "/b", "--image-path", "/img",
				"--work-path", "/work", "--pid-file", "/b/init.pid", "--console-socket", "/tmp/pty.sock", "--no-pivot", id}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := parseRunc(tc.args)
			if inv.cmd != "create" || inv.id() != id {
				t.Fatalf("parsed %+v", inv)
			}
			got := restoreArgs(inv.globals, inv, &Request{Images: "/img", Work: "/work"})
			if !slices.Equal(got, tc.want) {
				t.Errorf("restore args\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// containerd passes runc no options for a runtime the engine did not
// configure: the systemd cgroup driver is told by the bundle's cgroupsPath.
func TestWithCgroupDriver(t *testing.T) {
	for path, want := range map[string]bool{
		"system.slice:docker:abc": true,
		":docker:abc":             true,
		"/docker/abc":             false,
		"":                        false,
		"/a:b:c":                  false,
	} {
		dir := t.TempDir()
		b, _ := json.Marshal(map[string]any{"linux": map[string]any{"cgroupsPath": path}})
		must(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600))
		got := withCgroupDriver([]string{"--root", "/r"}, dir)
		if slices.Contains(got, "--systemd-cgroup") != want {
			t.Errorf("%q: %q", path, got)
		}
	}
	if got := withCgroupDriver([]string{"--systemd-cgroup"}, t.TempDir()); len(got) != 1 {
		t.Errorf("the flag given twice: %q", got)
	}
}

func TestRequest(t *testing.T) {
	RunDir = t.TempDir()
	id := strings.Repeat("cd", 32)
	work := t.TempDir()
	withdraw, err := Ask(id, "/store/.tmp-x.placed/criu", work, []string{"cgroup-root /system.slice/docker-" + id + ".scope"})
	must(t, err)
	if b, _ := os.ReadFile(filepath.Join(work, "criu.conf")); string(b) != "leave-stopped\ncgroup-root /system.slice/docker-"+id+".scope\n" {
		t.Errorf("criu.conf %q", b)
	}
	path := filepath.Join(RunDir, "restore", id+".json")
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("request file: %v", err)
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Errorf("request directory mode %v", st.Mode())
	}
	if r, err := takeRequest("other"); r != nil || err != nil {
		t.Errorf("another container's: %+v %v", r, err)
	}
	r, err := takeRequest(id)
	if err != nil || r == nil || r.Images != "/store/.tmp-x.placed/criu" || r.Pid != os.Getpid() || r.Config != filepath.Join(work, "criu.conf") {
		t.Fatalf("takeRequest = %+v, %v", r, err)
	}
	if r, _ := takeRequest(id); r != nil {
		t.Error("a request was taken twice")
	}
	if !withdraw() {
		t.Error("withdraw says the request was not taken")
	}

	// Left behind: by a process that is gone, or long ago. Never taken,
	// and removed.
	for name, req := range map[string]Request{
		"gone": {Images: "/i", Work: "/w", Pid: 1 << 30, Created: time.Now()},
		"old":  {Images: "/i", Work: "/w", Pid: os.Getpid(), Created: time.Now().Add(-time.Hour)},
	} {
		b, _ := json.Marshal(req)
		must(t, os.WriteFile(filepath.Join(RunDir, "restore", id+".json"), b, 0o600))
		if r, err := takeRequest(id); r != nil || err != nil {
			t.Errorf("%s: taken %+v %v", name, r, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: left there", name)
		}
	}
	// Not root's own: refused.
	b, _ := json.Marshal(Request{Images: "/i", Work: "/w", Pid: os.Getpid(), Created: time.Now()})
	must(t, os.WriteFile(path, b, 0o666))
	must(t, os.Chmod(path, 0o666))
	if r, err := takeRequest(id); r != nil || err == nil {
		t.Errorf("a world-writable request: %+v %v", r, err)
	}
	// A link is not followed.
	os.Remove(path)
	must(t, os.Symlink("/etc/hostname", path))
	if r, _ := takeRequest(id); r != nil {
		t.Errorf("a link was followed: %+v", r)
	}
	if _, err := Ask("../x", "/i", work, nil); err == nil {
		t.Error("an id with a path was taken")
	}
	if _, err := Ask(id, "/i", work, []string{"cgroup-root /x libdir /tmp"}); err == nil {
		t.Error("an option ckpt does not set was written")
	}
}

// The runc and the runc shim the runtime runs are the real ones, never
// ckpt (self) on the same PATH.
func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	ours, real := filepath.Join(dir, "ours"), filepath.Join(dir, "real")
	self := filepath.Join(dir, "ckpt")
	must(t, os.WriteFile(self, []byte("#!/bin/sh\n"), 0o755))
	for _, d := range []string{ours, real} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.Symlink(self, filepath.Join(ours, "runc")))
	must(t, os.WriteFile(filepath.Join(real, "runc"), []byte("#!/bin/sh\n"), 0o755))
	got, err := lookPath("runc", ours+":relative:"+real, self)
	if err != nil || got != filepath.Join(real, "runc") {
		t.Errorf("lookPath = %q, %v", got, err)
	}
	if _, err := lookPath("runc", ours, self); err == nil {
		t.Error("found ckpt itself")
	}
}

func TestEnsureLink(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bin", Binary)
	must(t, ensureLink(p, "/old/ckpt"))
	must(t, ensureLink(p, "/usr/bin/ckpt"))
	if got, _ := os.Readlink(p); got != "/usr/bin/ckpt" {
		t.Errorf("link to %q", got)
	}
	if left, _ := filepath.Glob(p + ".tmp-*"); len(left) > 0 {
		t.Errorf("left %v", left)
	}
}

// Install puts the shim where containerd looks: on its PATH, /usr/local/bin
// first; Check finds it there and knows it for this ckpt.
func TestInstall(t *testing.T) {
	root := t.TempDir()
	procRoot = filepath.Join(root, "proc")
	t.Cleanup(func() { procRoot = "/proc" })
	bin, other := filepath.Join(root, "usr/local/bin"), filepath.Join(root, "usr/bin")
	for _, d := range []string{bin, other, filepath.Join(procRoot, "self/ns"), filepath.Join(procRoot, "4242/ns"), filepath.Join(procRoot, "77/ns")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.Symlink("mnt:[1]", filepath.Join(procRoot, "self/ns/mnt")))
	// Another mount namespace's containerd, then this one's.
	for pid, ns := range map[string]string{"77": "mnt:[2]", "4242": "mnt:[1]"} {
		must(t, os.Symlink(ns, filepath.Join(procRoot, pid, "ns/mnt")))
		must(t, os.WriteFile(filepath.Join(procRoot, pid, "comm"), []byte("containerd\n"), 0o644))
		must(t, os.Symlink(filepath.Join(other, "containerd"), filepath.Join(procRoot, pid, "exe")))
		env := "HOME=/root\x00PATH=" + other + ":" + bin + "\x00"
		if pid == "77" {
			env = "PATH=/nowhere\x00"
		}
		must(t, os.WriteFile(filepath.Join(procRoot, pid, "environ"), []byte(env), 0o644))
	}
	st, err := Check()
	must(t, err)
	if st.Path != "" || !slices.Equal(st.Dirs, []string{other, bin}) {
		t.Fatalf("before: %+v", st)
	}
	path, err := Install()
	must(t, err)
	if path != filepath.Join(bin, Binary) {
		t.Errorf("installed at %s", path)
	}
	st, err = Check()
	must(t, err)
	if st.Path != path || !st.Self {
		t.Errorf("after: %+v", st)
	}
	if again, err := Install(); err != nil || again != path {
		t.Errorf("second Install = %s, %v", again, err)
	}
}

func TestDispatch(t *testing.T) {
	if _, ok := Dispatch([]string{"/usr/bin/ckpt", "ls"}); ok {
		t.Error("ckpt dispatched")
	}
	t.Setenv(envPath, "")
	os.Unsetenv(envPath)
	if _, ok := Dispatch([]string{"/run/ckpt/runtime/runc", "--version"}); ok {
		t.Error("runc dispatched without the shim's environment")
	}
}
