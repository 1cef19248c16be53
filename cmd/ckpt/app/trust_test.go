package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ckpt trust: a store's key, trusting another store's by its line or its
// .pub file, listing, refusals with the reason, removal by fingerprint.
func TestTrustCommands(t *testing.T) {
	noEnv(t)
	a, b := t.TempDir(), t.TempDir()
	code, key, stderr := run(t, "--store", a, "trust", "key")
	if code != exitOK || !strings.HasPrefix(key, "ssh-ed25519 ") || !strings.Contains(key, " ckpt@") || stderr != "" {
		t.Fatalf("trust key = %d %q %q", code, key, stderr)
	}
	if code, again, _ := run(t, "--store", a, "trust", "key"); code != exitOK || again != key {
		t.Errorf("a second trust key printed %q, want the same key", again)
	}
	pub := filepath.Join(a, "keys", "identity", "ckpt_ed25519.pub")
	if st, err := os.Stat(pub); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v", pub, err)
	}

	code, stdout, stderr := run(t, "--store", b, "trust", "add", "host-a", pub)
	if code != exitOK || !strings.HasPrefix(stdout, "trusted host-a: key SHA256:") || !strings.Contains(stdout, "its checkpoints come back whole") {
		t.Fatalf("trust add FILE = %d %q %q", code, stdout, stderr)
	}
	fp := strings.Fields(stdout)[3]
	code, stdout, _ = run(t, "--store", b, "trust", "ls")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitOK || len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME KEY COMMENT" || !strings.HasPrefix(lines[1], "host-a  "+fp) {
		t.Fatalf("trust ls = %d\n%s", code, stdout)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"trust", "add", "again", strings.TrimSpace(key)}, exitError, "ckpt: error: key " + fp + " is trusted already, as host-a\nckpt: hint: nothing was changed\n"},
		{[]string{"trust", "add", "x", "ssh-ed25519 AAAAnotakey"}, exitUsage, "ckpt: error: ssh-ed25519 AAAAnotakey: not an SSH public key"},
		{[]string{"trust", "add", "x", "/nonexistent"}, exitUsage, "ckpt: error: /nonexistent is neither a public key line nor a readable file"},
		{[]string{"trust", "add", "x"}, exitUsage, "ckpt: error: trust add takes NAME and KEY"},
		{[]string{"trust", "rm", "nobody"}, exitError, "ckpt: error: no trusted signer nobody\nckpt: hint: ckpt trust ls lists them, by name and key fingerprint\n"},
	} {
		code, _, stderr := run(t, append([]string{"--store", b}, tc.args...)...)
		if code != tc.code || !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("%v = %d %q, want %d %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	if code, stdout, _ := run(t, "--store", b, "trust", "rm", fp); code != exitOK || stdout != "no longer trusted: host-a, key "+fp+"\n" {
		t.Errorf("trust rm = %d %q", code, stdout)
	}
	if code, stdout, _ := run(t, "--store", b, "trust", "ls", "--json"); code != exitOK || stdout != "" { // no signer, and no key of its own yet
		t.Errorf("trust ls --json after rm = %d %q", code, stdout)
	}
}
