package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/systemd"
)

func TestPolicyCheck(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	noUnits := t.TempDir()
	const hotCold = "ckpt: hint: make the deadline longer than the timeout, with room for the saves before it, or shorten the timeout\n"
	for _, tc := range []struct {
		name, content  string
		code           int
		stdout, stderr string
	}{
		{"ok.yaml", "deadline: 2m\nparallel: 4\ndefault: {mode: cold}\nrules:\n  - match: {names: [db]}\n    mode: hot\n",
			exitOK, ": ok: 1 rules, default cold, deadline 2m0s, parallel 4\n", ""},
		{"short.yaml", "deadline: 10s\n", exitOK, ": ok: 0 rules, default hot, deadline 10s, parallel 2; 1 warning\n",
			"ckpt: warning: {file}:1: the default saves hot with a timeout of 1m0s, but the deadline is 10s: the shutdown hook saves a " +
				"container hot only while its whole timeout fits in what is left of the deadline, so these containers are always saved cold\n" + hotCold},
		{"long.yaml", "deadline: 45m\n", exitOK, ": ok: 0 rules, default hot, deadline 45m0s, parallel 2; 1 warning\n",
			"ckpt: warning: {file}:1: deadline 45m0s: the shutdown unit gives the hook 45m30s (the deadline plus 30s), more than the " +
				"30m0s systemd allows the whole shutdown (JobTimeoutSec= of poweroff.target and reboot.target): systemd forces the " +
				"power-off while the hook may still be saving\nckpt: hint: keep the deadline under 29m30s, with time to spare for the rest of the shutdown\n"},
		{"limit.yaml", "deadline: 29m30s\n", exitOK, ": ok: 0 rules, default hot, deadline 29m30s, parallel 2\n", ""},
		{"shadowed.yaml", "rules:\n  - match: {names: ['*']}\n    mode: cold\n  - match: {names: [db]}\n", exitOK,
			": ok: 2 rules, default hot, deadline 1m30s, parallel 2; 2 warnings\n",
			"ckpt: warning: {file}:2: the default never applies: rule 1 at line 2 matches every container\n" +
				"ckpt: hint: give that rule's settings to the default and remove the rule, or narrow its match\n" +
				"ckpt: warning: {file}:4: rule 2 at line 4 never matches: rule 1 at line 2 matches every container it would, and the first rule that matches decides\n" +
				"ckpt: hint: remove the rule, or move it before the rules that match first\n"},
		{"bad.yaml", "deadline: 10s\nparallel: 0\n", exitError, "", "ckpt: error: {file}:2: parallel must be at least 1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(tc.name, tc.content)
			code, stdout, stderr := run(t, "policy", "check", "--unit-dir", noUnits, path)
			wantOut := ""
			if tc.stdout != "" {
				wantOut = path + tc.stdout
			}
			if code != tc.code || stdout != wantOut || stderr != strings.ReplaceAll(tc.stderr, "{file}", path) {
				t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit %d\nstdout %q\nstderr %q", code, stdout, stderr,
					tc.code, wantOut, strings.ReplaceAll(tc.stderr, "{file}", path))
			}
		})
	}

	// A shutdown unit installed for this file when the deadline was 1m: its
	// stop timeout, 90s, is too short for a deadline of 5m.
	units := t.TempDir()
	path := write("policy.yaml", "deadline: 5m\n")
	if _, err := systemd.Install(units, systemd.Options{Binary: "/usr/bin/ckpt", Policy: path, Store: "/var/lib/ckpt", Deadline: time.Minute}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "policy", "check", "--unit-dir", units, path)
	want := "ckpt: warning: " + path + ":1: " + filepath.Join(units, systemd.ShutdownUnit) + " stops the hook after 1m30s (TimeoutStopSec=), " +
		"but the deadline 5m0s needs 5m30s (the deadline plus 30s to finish the save in progress): systemd stops the hook first\n" +
		"ckpt: hint: run ckpt hook install again: it sets TimeoutStopSec= from the deadline\n"
	if code != exitOK || stderr != want || !strings.HasSuffix(stdout, "; 1 warning\n") {
		t.Errorf("stale unit: exit %d\nstdout %q\nstderr %q\nwant %q", code, stdout, stderr, want)
	}
	// The same unit does not concern another policy file, nor this one
	// once installed again.
	other := write("other.yaml", "deadline: 5m\n")
	if code, stdout, stderr := run(t, "policy", "check", "--unit-dir", units, other); code != exitOK || stderr != "" {
		t.Errorf("another file: exit %d, %q, %q", code, stdout, stderr)
	}
	if _, err := systemd.Install(units, systemd.Options{Binary: "/usr/bin/ckpt", Policy: path, Store: "/var/lib/ckpt", Deadline: 5 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := run(t, "policy", "check", "--unit-dir", units, path); code != exitOK || stderr != "" {
		t.Errorf("installed again: exit %d, %q, %q", code, stdout, stderr)
	}
	// A relative path names the same file as the unit's absolute one.
	t.Chdir(dir)
	if _, err := systemd.Install(units, systemd.Options{Binary: "/usr/bin/ckpt", Policy: path, Store: "/var/lib/ckpt", Deadline: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "policy", "check", "--unit-dir", units, "policy.yaml"); code != exitOK || !strings.Contains(stderr, "systemd stops the hook first") {
		t.Errorf("relative path: exit %d, %q", code, stderr)
	}
}

// hook install prints the policy's warnings, and installs all the same.
func TestHookInstallWarns(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	if err := os.WriteFile("policy.yaml", []byte("deadline: 10s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	units := t.TempDir()
	pretendSystemd(t, false)
	stdout, stderr, err := runHook(t, "store", "install", "--policy", "policy.yaml", "--unit-dir", units, "--no-enable")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(stderr, "ckpt: warning: "+filepath.Join(work, "policy.yaml")+":1: the default saves hot with a timeout of 1m0s, but the deadline is 10s") {
		t.Errorf("stderr %q", stderr)
	}
	if !strings.Contains(stdout, "wrote "+filepath.Join(units, systemd.ShutdownUnit)) {
		t.Errorf("stdout %q", stdout)
	}
}
