// Package systemd writes and removes the systemd units that run ckpt's host
// hooks: ckpt-shutdown.service saves containers while the host shuts down,
// before the engine stops, and ckpt-boot.service resumes them once the
// engine is up again at boot. docs/hooks.md explains the units to people.
package systemd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/hint"
)

// Options for the units.
type Options struct {
	// Binary is the absolute path of the ckpt binary.
	Binary string
	// Policy is the absolute path of the policy file.
	Policy string
	// Store is the store directory, passed as --store.
	Store string
	// Deadline is the policy's deadline for the shutdown hook.
	Deadline time.Duration
}

// The units' names.
const (
	ShutdownUnit = "ckpt-shutdown.service"
	BootUnit     = "ckpt-boot.service"
)

// Marker is the first line of every unit ckpt writes. Install overwrites
// and Uninstall removes only files that start with it.
const Marker = "# Written by ckpt hook install; ckpt hook uninstall removes it."

// DefaultDir is where the units go unless told otherwise: the directory for
// the administrator's own units, which wins over packaged ones.
const DefaultDir = "/etc/systemd/system"

// StopGrace is what TimeoutStopSec= of the shutdown unit adds to the
// policy's deadline: time for ckpt to finish the save in progress when the
// deadline passes, and to clean up.
const StopGrace = 30 * time.Second

// BootTimeout bounds the boot hook.
const BootTimeout = 15 * time.Minute

// JobTimeout is JobTimeoutSec= of systemd's poweroff.target and
// reboot.target: the whole shutdown must be done within it, or systemd
// forces the power-off (JobTimeoutAction=poweroff-force, reboot-force).
const JobTimeout = 30 * time.Minute

// DefaultStopTimeout is systemd's default DefaultTimeoutStopSec=: what a
// unit without TimeoutStopSec= gets (system.conf may change it).
const DefaultStopTimeout = 90 * time.Second

// ErrNotOurs marks a unit file that ckpt did not write.
var ErrNotOurs = errors.New("not written by ckpt")

// names lists the units in the order Install writes them.
var names = []string{ShutdownUnit, BootUnit}

// StopTimeout returns the shutdown unit's TimeoutStopSec= for deadline, in
// whole seconds.
func StopTimeout(deadline time.Duration) int64 {
	return int64(math.Ceil(max(deadline, 0).Seconds())) + int64(StopGrace/time.Second)
}

// Units returns the unit files' names and contents. It does not check o:
// Install does.
func Units(o Options) map[string]string {
	args := func(hook string) string {
		return execPath(o.Binary) + " --store " + execArg(o.Store) +
			" hook run " + hook + " --policy " + execArg(o.Policy)
	}
	mounts := mountPath(o.Store) + " " + mountPath(o.Policy)
	stopTimeout := StopTimeout(o.Deadline)
	return map[string]string{
		ShutdownUnit: Marker + `
# Documentation: hooks.md in /usr/share/doc/ckpt, or docs/ in ckpt's source (github.com/ckpt-dev/ckpt).
#
# This unit saves the Docker containers with "ckpt hook run shutdown" when
# the host shuts down or reboots, while the Docker engine is still running.
# The policy file says which containers are saved and how.
#
# The unit is started at boot, where it does nothing (ExecStart=/bin/true)
# and stays active (RemainAfterExit=yes). The hook is its ExecStop=, which
# systemd runs when it stops the unit: at shutdown, when the system is
# isolated to a target without it (rescue.target), or on
# "systemctl stop ckpt-shutdown.service", which saves the containers too.
#
# Ordering. When the system goes down, systemd stops units in the reverse
# of the order in which it starts them. "After=docker.service
# containerd.service" makes this unit start after the engine at boot, and so
# stop BEFORE the engine at shutdown: the hook runs while dockerd and
# containerd are up, and systemd stops them only once the hook is done.
#
# Wants=, not Requires= or BindsTo=: docker.service is pulled in at boot,
# but an engine that fails to start does not keep this unit from starting,
# and stopping or restarting docker.service ("systemctl restart docker", a
# package upgrade) does not stop this unit, which would run the hook.
#
# Default dependencies are kept: they add Conflicts=shutdown.target, which
# is what makes systemd stop this unit when the system goes down, and
# After=basic.target, so that local file systems are unmounted only after
# the hook. After=remote-fs.target does the same for network file systems
# (a store on NFS). There is deliberately no RequiresMountsFor=: unmounting
# the store's file system would then stop this unit, and so run the hook.
# Before= states the shutdown ordering explicitly; reboot, halt, poweroff
# and kexec all pass through shutdown.target.
[Unit]
Description=Save Docker containers with ckpt before shutdown
After=docker.service containerd.service remote-fs.target
Wants=docker.service
Before=shutdown.target reboot.target halt.target poweroff.target kexec.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=` + args("shutdown") + `
# TimeoutStopSec= is the policy's deadline (` + fmtSeconds(o.Deadline) + `) plus ` + fmtSeconds(StopGrace) + `, for ckpt
# to finish the save in progress and clean up. When it runs out, systemd
# sends ckpt SIGTERM (ckpt then stops and cleans up; SIGKILL follows after
# the same time again) and goes on to stop the engine. Run "ckpt hook
# install" again after changing the deadline in the policy file. The whole
# shutdown must also fit in poweroff.target's and reboot.target's
# JobTimeoutSec= (` + fmtSeconds(JobTimeout) + `), after which systemd forces the power-off.
TimeoutStopSec=` + fmt.Sprint(stopTimeout) + `s

[Install]
WantedBy=multi-user.target
`,
		BootUnit: Marker + `
# Documentation: hooks.md in /usr/share/doc/ckpt, or docs/ in ckpt's source (github.com/ckpt-dev/ckpt).
#
# This unit resumes, with "ckpt hook run boot", the containers that
# ckpt-shutdown.service saved when the host went down.
#
# Ordering. "After=docker.service containerd.service" starts the hook once
# the engine reports that it is ready (docker.service is Type=notify). The
# containers ckpt saved hold the restart policy "no", so the engine leaves
# them to this hook.
# network-online.target: the network is configured before containers
# that publish ports or join networks come back.
# "After=ckpt-shutdown.service": the shutdown hook is armed before any
# container is resumed, and if the host goes down while this hook is still
# running, systemd stops it first (ckpt stops resuming and cleans up)
# and only then runs the shutdown hook.
#
# Wants=, not Requires=: if the engine fails to start, the hook runs anyway,
# reports that it cannot reach the engine, and this unit fails; the
# checkpoints stay in the store. Run the ExecStart= command below by hand
# once the engine is up.
#
# Type=oneshot: the unit is "activating" while containers are resumed, and
# multi-user.target is reached when the hook is done (or has timed out:
# TimeoutStartSec=, after which systemd sends ckpt SIGTERM).
# RequiresMountsFor= mounts the file systems holding the store and the
# policy file first; if one cannot be mounted, this unit fails without
# running the hook, and the checkpoints wait in the store.
[Unit]
Description=Resume Docker containers saved by ckpt at shutdown
After=docker.service containerd.service network-online.target ckpt-shutdown.service
Wants=docker.service network-online.target
RequiresMountsFor=` + mounts + `

[Service]
Type=oneshot
ExecStart=` + args("boot") + `
TimeoutStartSec=` + fmtSeconds(BootTimeout) + `

[Install]
WantedBy=multi-user.target
`,
	}
}

// fmtSeconds formats d as systemd time span in whole seconds, minutes or
// hours: "90s", "15min".
func fmtSeconds(d time.Duration) string {
	s := int64(math.Ceil(max(d, 0).Seconds()))
	switch {
	case s != 0 && s%3600 == 0:
		return fmt.Sprintf("%dh", s/3600)
	case s != 0 && s%60 == 0:
		return fmt.Sprintf("%dmin", s/60)
	}
	return fmt.Sprintf("%ds", s)
}

// Quoting for unit files. systemd splits command lines and
// RequiresMountsFor= into words at spaces, unquotes "...", expands %
// specifiers (%% is a literal %), and, in Exec lines:
//   - the executable is taken literally after that: "$" needs no escaping,
//     and quotes, backslashes and control characters are refused
//     ("Executable name contains special characters");
//   - arguments are C-unescaped (\\, \", \xNN) and $VAR and ${VAR} are
//     replaced by environment variables ($$ is a literal $).
// RequiresMountsFor= takes \\ and \" but not \xNN, and leaves $ alone.

// execPath quotes the executable of a command line.
func execPath(s string) string {
	return quote(strings.ReplaceAll(s, "%", "%%"), s)
}

// execArg quotes an argument of a command line.
func execArg(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '%':
			b.WriteString("%%")
		case r == '$':
			b.WriteString("$$")
		case r == '\\' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return quote(b.String(), s)
}

// mountPath quotes a path in RequiresMountsFor=.
func mountPath(s string) string {
	r := strings.NewReplacer(`%`, `%%`, `\`, `\\`, `"`, `\"`)
	return quote(r.Replace(s), s)
}

// quote puts escaped, the escaped form of raw, between double quotes unless
// raw is made of characters that need none.
func quote(escaped, raw string) string {
	if raw != "" && strings.Trim(raw, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@=") == "" {
		return escaped
	}
	return `"` + escaped + `"`
}

// Check reports what in o the units cannot carry.
func (o Options) Check() error {
	for _, p := range []struct{ what, path string }{
		{"ckpt binary", o.Binary}, {"policy file", o.Policy}, {"store", o.Store},
	} {
		switch {
		case !filepath.IsAbs(p.path):
			return fmt.Errorf("the %s path %q is not absolute", p.what, p.path)
		case !utf8.ValidString(p.path) || strings.ContainsFunc(p.path, func(r rune) bool { return r < ' ' || r == 0x7f }):
			return hint.New(fmt.Sprintf("the %s path %q cannot be written in a systemd unit", p.what, p.path),
				"use a path without control characters, in UTF-8")
		}
	}
	if strings.ContainsAny(o.Binary, `"'\`) {
		return hint.New(fmt.Sprintf("systemd does not run executables whose path has quotes or backslashes: %s", o.Binary),
			"install ckpt at another path, for example /usr/local/bin/ckpt")
	}
	if o.Deadline <= 0 {
		return fmt.Errorf("the deadline must be positive, not %s", o.Deadline)
	}
	return nil
}

// Install writes the units into dir (mode 0644, each atomically and
// durably). It overwrites units it wrote before but refuses to touch any
// other file, writing nothing then. It returns the paths written.
func Install(dir string, o Options) ([]string, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, hint.Wrap(err, "the unit directory must exist (systemd reads "+DefaultDir+")")
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		ours, err := IsOurs(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		case !ours:
			return nil, hint.Wrap(fmt.Errorf("%s exists and was %w", path, ErrNotOurs),
				"ckpt only replaces units it wrote; move this one away and install again")
		}
	}
	units := Units(o)
	var written []string
	for _, name := range names {
		// Replace: a unit is only ever a regular file ckpt wrote (IsOurs),
		// and always gets mode 0644.
		path := filepath.Join(dir, name)
		if err := atomicfile.WriteFile(path, []byte(units[name]), 0o644, atomicfile.Replace); err != nil {
			return written, fmt.Errorf("writing %s: %w", path, err)
		}
		written = append(written, path)
	}
	return written, nil
}

// Uninstall removes the units ckpt wrote from dir and returns their paths.
// Missing units, and files ckpt did not write, are left alone.
func Uninstall(dir string) ([]string, error) {
	var removed []string
	for _, name := range names {
		path := filepath.Join(dir, name)
		ours, err := IsOurs(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return removed, err
		case !ours:
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, path)
	}
	if len(removed) > 0 {
		return removed, atomicfile.SyncDir(dir)
	}
	return removed, nil
}

// IsOurs reports whether the file at path is a regular file that starts
// with Marker. The error wraps fs.ErrNotExist when there is no such file.
func IsOurs(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() { // a symbolic link (a masked unit is one to /dev/null), a directory
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, len(Marker)+2)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	return strings.TrimSuffix(line, "\r") == Marker, nil
}

// Installed is the shutdown unit ckpt wrote in a directory, as the stop
// timeout and the policy file matter to policy check.
type Installed struct {
	// Path is the unit file.
	Path string
	// StopTimeout is its TimeoutStopSec=; DefaultStopTimeout when it has
	// none, and 0 for "infinity".
	StopTimeout time.Duration
	// execStop is its ExecStop= line, without the key.
	execStop string
}

// ReadShutdownUnit reads the shutdown unit ckpt wrote in dir. It returns
// nil and no error when there is none, or when the file there is not
// ckpt's.
func ReadShutdownUnit(dir string) (*Installed, error) {
	path := filepath.Join(dir, ShutdownUnit)
	ours, err := IsOurs(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !ours {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	u := &Installed{Path: path, StopTimeout: DefaultStopTimeout}
	for line := range strings.SplitSeq(string(data), "\n") {
		key, value, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch key {
		case "ExecStop":
			u.execStop = value
		case "TimeoutStopSec", "TimeoutSec":
			if u.StopTimeout, err = ParseTimespan(value); err != nil {
				return nil, fmt.Errorf("%s: TimeoutStopSec=%s: %w", path, value, err)
			}
		}
	}
	return u, nil
}

// RunsPolicy reports whether the unit runs the hook with the policy file at
// path, an absolute path, as ckpt hook install writes it.
func (u *Installed) RunsPolicy(path string) bool {
	return strings.HasSuffix(u.execStop, " --policy "+execArg(path))
}

// ParseTimespan reads a systemd time span: "120s", "2min 30s", "1h",
// "90" (seconds); "infinity" is 0.
func ParseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 0, nil
	}
	units := []struct {
		suffix string
		unit   time.Duration
	}{ // longer suffixes first: "ms" before "s", "min" before "m"
		{"usec", time.Microsecond}, {"msec", time.Millisecond}, {"seconds", time.Second}, {"second", time.Second},
		{"minutes", time.Minute}, {"minute", time.Minute}, {"hours", time.Hour}, {"hour", time.Hour},
		{"days", 24 * time.Hour}, {"day", 24 * time.Hour}, {"sec", time.Second}, {"min", time.Minute},
		{"hr", time.Hour}, {"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second},
		{"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour},
	}
	var total time.Duration
	rest := s
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		n := len(rest) - len(strings.TrimLeft(rest, "0123456789."))
		if n == 0 {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		v, err := strconv.ParseFloat(rest[:n], 64)
		if err != nil {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		rest = strings.TrimLeft(rest[n:], " ")
		unit := time.Second
		for _, u := range units {
			if strings.HasPrefix(rest, u.suffix) {
				unit, rest = u.unit, rest[len(u.suffix):]
				break
			}
		}
		if rest != "" && !strings.HasPrefix(rest, " ") && (rest[0] < '0' || rest[0] > '9') {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		total += time.Duration(v * float64(unit))
	}
	if s == "" {
		return 0, fmt.Errorf("bad time span %q", s)
	}
	return total, nil
}
