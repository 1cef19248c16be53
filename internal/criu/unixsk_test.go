package criu

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeProc builds a /proc with processes: pid -> pid namespace, command
// line, and fd links.
func fakeProc(t *testing.T, procs map[string]struct {
	ns, cmd string
	fds     []string
}) {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, pid)
		must(t, os.MkdirAll(filepath.Join(dir, "fd"), 0o755))
		must(t, os.MkdirAll(filepath.Join(dir, "ns"), 0o755))
		must(t, os.Symlink(p.ns, filepath.Join(dir, "ns", "pid")))
		must(t, os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.ReplaceAll(p.cmd, " ", "\x00")+"\x00"), 0o644))
		for i, fd := range p.fds {
			must(t, os.Symlink(fd, filepath.Join(dir, "fd", string(rune('0'+i)))))
		}
	}
	must(t, os.Mkdir(filepath.Join(root, "self"), 0o755))
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
}

type proc = struct {
	ns, cmd string
	fds     []string
}

func TestExternalUnixPeers(t *testing.T) {
	fakeProc(t, map[string]proc{
		"100": {"pid:[1]", "mariadbd --user=mysql", []string{"/dev/null", "socket:[201]", "socket:[202]"}},
		"300": {"pid:[1]", "mariadb -S /run/mysqld/mysqld.sock", []string{"socket:[101]"}},
	})
	log := []byte("(00.1) unix: \tDumping extern: ino 101 peer_ino 201 family    1 type    1 state  1 name null\n" +
		"(00.1) unix: \tRunaway socket: ino 101 peer_ino 201 family    1 type    1 state  1 name null\n" +
		"(00.1) unix: \tRunaway socket: ino 999 peer_ino 202 family    1 type    1 state  1 name null\n" +
		"(00.1) Error (criu/sk-unix.c:874): unix: External socket is used. Consider using --ext-unix-sk option.\n")
	got := ExternalUnixPeers(log)
	want := []ExternalPeer{
		{Outside: Process{300, "mariadb -S /run/mysqld/mysqld.sock"}, Inside: Process{100, "mariadbd --user=mysql"}},
		{Outside: Process{}, Inside: Process{100, "mariadbd --user=mysql"}},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ExternalUnixPeers = %+v, want %+v", got, want)
	}
	h := explainExternal(log)
	for _, s := range []string{"docker exec session", "pid 300 (mariadb -S /run/mysqld/mysqld.sock) is connected to pid 100 (mariadbd --user=mysql)",
		"a process that has exited is connected to pid 100", "end that session"} {
		if !strings.Contains(h, s) {
			t.Errorf("hint %q lacks %q", h, s)
		}
	}
	if ExternalUnixPeers([]byte("no such line")) != nil {
		t.Error("peers found in a log without Runaway lines")
	}
}

func TestIOURingUsers(t *testing.T) {
	fakeProc(t, map[string]proc{
		"10": {"pid:[7]", "/usr/local/bin/entry", []string{"pipe:[5]"}},
		"11": {"pid:[7]", "mariadbd --user=mysql", []string{"anon_inode:[eventpoll]", "anon_inode:[io_uring]", "anon_inode:[io_uring]"}},
		"12": {"pid:[8]", "another container's", []string{"anon_inode:[io_uring]"}},
	})
	got := IOURingUsers(10)
	if want := []Process{{11, "mariadbd --user=mysql"}}; !slices.Equal(got, want) {
		t.Fatalf("IOURingUsers = %+v, want %+v", got, want)
	}
	if got := IOURingUsers(4242); got != nil {
		t.Errorf("IOURingUsers of a missing process = %+v", got)
	}
}
