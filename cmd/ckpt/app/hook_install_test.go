package app

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/systemd"
)

// runHook runs "ckpt hook ARGS..." with just the install and uninstall
// commands, and the store flag defaulting to store. These tests always pass
// --unit-dir, so they never run systemctl.
func runHook(t *testing.T, store string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Flags: []cli.Flag{&cli.StringFlag{Name: "store", Value: store}},
		Commands: []*cli.Command{{
			Name:        "hook",
			Subcommands: []*cli.Command{hookInstallCommand(), hookUninstallCommand()},
		}},
		Writer:         &out,
		ErrWriter:      &errOut,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.Run(append([]string{"ckpt", "hook"}, args...))
	return out.String(), errOut.String(), err
}

// pretendSystemd makes the commands believe that systemd is PID 1, or not.
// With --unit-dir they still never run systemctl. Runtime drop-ins go to a
// directory of the test's.
func pretendSystemd(t *testing.T, running bool) {
	t.Helper()
	saved, savedRuntime := systemdRunning, runtimeUnitDir
	systemdRunning = func() bool { return running }
	runtimeUnitDir = t.TempDir()
	t.Cleanup(func() { systemdRunning, runtimeUnitDir = saved, savedRuntime })
}

// unitLine returns the line of the unit file at path that starts with key=.
func unitLine(t *testing.T, path, key string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(l, key+"=") {
			return l
		}
	}
	t.Fatalf("%s has no %s=", path, key)
	return ""
}

func TestHookInstall(t *testing.T) {
	// A working directory, so that relative paths are made absolute.
	work := t.TempDir()
	t.Chdir(work)
	units := filepath.Join(work, "units")
	if err := os.Mkdir(units, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("policy.yaml", []byte("deadline: 5m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		t.Fatal(err)
	}
	shutdown, boot := filepath.Join(units, systemd.ShutdownUnit), filepath.Join(units, systemd.BootUnit)

	pretendSystemd(t, true)
	stdout, stderr, err := runHook(t, "store", "install", "--policy", "policy.yaml", "--unit-dir", units, "--no-enable")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, stderr)
	}
	want := "wrote " + shutdown + "\nwrote " + boot + "\n" +
		"not enabled (the units are not in /etc/systemd/system); to enable the hooks, run: systemctl daemon-reload && " +
		"systemctl enable " + shellJoin([]string{shutdown, boot}) + " && systemctl start ckpt-shutdown.service\n"
	if stdout != want || stderr != "" {
		t.Errorf("install printed\n%s%s\nwant\n%s", stdout, stderr, want)
	}
	args := " --store " + filepath.Join(work, "store") + " hook run %s --policy " + filepath.Join(work, "policy.yaml")
	if strings.ContainsAny(bin+work, " \"'\\$%") {
		t.Skipf("the test's paths need quoting in the units: %s, %s", bin, work)
	}
	for _, tc := range []struct{ path, key, want string }{
		{shutdown, "ExecStop", "ExecStop=" + bin + strings.Replace(args, "%s", "shutdown", 1)},
		{boot, "ExecStart", "ExecStart=" + bin + strings.Replace(args, "%s", "boot", 1)},
		{shutdown, "TimeoutStopSec", "TimeoutStopSec=330s"}, // the policy's deadline, 5m, + 30s
	} {
		if got := unitLine(t, tc.path, tc.key); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", filepath.Base(tc.path), got, tc.want)
		}
	}

	// Installing again replaces ckpt's units. Without systemd running,
	// systemctl enable still works, for the next boot.
	if err := os.WriteFile("policy.yaml", []byte("deadline: 1m\ndefault: {timeout: 30s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pretendSystemd(t, false)
	stdout, stderr, err = runHook(t, "store", "install", "--policy", "policy.yaml", "--unit-dir", units)
	if err != nil {
		t.Fatalf("install again: %v\n%s", err, stderr)
	}
	want = "wrote " + shutdown + "\nwrote " + boot + "\n" +
		"systemd is not running here; to enable the hooks, run: systemctl enable " + shellJoin([]string{shutdown, boot}) + "\n"
	if stdout != want || stderr != "" {
		t.Errorf("install printed\n%s%s\nwant\n%s", stdout, stderr, want)
	}
	if got := unitLine(t, shutdown, "TimeoutStopSec"); got != "TimeoutStopSec=90s" {
		t.Errorf("after installing again: %s", got)
	}

	// A policy file that does not load fails the install, which then
	// writes nothing.
	for _, tc := range []struct{ file, content, stderr string }{
		{"bad.yaml", "deadline: soon\n", "ckpt: error: " + filepath.Join(work, "bad.yaml") + ":1: "},
		{"unknown.yaml", "deadlines: 5m\n", "ckpt: error: " + filepath.Join(work, "unknown.yaml") + ":1: "},
		{"zero.yaml", "deadline: 0s\n", "ckpt: error: " + filepath.Join(work, "zero.yaml") + ":1: "},
		{"missing.yaml", "", ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			if tc.content != "" {
				if err := os.WriteFile(tc.file, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			stdout, stderr, err := runHook(t, "store", "install", "--policy", tc.file, "--unit-dir", dir, "--no-enable")
			if err == nil {
				t.Fatalf("install with %s worked:\n%s", tc.file, stdout)
			}
			if tc.stderr != "" && (!errors.Is(err, errReported) || !strings.HasPrefix(stderr, tc.stderr)) {
				t.Errorf("install with %s: %v\n%s", tc.file, err, stderr)
			}
			if tc.content == "" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("install with a missing policy file: %v", err)
			}
			if stdout != "" {
				t.Errorf("install with %s printed %q", tc.file, stdout)
			}
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				t.Errorf("install with %s wrote %d files", tc.file, len(ents))
			}
		})
	}

	// A unit directory holding someone else's unit.
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, systemd.BootUnit), []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runHook(t, "store", "install", "--policy", "policy.yaml", "--unit-dir", foreign, "--no-enable"); !errors.Is(err, systemd.ErrNotOurs) {
		t.Errorf("install over a foreign unit: %v", err)
	}

	if _, _, err := runHook(t, "store", "install", "--unit-dir", units, "extra"); err == nil || err.Error() != "hook install takes no arguments" {
		t.Errorf("install with an argument: %v", err)
	}
}

func TestHookUninstall(t *testing.T) {
	work := t.TempDir()
	policyFile := filepath.Join(work, "policy.yaml")
	if err := os.WriteFile(policyFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	units := t.TempDir()
	shutdown, boot := filepath.Join(units, systemd.ShutdownUnit), filepath.Join(units, systemd.BootUnit)
	if _, stderr, err := runHook(t, work, "install", "--policy", policyFile, "--unit-dir", units, "--no-enable"); err != nil {
		t.Fatalf("install: %v\n%s", err, stderr)
	}
	other := filepath.Join(units, "other.service")
	if err := os.WriteFile(other, []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	pretendSystemd(t, false)
	stdout, stderr, err := runHook(t, work, "uninstall", "--unit-dir", units)
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, stderr)
	}
	want := "removed " + shutdown + "\nremoved " + boot + "\n" +
		"if the hooks were enabled, also run: systemctl disable ckpt-shutdown.service ckpt-boot.service\n"
	if stdout != want || stderr != "" {
		t.Errorf("uninstall printed\n%s%s\nwant\n%s", stdout, stderr, want)
	}
	ents, _ := os.ReadDir(units)
	if len(ents) != 1 || ents[0].Name() != "other.service" {
		t.Errorf("left %v", ents)
	}

	// Nothing left to remove.
	stdout, stderr, err = runHook(t, work, "uninstall", "--unit-dir", units)
	if err != nil || stdout != "no ckpt units in "+units+"\n" || stderr != "" {
		t.Errorf("uninstall again: %v\n%s%s", err, stdout, stderr)
	}

	// Someone else's unit stays, with a warning.
	if _, stderr, err := runHook(t, work, "install", "--policy", policyFile, "--unit-dir", units, "--no-enable"); err != nil {
		t.Fatalf("install: %v\n%s", err, stderr)
	}
	if err := os.WriteFile(boot, []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pretendSystemd(t, true)
	stdout, stderr, err = runHook(t, work, "uninstall", "--unit-dir", units)
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, stderr)
	}
	want = "removed " + shutdown + "\n" +
		"if the hooks were enabled, also run: systemctl disable ckpt-shutdown.service && systemctl daemon-reload\n"
	if stdout != want {
		t.Errorf("uninstall printed\n%s\nwant\n%s", stdout, want)
	}
	if want := "ckpt: warning: left " + boot + ": not written by ckpt\nckpt: hint: ckpt only removes units it wrote\n"; stderr != want {
		t.Errorf("uninstall warned\n%s\nwant\n%s", stderr, want)
	}
	var names []string
	ents, _ = os.ReadDir(units)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{systemd.BootUnit, "other.service"}) {
		t.Errorf("left %q", names)
	}
}

// fakeSystemctl puts a systemctl first on PATH that logs its arguments, one
// call a line, to the file it returns.
func fakeSystemctl(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$*\" >>" + log + "\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return log
}

// The units of the ckpt package (PackageDir) beside the ones install
// writes, with systemd running: install writes its own into the default
// directory, enables them and leaves the package's alone; uninstall
// removes its own, and disarms ckpt-shutdown.service until the next boot,
// which would otherwise take the package's ExecStop= once systemd
// reloads; install again rearms it.
func TestHookInstallBesidePackage(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	if err := os.WriteFile("policy.yaml", []byte("deadline: 2m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(work, "usr-lib-systemd-system")
	if err := os.Mkdir(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	packaged := systemd.PackagedUnits(systemd.Options{Binary: "/usr/bin/ckpt", Policy: "/etc/ckpt/policy.yaml", Store: "/var/lib/ckpt", Deadline: time.Minute})
	for name, content := range packaged {
		if err := os.WriteFile(filepath.Join(pkg, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	etc := filepath.Join(work, "etc-systemd-system")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	savedDefault := defaultUnitDir
	defaultUnitDir = etc
	t.Cleanup(func() { defaultUnitDir = savedDefault })
	pretendSystemd(t, true)
	calls := fakeSystemctl(t)
	shutdown, boot := filepath.Join(etc, systemd.ShutdownUnit), filepath.Join(etc, systemd.BootUnit)
	dropIn := filepath.Join(runtimeUnitDir, systemd.ShutdownUnit+".d", "ckpt-hook-uninstall.conf")

	// A drop-in from an earlier uninstall.
	if _, err := systemd.Disarm(runtimeUnitDir); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runHook(t, "/var/lib/ckpt", "install", "--policy", "policy.yaml")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, stderr)
	}
	want := "wrote " + shutdown + "\nwrote " + boot + "\nremoved " + dropIn + "\n" +
		"ran systemctl daemon-reload\nran systemctl enable ckpt-shutdown.service ckpt-boot.service\n" +
		"ran systemctl start ckpt-shutdown.service\n" +
		"the hooks are enabled: ckpt-shutdown.service runs at shutdown, ckpt-boot.service at boot\n"
	if stdout != want || stderr != "" {
		t.Errorf("install printed\n%s%s\nwant\n%s", stdout, stderr, want)
	}
	if got := unitLine(t, shutdown, "TimeoutStopSec"); got != "TimeoutStopSec=150s" {
		t.Errorf("the unit install wrote has %s, not the policy's deadline", got)
	}
	if _, err := os.Stat(filepath.Dir(dropIn)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("install left the drop-in directory: %v", err)
	}

	stdout, stderr, err = runHook(t, "/var/lib/ckpt", "uninstall")
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, stderr)
	}
	want = "ran systemctl disable ckpt-shutdown.service ckpt-boot.service\n" +
		"removed " + shutdown + "\nremoved " + boot + "\n" +
		"wrote " + dropIn + ": ckpt-shutdown.service stays active until shutdown, and runs nothing then\n" +
		"ran systemctl daemon-reload\n"
	if stdout != want || stderr != "" {
		t.Errorf("uninstall printed\n%s%s\nwant\n%s", stdout, stderr, want)
	}
	data, err := os.ReadFile(dropIn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), "\n[Service]\nExecStop=\n") {
		t.Errorf("the drop-in does not empty ExecStop=:\n%s", data)
	}

	// systemctl never stopped anything: that would run the hook.
	log, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := "daemon-reload\nenable ckpt-shutdown.service ckpt-boot.service\nstart ckpt-shutdown.service\n" +
		"disable ckpt-shutdown.service ckpt-boot.service\ndaemon-reload\n"
	if string(log) != wantCalls {
		t.Errorf("systemctl calls:\n%s\nwant\n%s", log, wantCalls)
	}
	// The package's units are as they were.
	for name, content := range packaged {
		if got, err := os.ReadFile(filepath.Join(pkg, name)); err != nil || string(got) != content {
			t.Errorf("the package's %s changed (%v)", name, err)
		}
	}

	// Units written elsewhere leave it disarmed: systemd would take the
	// package's unit, not those, into the active one.
	if _, stderr, err := runHook(t, "/var/lib/ckpt", "install", "--policy", "policy.yaml", "--unit-dir", t.TempDir()); err != nil {
		t.Fatalf("install elsewhere: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(dropIn); err != nil {
		t.Errorf("install elsewhere removed the drop-in: %v", err)
	}

	// Installing again rearms the unit.
	if _, stderr, err := runHook(t, "/var/lib/ckpt", "install", "--policy", "policy.yaml", "--no-enable"); err != nil {
		t.Fatalf("install again: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(dropIn); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("install again left the drop-in: %v", err)
	}
}
