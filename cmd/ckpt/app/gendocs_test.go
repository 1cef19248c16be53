package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if b, err := os.ReadFile(filepath.Join(dir, "completion/ckpt.bash")); err != nil || !strings.Contains(string(b), "--generate-bash-completion") {
		t.Errorf("bash completion: %v", err)
	}
}

// The docker CLI's plugin protocol: metadata, then "docker-ckpt ckpt ...".
func TestPluginMode(t *testing.T) {
	noEnv(t)
	var out strings.Builder
	if _, done := asPlugin([]string{"/usr/lib/docker/cli-plugins/docker-ckpt", "docker-cli-plugin-metadata"}, &out); !done ||
		!strings.Contains(out.String(), `"SchemaVersion": "0.1.0"`) || !strings.Contains(out.String(), `"Vendor": "ckpt"`) {
		t.Fatalf("metadata: %v %s", done, out.String())
	}
	args, done := asPlugin([]string{"docker-ckpt", "ckpt", "ls", "--json"}, &out)
	if done || strings.Join(args, " ") != "ckpt ls --json" {
		t.Fatalf("args %v", args)
	}
	if args, _ := asPlugin([]string{"ckpt", "docker-cli-plugin-metadata"}, &out); len(args) != 2 {
		t.Fatal("a binary not named docker-ckpt answered the plugin call")
	}
}
