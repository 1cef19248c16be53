package criu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/hint"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMinVersion(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    int
	}{
		{"6.18.44-fc-v657", 40200},
		{"6.16.0", 40200},
		{"6.16.0-rc1", 40200},
		{"6.17.1-arch1-1", 40200},
		{"7.0.0", 40200},
		{"10.1.2", 40200},
		{"6.15.9", 40100},
		{"6.13.0", 40100},
		{"6.12.9", 31100},
		{"6.1.0-28-amd64", 31100},
		{"6.6.87.2-microsoft-standard-WSL2", 31100},
		{"5.10.0", 31100},
		{"5.19.0", 31100},
		{"4.18.0-553.el8_10.x86_64", 31100},
		{"garbage", 31100},
		{"", 31100},
		{"unknown", 31100},
	} {
		if got := MinVersion(tc.release); got != tc.want {
			t.Errorf("MinVersion(%q) = %d, want %d", tc.release, got, tc.want)
		}
	}
}

func TestKernel(t *testing.T) {
	// Only that it reads something shaped like a release.
	if k := Kernel(); k == "" || k == "unknown" || !strings.Contains(k, ".") {
		t.Errorf("Kernel() = %q", k)
	}
}

func TestFormatVersion(t *testing.T) {
	for _, tc := range []struct {
		v    int
		want string
	}{
		{40201, "4.2.1"},
		{40200, "4.2.0"},
		{31100, "3.11.0"},
		{31907, "3.19.7"},
		{0, "0.0.0"},
	} {
		if got := FormatVersion(tc.v); got != tc.want {
			t.Errorf("FormatVersion(%d) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// block is ckpt's block as it must appear in runc.conf.
const block = "# BEGIN ckpt: established TCP connections are checkpointed and come back closed; file locks are kept\n" +
	"tcp-established\n" +
	"tcp-close\n" +
	"file-locks\n" +
	"# END ckpt\n"

func TestWithBlock(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", block},
		{"user content kept before the block",
			"log-file /var/log/criu.log\nmanage-cgroups\n",
			"log-file /var/log/criu.log\nmanage-cgroups\n" + block},
		{"no trailing newline",
			"manage-cgroups",
			"manage-cgroups\n" + block},
		{"already there", block, block},
		{"already there after user content", "a\n" + block, "a\n" + block},
		{"older block in the middle is replaced in place",
			"before\n" +
				"# BEGIN ckpt: established TCP connections are checkpointed and come back closed\n" +
				"tcp-established\n" +
				"# END ckpt\n" +
				"after 1\nafter 2\n",
			"before\n" + block + "after 1\nafter 2\n"},
		{"block without its newline at the end of the file",
			"before\n" + strings.TrimSuffix(block, "\n"),
			"before\n" + block},
		// "# END ckptafter" is not an END line: the BEGIN line is dropped
		// alone and no user line is lost.
		{"END line run into content",
			"x\n" + strings.TrimSuffix(block, "\n") + "after\n",
			"x\ntcp-established\ntcp-close\nfile-locks\n# END ckptafter\n" + block},
		{"BEGIN without END keeps the user's lines",
			"a\n# BEGIN ckpt: old\nuser-option\n",
			"a\nuser-option\n" + block},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := withBlock(tc.in)
			if got != tc.want {
				t.Errorf("withBlock(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if again := withBlock(got); again != got {
				t.Errorf("not idempotent:\n once  %q\n twice %q", got, again)
			}
			if n := strings.Count(got, "# BEGIN ckpt"); n != 1 {
				t.Errorf("%d blocks in %q", n, got)
			}
		})
	}
}

// setUmask sets the process umask for the test, so file modes do not depend
// on the environment's.
func setUmask(t *testing.T, mask int) {
	old := unix.Umask(mask)
	t.Cleanup(func() { unix.Umask(old) })
}

func TestEnsureRuncConf(t *testing.T) {
	setUmask(t, 0o022)
	for _, tc := range []struct {
		name     string
		existing *string
		want     string
	}{
		{"missing", nil, block},
		{"user lines", ptr("log-file /var/log/criu.log\n"), "log-file /var/log/criu.log\n" + block},
		{"user lines without newline", ptr("manage-cgroups"), "manage-cgroups\n" + block},
		{"current", ptr("x\n" + block + "y\n"), "x\n" + block + "y\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "etc", "criu", "runc.conf")
			if tc.existing != nil {
				must(t, os.MkdirAll(filepath.Dir(path), 0o755))
				must(t, os.WriteFile(path, []byte(*tc.existing), 0o644))
			}
			changed, err := EnsureRuncConf(path)
			must(t, err)
			wantChanged := tc.existing == nil || *tc.existing != tc.want
			if changed != wantChanged {
				t.Errorf("first call: changed = %v, want %v", changed, wantChanged)
			}
			check := func() {
				t.Helper()
				b, err := os.ReadFile(path)
				must(t, err)
				if string(b) != tc.want {
					t.Errorf("file holds %q, want %q", b, tc.want)
				}
				st, err := os.Stat(path)
				must(t, err)
				if st.Mode().Perm() != 0o644 {
					t.Errorf("mode %v, want 0644", st.Mode().Perm())
				}
				ents, err := os.ReadDir(filepath.Dir(path))
				must(t, err)
				if len(ents) != 1 {
					t.Errorf("directory holds %v, want only runc.conf", ents)
				}
			}
			check()
			changed, err = EnsureRuncConf(path)
			must(t, err)
			if changed {
				t.Error("second call: changed = true")
			}
			check()
		})
	}
}

func TestEnsureRuncConfUnreadable(t *testing.T) {
	// A directory where the file should be.
	path := filepath.Join(t.TempDir(), "runc.conf")
	must(t, os.Mkdir(path, 0o755))
	if changed, err := EnsureRuncConf(path); err == nil || changed {
		t.Errorf("EnsureRuncConf on a directory = %v, %v", changed, err)
	}
}

// A runc.conf that is a symbolic link, to a file kept by configuration
// management, stays one: the file it points to is updated, and keeps its
// mode.
func TestEnsureRuncConfSymlink(t *testing.T) {
	setUmask(t, 0o022)
	root := t.TempDir()
	real := filepath.Join(root, "managed", "runc.conf")
	must(t, os.MkdirAll(filepath.Dir(real), 0o755))
	must(t, os.WriteFile(real, []byte("log-file /x.log\n"), 0o600))
	path := filepath.Join(root, "etc", "criu", "runc.conf")
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.Symlink(real, path))

	for range 2 { // EnsureRuncConf, then WithRuncOptions and back
		_, err := EnsureRuncConf(path)
		must(t, err)
		must(t, WithRuncOptions(path, []string{"cgroup-root /x"}, func() error {
			if b, err := os.ReadFile(real); err != nil || !strings.Contains(string(b), "cgroup-root /x\n") {
				t.Errorf("during WithRuncOptions, the file holds %q, %v", b, err)
			}
			return nil
		}))
		if got, err := os.Readlink(path); err != nil || got != real {
			t.Fatalf("runc.conf is no longer a link to %s: %q, %v", real, got, err)
		}
		b, err := os.ReadFile(real)
		must(t, err)
		if want := "log-file /x.log\n" + block; string(b) != want {
			t.Errorf("file holds %q, want %q", b, want)
		}
		st, err := os.Stat(real)
		must(t, err)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600 kept", st.Mode().Perm())
		}
		for _, dir := range []string{filepath.Dir(path), filepath.Dir(real)} {
			if ents, err := os.ReadDir(dir); err != nil || len(ents) != 1 {
				t.Errorf("%s holds %v, %v; want only runc.conf", dir, ents, err)
			}
		}
	}
}

func ptr(s string) *string { return &s }

const sampleLog = `(00.000001) Version: 4.2 (gitid 0)
(00.000002) Running on host Linux 6.18.44
(00.000003) one
(00.000004) two
(00.000005) Error (criu/a.c:1): first
(00.000006) three
(00.000007) Error (criu/b.c:2): second
(00.000008) four
(00.000009) five
(00.000010) six
(00.000011) seven
(00.000012) Error (criu/c.c:3): third
(00.000013) after third
(00.000014) an error in lowercase only
(00.000015) tail`

func TestErrorLines(t *testing.T) {
	for _, tc := range []struct {
		name    string
		log     string
		context int
		want    []string
	}{
		{"context 2, overlapping contexts once", sampleLog, 2, []string{
			"(00.000003) one",
			"(00.000004) two",
			"(00.000005) Error (criu/a.c:1): first",
			"(00.000006) three",
			"(00.000007) Error (criu/b.c:2): second",
			"(00.000010) six",
			"(00.000011) seven",
			"(00.000012) Error (criu/c.c:3): third",
		}},
		{"context 0", sampleLog, 0, []string{
			"(00.000005) Error (criu/a.c:1): first",
			"(00.000007) Error (criu/b.c:2): second",
			"(00.000012) Error (criu/c.c:3): third",
		}},
		{"context larger than the log before", "a\nError x\nb\n", 5, []string{"a", "Error x"}},
		{"first line", "Error first\nb\nc\n", 2, []string{"Error first"}},
		{"adjacent errors", "a\nb\nError 1\nError 2\nError 3\n", 2, []string{"a", "b", "Error 1", "Error 2", "Error 3"}},
		{"no trailing newline", "x\nError last", 1, []string{"x", "Error last"}},
		{"no errors", "a\nb\nerror\n", 2, nil},
		{"empty", "", 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ErrorLines([]byte(tc.log), tc.context)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ErrorLines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestExplainUnchanged(t *testing.T) {
	if Explain(nil, nil) != nil {
		t.Error("Explain(nil, nil) != nil")
	}
	if Explain(nil, []byte("Error x\n")) != nil {
		t.Error("Explain(nil, log) != nil")
	}
	orig := errors.New("Error response from daemon: No such container: web")
	if got := Explain(orig, nil); got != orig {
		t.Errorf("Explain changed an error that is not about CRIU: %v", got)
	}
	if got := Explain(orig, nil); hint.Of(got) != "" {
		t.Errorf("hint %q", hint.Of(got))
	}
}

func TestExplain(t *testing.T) {
	const (
		tcpLine    = "(00.050000) Error (criu/sk-inet.c:200): inet: Connected TCP socket, consider using --tcp-established option."
		rlimitLine = "(00.003000) Error (criu/cr-dump.c:100): Can't get rlimit 0: Operation not permitted"
	)
	logWith := func(line string) string {
		return "(00.000001) Version: 4.2\n(00.000002) Dumping task 1\n(00.000003) Seized task 1\n(00.000004) About to dump sockets\n" +
			line + "\n(00.060000) Unlock network\n(00.070000) Dumping finished with errors\n"
	}
	errText := func(path string) string {
		return "Cannot checkpoint container web: runc: checkpoint failed: criu failed: type NOTIFY errno 0\nlog file: " + path
	}
	runcText := func(path string) string {
		return "failed to create checkpoint: runc checkpoint failed: exit status 1: path= " + path + ": unknown"
	}

	onDisk := filepath.Join(t.TempDir(), "criu-dump.log")
	must(t, os.WriteFile(onDisk, []byte(logWith("(00.000100) Error (criu/files.c:1): something unknown")), 0o600))

	for _, tc := range []struct {
		name     string
		err      string
		captured *string
		// wantMsg must appear in Error() in order; wantHint in the hint.
		wantMsg  []string
		wantHint []string
	}{
		{
			name:     "tcp-established, log deleted, captured",
			err:      runcText("/nonexistent/criu-dump.log"),
			captured: ptr(logWith(tcpLine)),
			wantMsg: []string{runcText("/nonexistent/criu-dump.log"), "\nCRIU log:\n  ",
				"(00.000003) Seized task 1\n  (00.000004) About to dump sockets\n  " + tcpLine},
			wantHint: []string{"tcp-established", "/etc/criu/runc.conf",
				"log: /nonexistent/criu-dump.log (deleted by the engine; its errors are quoted above)"},
		},
		{
			name:     "rlimit",
			err:      runcText("/nonexistent/criu-dump.log"),
			captured: ptr(logWith(rlimitLine)),
			wantMsg:  []string{"CRIU log:", rlimitLine},
			wantHint: []string{"CAP_SYS_RESOURCE"},
		},
		{
			name:     "log file: form",
			err:      errText("/nonexistent/restore.log"),
			captured: ptr(logWith(tcpLine)),
			wantMsg:  []string{"CRIU log:", tcpLine},
			wantHint: []string{"tcp-established", "log: /nonexistent/restore.log (deleted"},
		},
		{
			name:     "captured without a path in the error",
			err:      "container start failed",
			captured: ptr(logWith("(00.1) Error (criu/x.c:1): Unsupported proto 262 for socket")),
			wantMsg:  []string{"container start failed\nCRIU log:\n", "Unsupported proto 262"},
			wantHint: []string{"multipathtcp=0", "log: (captured while the engine ran CRIU)"},
		},
		{
			name:     "unrecognised failure read from the log on disk",
			err:      runcText(onDisk),
			wantMsg:  []string{"CRIU log:", "Error (criu/files.c:1): something unknown"},
			wantHint: []string{"see the whole log: " + onDisk},
		},
		{
			name:     "log with no Error lines",
			err:      runcText("/nonexistent/criu-dump.log"),
			captured: ptr("(00.1) all fine\n"),
			wantMsg:  []string{runcText("/nonexistent/criu-dump.log")},
			wantHint: []string{"see the whole log: /nonexistent/criu-dump.log"},
		},
		{
			name:     "log cannot be read",
			err:      runcText("/nonexistent/criu-dump.log"),
			wantMsg:  []string{runcText("/nonexistent/criu-dump.log")},
			wantHint: []string{"CRIU's log /nonexistent/criu-dump.log could not be read", "no such file"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := errors.New(tc.err)
			wrapped := fmt.Errorf("save web: %w", orig)
			var captured []byte
			if tc.captured != nil {
				captured = []byte(*tc.captured)
			}
			got := Explain(wrapped, captured)
			if got == nil {
				t.Fatal("Explain returned nil")
			}
			msg := got.Error()
			rest := msg
			for _, w := range tc.wantMsg {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("message %q lacks %q (in order)", msg, w)
					break
				}
				rest = rest[i+len(w):]
			}
			if !strings.HasPrefix(msg, wrapped.Error()) {
				t.Errorf("message %q does not start with the original %q", msg, wrapped)
			}
			if captured != nil && strings.Contains(msg, "CRIU log:") != (len(ErrorLines(captured, 2)) > 0) {
				t.Errorf("message %q: CRIU log quoted iff there are Error lines", msg)
			}
			h := hint.Of(got)
			for _, w := range tc.wantHint {
				if !strings.Contains(h, w) {
					t.Errorf("hint %q lacks %q", h, w)
				}
			}
			if !errors.Is(got, orig) || !errors.Is(got, wrapped) {
				t.Error("errors.Is does not reach the original error")
			}
			// The chain: hint -> quoted log -> original.
			inner := errors.Unwrap(got)
			if inner == nil {
				t.Fatal("errors.Unwrap(Explain(...)) == nil")
			}
			for e := inner; e != nil; e = errors.Unwrap(e) {
				if e == wrapped {
					return
				}
			}
			t.Error("errors.Unwrap chain does not reach the original error")
		})
	}
}

func TestExplainKnownHints(t *testing.T) {
	for _, tc := range []struct {
		line, hint string
	}{
		{"Error (criu/cr-dump.c:1): Can't get rlimit 7: Operation not permitted", "CAP_SYS_RESOURCE"},
		{"Error (criu/sk-inet.c:2): inet: Connected TCP socket, consider using --tcp-established option.", "tcp-established"},
		{"Error (criu/sk-inet.c:3): inet: Unsupported proto 262 for socket 1", "Multipath TCP"},
		{"Error (criu/vdso.c:4): vdso: Unexpected rt vDSO area bounds", "vDSO"},
		{"Error (criu/sockets.c:5): Can't get 1:16 opt for socket 3", "kernel >= 6.16"},
		{"Error (criu/files-reg.c:6): File /app/data has bad size 10 (expect 20)", "changed or is missing"},
		{"Error (criu/files-reg.c:2203): File var/lib/postgresql/15/main has bad mode 040755 (expect 040700)", "chmod it back"},
		{"Error (criu/proc_parse.c:502): Unknown shit 600 (anon_inode:[io_uring])", "innodb_use_native_aio=0"},
		{"Error (criu/pagemap-cache.c:54): pagemap-cache: pmc_init: Can't allocate 17179803648 bytes", "innodb_buffer_pool_size_max"},
		{"Error (criu/file-lock.c:110): Some file locks are hold by dumping tasks! You can try --file-locks to dump them.", "file-locks"},
		{"Error (compel/src/lib/infect.c:262): Unseizable non-zombie 27711 found, state D, err -1/4", "uninterruptible sleep"},
	} {
		got := Explain(errors.New("x path= /nonexistent/criu-dump.log: unknown"), []byte("a\n"+tc.line+"\n"))
		if h := hint.Of(got); !strings.Contains(h, tc.hint) {
			t.Errorf("%s: hint %q lacks %q", tc.line, h, tc.hint)
		}
	}
}

func TestWithRuncOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runc.conf")
	must(t, os.WriteFile(path, []byte("log-file /x.log\n"), 0o644))
	extra := "cgroup-root /system.slice/docker-new.scope"
	read := func() string {
		b, err := os.ReadFile(path)
		must(t, err)
		return string(b)
	}
	for _, fnErr := range []error{nil, errors.New("restore failed")} {
		var during string
		err := WithRuncOptions(path, []string{extra}, func() error {
			during = read()
			return fnErr
		})
		if err != fnErr {
			t.Errorf("WithRuncOptions returned %v, want %v", err, fnErr)
		}
		if want := "log-file /x.log\n" + strings.Replace(block, "# END ckpt\n", extra+"\n# END ckpt\n", 1); during != want {
			t.Errorf("during the restore the file holds %q, want %q", during, want)
		}
		if after := read(); after != "log-file /x.log\n"+block {
			t.Errorf("after the restore (fn error %v) the file holds %q", fnErr, after)
		}
	}

	// A crash between the two writes leaves the line; the next save or
	// resume drops it.
	must(t, os.WriteFile(path, []byte(withBlock("", extra)), 0o644))
	changed, err := EnsureRuncConf(path)
	if err != nil || !changed || read() != block {
		t.Errorf("EnsureRuncConf after a crash: changed %v, err %v, file %q", changed, err, read())
	}

	// Two restores at once: each sees only its own line.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := fmt.Sprintf("cgroup-root /c%d", i)
			err := WithRuncOptions(path, []string{mine}, func() error {
				if got := read(); strings.Count(got, "cgroup-root") != 1 || !strings.Contains(got, mine) {
					return fmt.Errorf("restore %d sees %q", i, got)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"Error (compel/src/lib/infect.c:262): Unseizable non-zombie 27711 found, state D, err -1/4", true},
		{"Error (criu/cr-dump.c:1655): Timeout reached. Try to interrupt: 0", true},
		{"Error (criu/seize.c:635): Unable to freeze cgroup /sys/fs/cgroup/freezer/docker/0123 (200 x 100ms attempts, timeout: 20s)", true},
		{"Error (criu/files-reg.c:6): File /app/data has bad size 10 (expect 20)", false},
	} {
		got := Explain(errors.New("x path= /nonexistent/criu-dump.log: unknown"), []byte("a\n"+tc.line+"\n"))
		if Transient(got) != tc.want {
			t.Errorf("%s: Transient = %v", tc.line, !tc.want)
		}
	}
	if Transient(nil) {
		t.Error("Transient(nil)")
	}
}
