package app

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/inspect"
)

// The checkpoint in internal/inspect/testdata: a small Go HTTP server
// listening on :8080, saved by ckpt, without its memory pages.
const (
	inspectContainer = "fixture"
	inspectName      = "20261127T122619Z"
)

// inspectStore copies the fixture's store to a temporary directory.
func inspectStore(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "..", "internal", "inspect", "testdata", "store")
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func inspectDir(root string) string {
	return filepath.Join(root, format.ContainersDir, inspectContainer, format.CheckpointsDir, inspectName)
}

func TestInspect(t *testing.T) {
	noEnv(t)
	root := inspectStore(t)
	for _, arg := range []string{"fixture", "fixture:" + inspectName} {
		code, stdout, stderr := run(t, "--store", root, "inspect", arg)
		if code != exitOK || stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, stderr)
		}
		for _, want := range []string{
			"checkpoint      fixture:20261127T122619Z\n",
			"mode            hot (memory and data)\n",
			"left running    no (the container stopped at the save)\n",
			"restart policy  no\n",
			"container       id 6936683e7076, image ckpt-testapp:integration (sha256:9aa615815082)\n",
			"made on         vm\n",
			"kernel          6.18.44-fc-v657 (amd64)\n",
			"engine          Docker 20.10.24+dfsg1, API 1.41\n",
			"storage driver  overlay2\n",
			"cgroup          v1\n",
			"CRIU            4.2.1\n",
			"processes: 1, memory 1012.0 KiB (253 pages of 4.0 KiB)\n",
			"  PID  PPID  THREADS  MEMORY      COMM  COMMAND\n",
			"  1    0     4        1012.0 KiB  app   -\n",
			"  pid 1: no command line: criu/pages-1.img is missing\n",
			"open files of pid 1 (app):\n",
			"  7   file                    /tmp/held.txt\n",
			"  8   file                    /data/history.log\n",
			"  9   tcp6       listening    [::]:8080\n",
			"  10  tcp6       established  172.17.0.2:8080 -> 172.17.0.1:42126\n",
			"  volume fixturedata  /data  60 B, 1 entry\n",
			"  no bind mounts\n",
			"writable layer: 3 entries, 25 B, 0 deleted paths\n",
			"timings: checkpoint 209ms, images 5ms, volume fixturedata 2ms, layer 0s, total 217ms\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s: output lacks %q:\n%s", arg, want, stdout)
			}
		}
	}

	code, stdout, stderr := run(t, "--store", root, "inspect", "--json", "fixture")
	if code != exitOK || stderr != "" {
		t.Fatalf("--json: exit %d, stderr %q", code, stderr)
	}
	jsonLines(t, stdout)
	var line struct {
		Type, Command, Ref string
		Report             inspect.Report
	}
	if err := json.Unmarshal([]byte(stdout), &line); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if line.Type != "result" || line.Command != "inspect" || line.Ref != "fixture:"+inspectName {
		t.Errorf("--json: %+v", line)
	}
	if r := line.Report; r.Container != "fixture" || r.Name != inspectName || len(r.Processes) != 1 || r.Processes[0].Comm != "app" || r.MemoryBytes != 1036288 {
		t.Errorf("--json: %+v", r)
	}
}

func TestInspectErrors(t *testing.T) {
	noEnv(t)
	root := inspectStore(t)
	for _, tc := range []struct {
		args       []string
		code       int
		wantStderr string
	}{
		{[]string{"inspect"}, exitUsage, usage("inspect", "inspect takes one checkpoint: CONTAINER or CONTAINER:NAME")},
		{[]string{"inspect", "a", "b"}, exitUsage, usage("inspect", "inspect takes one checkpoint: CONTAINER or CONTAINER:NAME")},
		{[]string{"inspect", "../x"}, exitUsage, usage("inspect", `invalid container name "../x"`)},
		{[]string{"inspect", "fixture:"}, exitUsage, usage("inspect", `missing checkpoint name after ":" in "fixture:"`)},
		{[]string{"inspect", ":cp1"}, exitUsage, usage("inspect", `missing container name before ":" in ":cp1"`)},
		{[]string{"inspect", "fixture:../x"}, exitUsage, usage("inspect", `invalid checkpoint name "../x"`)},
		{[]string{"inspect", "--bogus", "fixture"}, exitUsage, usage("inspect", "flag provided but not defined: -bogus")},
		{[]string{"inspect", "fixture:nope"}, exitError, "ckpt: error: no checkpoint \"nope\" for container fixture\nckpt: hint: ckpt ls fixture lists its checkpoints\n"},
		{[]string{"inspect", "web"}, exitError, "ckpt: error: no checkpoint for container web in " + root + "\nckpt: hint: save one first with ckpt save web; ckpt ls lists the checkpoints in the store\n"},
	} {
		code, _, stderr := run(t, append([]string{"--store", root}, tc.args...)...)
		if code != tc.code || stderr != tc.wantStderr {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", tc.args, code, stderr, tc.code, tc.wantStderr)
		}
	}

	// A damaged image: the error names it.
	pstree := filepath.Join(inspectDir(root), "criu", "pstree.img")
	b, err := os.ReadFile(pstree)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pstree, b[:len(b)-1], 0o600)
	code, stdout, stderr := run(t, "--store", root, "inspect", "fixture")
	want := "ckpt: error: cannot read checkpoint fixture:20261127T122619Z: criu/pstree.img: truncated: entry 1 needs 16 bytes, 15 left\n" +
		"ckpt: hint: the image is damaged, or was written by a CRIU whose images this ckpt cannot read; ckpt resume checks every file's sha256 before it uses any\n"
	if code != exitError || stdout != "" || stderr != want {
		t.Errorf("damaged image: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// A cold checkpoint has no process state.
func TestInspectCold(t *testing.T) {
	noEnv(t)
	root := inspectStore(t)
	dir := inspectDir(root)
	var m map[string]any
	b, err := os.ReadFile(filepath.Join(dir, format.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["mode"] = format.ModeCold
	b, _ = json.Marshal(m)
	sum := sha256.Sum256(b)
	os.WriteFile(filepath.Join(dir, format.ManifestFile), b, 0o600)
	os.WriteFile(filepath.Join(dir, format.ManifestSumFile), []byte(hex.EncodeToString(sum[:])+"\n"), 0o600)
	os.RemoveAll(filepath.Join(dir, format.ImagesDir))

	code, stdout, stderr := run(t, "--store", root, "inspect", "fixture")
	if code != exitOK || stderr != "" || !strings.Contains(stdout, "mode            cold (data only)\n") || !strings.Contains(stdout, "\nprocesses: no process state (cold checkpoint)\n") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	code, stdout, _ = run(t, "--store", root, "inspect", "--json", "fixture")
	jsonLines(t, stdout)
	if code != exitOK || !strings.Contains(stdout, `"processState":"no process state (cold checkpoint)"`) || !strings.Contains(stdout, `"processes":[]`) {
		t.Errorf("--json: exit %d:\n%s", code, stdout)
	}
}

func TestArgvString(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"/app"}, "/app"},
		{[]string{"nginx", "-g", "daemon off;"}, `nginx -g "daemon off;"`},
		{[]string{"sh", "-c", "", "x\ty"}, `sh -c "" "x\ty"`},
	} {
		if got := argvString(tc.argv); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.argv, got, tc.want)
		}
	}
}
