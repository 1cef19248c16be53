package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/systemd"
	"github.com/ckpt-dev/ckpt/policy"
)

// The man page and completions come from the app: every command is in them.
func TestGenDocs(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	if code, _, stderr := run(t, "gen-docs", "--dir", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	man, err := os.ReadFile(filepath.Join(dir, "man/man8/ckpt.8"))
	if err != nil {
		t.Fatal(err)
	}
	fish, err := os.ReadFile(filepath.Join(dir, "completion/ckpt.fish"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range New(nil, nil).Commands {
		if c.Hidden {
			continue
		}
		if !strings.Contains(string(man), c.Name) || !strings.Contains(string(fish), c.Name) {
			t.Errorf("command %s missing from the man page or the fish completion", c.Name)
		}
	}
	for _, name := range []string{"ckpt.bash", "_ckpt"} {
		if b, err := os.ReadFile(filepath.Join(dir, "completion", name)); err != nil || !strings.Contains(string(b), "--generate-bash-completion") {
			t.Errorf("completion/%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "systemd")); !os.IsNotExist(err) {
		t.Errorf("gen-docs without --units-for wrote systemd units: %v", err)
	}
}

// With --units-for, gen-docs writes the hooks' units as the package
// installs them: for that binary, with the default store, policy file and
// deadline, whatever this host's policy file says.
func TestGenDocsUnits(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	if code, _, stderr := run(t, "gen-docs", "--dir", dir, "--units-for", "/usr/bin/ckpt"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := systemd.PackagedUnits(systemd.Options{Binary: "/usr/bin/ckpt", Policy: policy.DefaultFile, Store: "/var/lib/ckpt", Deadline: policy.DefaultDeadline})
	for name, content := range want {
		got, err := os.ReadFile(filepath.Join(dir, "systemd", name))
		if err != nil || string(got) != content {
			t.Errorf("systemd/%s (%v):\n%s\nwant\n%s", name, err, got, content)
		}
		if !strings.Contains(content, "=/usr/bin/ckpt --store /var/lib/ckpt hook run ") {
			t.Errorf("systemd/%s does not run /usr/bin/ckpt:\n%s", name, content)
		}
	}
	if code, _, _ := run(t, "gen-docs", "--dir", t.TempDir(), "--units-for", "ckpt"); code == 0 {
		t.Error("gen-docs --units-for with a relative path worked")
	}
}
