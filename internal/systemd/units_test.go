package systemd

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func typical() Options {
	return Options{
		Binary:   "/usr/local/bin/ckpt",
		Policy:   "/etc/ckpt/policy.yaml",
		Store:    "/var/lib/ckpt",
		Deadline: 90 * time.Second,
	}
}

// lines returns the unit's lines that are not comments or blank.
func lines(unit string) []string {
	var out []string
	for l := range strings.SplitSeq(unit, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// value returns the values of key in unit.
func value(unit, key string) []string {
	var out []string
	for _, l := range lines(unit) {
		if k, v, ok := strings.Cut(l, "="); ok && k == key {
			out = append(out, v)
		}
	}
	return out
}

func TestUnits(t *testing.T) {
	units := Units(typical())
	if len(units) != 2 {
		t.Fatalf("%d units, want 2", len(units))
	}
	shutdown, boot := units[ShutdownUnit], units[BootUnit]
	for name, u := range units {
		if first, _, _ := strings.Cut(u, "\n"); first != Marker {
			t.Errorf("%s starts with %q", name, first)
		}
		if !strings.HasSuffix(u, "\n") {
			t.Errorf("%s does not end with a newline", name)
		}
		if !strings.Contains(u, "hooks.md in /usr/share/doc/ckpt, or docs/") {
			t.Errorf("%s does not point at hooks.md", name)
		}
		for _, l := range lines(u) {
			// Keys that would change the design: default dependencies
			// stay, and nothing makes stopping the engine or unmounting
			// the store stop ckpt-shutdown.service (and run the hook).
			for _, bad := range []string{"DefaultDependencies=", "Requires=", "BindsTo=", "PartOf=", "Requisite=", "Documentation="} {
				if strings.HasPrefix(l, bad) {
					t.Errorf("%s has %q", name, l)
				}
			}
		}
		if got := value(u, "WantedBy"); !slices.Equal(got, []string{"multi-user.target"}) {
			t.Errorf("%s: WantedBy=%q", name, got)
		}
	}

	for _, tc := range []struct {
		unit, key string
		want      []string
	}{
		{shutdown, "After", []string{"docker.service containerd.service remote-fs.target"}},
		{shutdown, "Wants", []string{"docker.service"}},
		{shutdown, "Before", []string{"shutdown.target reboot.target halt.target poweroff.target kexec.target"}},
		{shutdown, "RequiresMountsFor", nil},
		{shutdown, "Type", []string{"oneshot"}},
		{shutdown, "RemainAfterExit", []string{"yes"}},
		{shutdown, "ExecStart", []string{"/bin/true"}},
		{shutdown, "ExecStop", []string{"/usr/local/bin/ckpt --store /var/lib/ckpt hook run shutdown --policy /etc/ckpt/policy.yaml"}},
		{shutdown, "TimeoutStopSec", []string{"120s"}},
		{boot, "After", []string{"docker.service containerd.service network-online.target ckpt-shutdown.service"}},
		{boot, "Wants", []string{"docker.service network-online.target"}},
		{boot, "RequiresMountsFor", []string{"/var/lib/ckpt /etc/ckpt/policy.yaml"}},
		{boot, "Type", []string{"oneshot"}},
		{boot, "RemainAfterExit", nil},
		{boot, "ExecStart", []string{"/usr/local/bin/ckpt --store /var/lib/ckpt hook run boot --policy /etc/ckpt/policy.yaml"}},
		{boot, "ExecStop", nil},
		{boot, "TimeoutStartSec", []string{"15min"}},
	} {
		name := ShutdownUnit
		if tc.unit == boot {
			name = BootUnit
		}
		if got := value(tc.unit, tc.key); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %s=%q, want %q", name, tc.key, got, tc.want)
		}
	}
	if !strings.Contains(shutdown, "# TimeoutStopSec= is the policy's deadline (90s) plus 30s,") {
		t.Errorf("%s does not explain its timeout:\n%s", ShutdownUnit, shutdown)
	}
}

func TestStopTimeout(t *testing.T) {
	for _, tc := range []struct {
		deadline time.Duration
		want     int64
		line     string
	}{
		{90 * time.Second, 120, "TimeoutStopSec=120s"},
		{1500 * time.Millisecond, 32, "TimeoutStopSec=32s"},
		{10 * time.Minute, 630, "TimeoutStopSec=630s"},
		{time.Hour + time.Nanosecond, 3631, "TimeoutStopSec=3631s"},
	} {
		if got := StopTimeout(tc.deadline); got != tc.want {
			t.Errorf("StopTimeout(%s) = %d, want %d", tc.deadline, got, tc.want)
		}
		o := typical()
		o.Deadline = tc.deadline
		if u := Units(o)[ShutdownUnit]; !slices.Contains(lines(u), tc.line) {
			t.Errorf("deadline %s: no line %q in\n%s", tc.deadline, tc.line, u)
		}
	}
}

func TestEscaping(t *testing.T) {
	o := Options{
		Binary:   "/opt/my tools/ckpt $1 100%",
		Policy:   `/etc/ckpt/it's "the" policy\.yaml`,
		Store:    "/srv/store $HOME/%i",
		Deadline: time.Minute,
	}
	units := Units(o)
	// The executable is taken literally apart from % specifiers; arguments
	// are C-unescaped and have $ expanded; RequiresMountsFor= is unquoted
	// but neither C-unescaped nor $-expanded.
	wantStop := `"/opt/my tools/ckpt $1 100%%" --store "/srv/store $$HOME/%%i" hook run shutdown --policy "/etc/ckpt/it's \"the\" policy\\.yaml"`
	if got := value(units[ShutdownUnit], "ExecStop"); !slices.Equal(got, []string{wantStop}) {
		t.Errorf("ExecStop=%q\nwant %q", got, wantStop)
	}
	wantStart := strings.Replace(wantStop, " shutdown ", " boot ", 1)
	if got := value(units[BootUnit], "ExecStart"); !slices.Equal(got, []string{wantStart}) {
		t.Errorf("ExecStart=%q\nwant %q", got, wantStart)
	}
	wantMounts := `"/srv/store $HOME/%%i" "/etc/ckpt/it's \"the\" policy\\.yaml"`
	if got := value(units[BootUnit], "RequiresMountsFor"); !slices.Equal(got, []string{wantMounts}) {
		t.Errorf("RequiresMountsFor=%q\nwant %q", got, wantMounts)
	}
	if got := execArg("/a\tb\x7f"); got != `"/a\x09b\x7f"` {
		t.Errorf("execArg with control characters = %q", got)
	}
}

func TestCheck(t *testing.T) {
	if err := typical().Check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Binary = "ckpt" }, `the ckpt binary path "ckpt" is not absolute`},
		{func(o *Options) { o.Policy = "policy.yaml" }, `the policy file path "policy.yaml" is not absolute`},
		{func(o *Options) { o.Store = "" }, `the store path "" is not absolute`},
		{func(o *Options) { o.Store = "/var/lib/ck\npt" }, `cannot be written in a systemd unit`},
		{func(o *Options) { o.Policy = "/etc/\xff" }, `cannot be written in a systemd unit`},
		{func(o *Options) { o.Binary = `/opt/"ckpt"` }, `quotes or backslashes`},
		{func(o *Options) { o.Binary = `/opt/ck\pt` }, `quotes or backslashes`},
		{func(o *Options) { o.Deadline = 0 }, `the deadline must be positive`},
	} {
		o := typical()
		tc.change(&o)
		err := o.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", o, err, tc.want)
		}
		if _, err := Install(t.TempDir(), o); err == nil {
			t.Errorf("%+v: Install worked", o)
		}
	}
}

// files returns the names in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	o := typical()
	paths, err := Install(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, ShutdownUnit), filepath.Join(dir, BootUnit)}
	if !slices.Equal(paths, want) {
		t.Errorf("Install returned %q, want %q", paths, want)
	}
	check := func(o Options) {
		t.Helper()
		for name, content := range Units(o) {
			path := filepath.Join(dir, name)
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o644 {
				t.Errorf("%s: mode %v, want -rw-r--r--", name, fi.Mode())
			}
			if got, _ := os.ReadFile(path); string(got) != content {
				t.Errorf("%s:\n%s\nwant\n%s", name, got, content)
			}
		}
		if got := files(t, dir); !slices.Equal(got, []string{BootUnit, ShutdownUnit}) {
			t.Errorf("files in the unit directory: %q", got) // no temporary files left
		}
	}
	check(o)

	// Our own units are replaced.
	if err := os.WriteFile(want[0], []byte(Marker+"\nold\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Deadline = 5 * time.Minute
	if _, err := Install(dir, o); err != nil {
		t.Fatal(err)
	}
	check(o)

	// A unit ckpt did not write is left alone, and nothing is written.
	for _, foreign := range []func(path string) error{
		func(path string) error { return os.WriteFile(path, []byte("[Unit]\n"+Marker+"\n"), 0o644) },
		func(path string) error { return os.WriteFile(path, []byte(" "+Marker+"\n"), 0o644) },
		func(path string) error { return os.WriteFile(path, nil, 0o644) },
		func(path string) error { return os.Symlink("/dev/null", path) }, // masked
		func(path string) error { return os.Symlink(want[0], path) },
		func(path string) error { return os.Mkdir(path, 0o755) },
	} {
		dir := t.TempDir()
		boot, shutdown := filepath.Join(dir, BootUnit), filepath.Join(dir, ShutdownUnit)
		if err := foreign(boot); err != nil {
			t.Fatal(err)
		}
		before, _ := os.Readlink(boot)
		paths, err := Install(dir, typical())
		if !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), boot) {
			t.Errorf("Install over a foreign unit: %v", err)
		}
		if len(paths) != 0 {
			t.Errorf("Install over a foreign unit wrote %q", paths)
		}
		if _, err := os.Lstat(shutdown); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Install over a foreign unit wrote %s", shutdown)
		}
		if after, _ := os.Readlink(boot); after != before {
			t.Errorf("the symbolic link changed from %q to %q", before, after)
		}
	}

	if _, err := Install(filepath.Join(dir, "missing"), typical()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Install into a missing directory: %v", err)
	}
}

func TestUninstall(t *testing.T) {
	dir := t.TempDir()
	if _, err := Install(dir, typical()); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.service")
	if err := os.WriteFile(other, []byte(Marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	removed, err := Uninstall(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, ShutdownUnit), filepath.Join(dir, BootUnit)}; !slices.Equal(removed, want) {
		t.Errorf("Uninstall returned %q, want %q", removed, want)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"other.service"}) {
		t.Errorf("left %q", got)
	}
	// Nothing to remove is not an error.
	if removed, err := Uninstall(dir); err != nil || len(removed) != 0 {
		t.Errorf("Uninstall again: %q, %v", removed, err)
	}
	if removed, err := Uninstall(filepath.Join(dir, "missing")); err != nil || len(removed) != 0 {
		t.Errorf("Uninstall from a missing directory: %q, %v", removed, err)
	}

	// A foreign unit stays; ours goes.
	if _, err := Install(dir, typical()); err != nil {
		t.Fatal(err)
	}
	foreign := []byte("[Unit]\nDescription=someone else's\n")
	if err := os.WriteFile(filepath.Join(dir, BootUnit), foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	removed, err = Uninstall(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, ShutdownUnit)}; !slices.Equal(removed, want) {
		t.Errorf("Uninstall returned %q, want %q", removed, want)
	}
	if got, err := os.ReadFile(filepath.Join(dir, BootUnit)); err != nil || !bytes.Equal(got, foreign) {
		t.Errorf("the foreign unit became %q (%v)", got, err)
	}
}

// verify runs systemd-analyze verify on the units Install writes for o and
// returns the lines of its output that mention them and its exit error.
// Problems in other units (docker.service's) do not count.
func verify(t *testing.T, o Options) ([]string, error) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CKPT_TEST_DISALLOW_SKIP") == "1" {
			t.Fatalf("systemd-analyze is needed: %v", err)
		}
		t.Skipf("no systemd-analyze: %v", err)
	}
	dir := t.TempDir()
	paths, err := Install(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no", "--recursive-errors=no"}, paths...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	var ours []string
	for l := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(l, ShutdownUnit) || strings.Contains(l, BootUnit) {
			ours = append(ours, l)
		}
	}
	t.Logf("systemd-analyze verify: %v\n%s", err, out)
	return ours, err
}

// TestVerify checks the units with systemd's own parser. verify needs the
// executables to exist; a script stands in for ckpt, at a path with a
// space, a $ and a % to check the quoting.
func TestVerify(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "my tools $1 100%", "ckpt")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{
		Binary:   bin,
		Policy:   `/etc/ckpt/it's "the" policy.yaml`,
		Store:    "/var/lib/ckpt store $HOME %i",
		Deadline: 90 * time.Second,
	}
	if lines, err := verify(t, o); err != nil || len(lines) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(lines, "\n"))
	}

	// The check catches a broken unit: verify reports a missing executable.
	o.Binary = filepath.Join(filepath.Dir(bin), "missing")
	lines, err := verify(t, o)
	if err == nil || len(lines) != 2 {
		t.Errorf("systemd-analyze verify with a missing binary: %v\n%s", err, strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, o.Binary) {
			t.Errorf("systemd-analyze verify did not report %s as is: %s", o.Binary, l)
		}
	}
}

// TestDocs keeps the units shown in docs/hooks.md what Install writes with
// the default paths.
func TestDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "hooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range Units(typical()) {
		if !strings.Contains(string(doc), "```ini\n"+content+"```\n") {
			t.Errorf("docs/hooks.md does not show %s as Install writes it:\n%s", name, content)
		}
	}
}

func TestParseTimespan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"120s", 120 * time.Second},
		{"90", 90 * time.Second},
		{"15min", 15 * time.Minute},
		{"2min 30s", 150 * time.Second},
		{"2min30s", 150 * time.Second},
		{"1h", time.Hour},
		{"1.5s", 1500 * time.Millisecond},
		{"500ms", 500 * time.Millisecond},
		{"2 min", 2 * time.Minute},
		{"infinity", 0},
	} {
		if got, err := ParseTimespan(tc.in); err != nil || got != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "s", "5x", "5months", "-5s", "ten"} {
		if got, err := ParseTimespan(in); err == nil {
			t.Errorf("%q parsed as %v", in, got)
		}
	}
}

func TestReadShutdownUnit(t *testing.T) {
	dir := t.TempDir()
	if u, err := ReadShutdownUnit(dir); u != nil || err != nil {
		t.Errorf("no unit: %+v, %v", u, err)
	}
	o := typical()
	o.Deadline = 5 * time.Minute
	if _, err := Install(dir, o); err != nil {
		t.Fatal(err)
	}
	u, err := ReadShutdownUnit(dir)
	if err != nil || u == nil {
		t.Fatalf("%+v, %v", u, err)
	}
	if u.Path != filepath.Join(dir, ShutdownUnit) || u.StopTimeout != 330*time.Second {
		t.Errorf("%+v", u)
	}
	if !u.RunsPolicy(o.Policy) || u.RunsPolicy("/etc/ckpt/other.yaml") || u.RunsPolicy("policy.yaml") {
		t.Errorf("RunsPolicy is wrong for %s", u.execStop)
	}

	// A policy path that needs quoting.
	o.Policy = "/etc/ckpt/my policy.yaml"
	if _, err := Install(dir, o); err != nil {
		t.Fatal(err)
	}
	if u, err := ReadShutdownUnit(dir); err != nil || !u.RunsPolicy(o.Policy) {
		t.Errorf("%+v, %v", u, err)
	}

	// Without TimeoutStopSec=, systemd's default applies.
	path := filepath.Join(dir, ShutdownUnit)
	data, _ := os.ReadFile(path)
	var kept []string
	for l := range strings.SplitSeq(string(data), "\n") {
		if !strings.HasPrefix(l, "TimeoutStopSec=") {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, err := ReadShutdownUnit(dir); err != nil || u.StopTimeout != DefaultStopTimeout {
		t.Errorf("%+v, %v", u, err)
	}

	// A unit ckpt did not write is not read.
	if err := os.WriteFile(path, []byte("[Service]\nTimeoutStopSec=5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, err := ReadShutdownUnit(dir); u != nil || err != nil {
		t.Errorf("a foreign unit: %+v, %v", u, err)
	}
}
