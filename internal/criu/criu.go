// Package criu holds what ckpt needs to know about CRIU: which version this
// kernel needs, the options runc passes to it, and how to turn its failures
// into something a person can act on.
package criu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	gocriu "github.com/checkpoint-restore/go-criu/v7"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/hint"
)

// Kernel returns the running kernel's release string.
func Kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelAtLeast reports whether release (like "6.18.44-foo") is at least
// major.minor.
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(leadingDigits(parts[0]))
	mi, _ := strconv.Atoi(leadingDigits(parts[1]))
	return ma > major || ma == major && mi >= minor
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// Requirement returns the oldest CRIU (as major*10000+minor*100+patch) that
// works on kernel release, and why: Linux 6.16 restricted
// SO_PASSCRED/SO_PASSSEC and only CRIU 4.2 copes with it (criu issues 2705,
// 2718); Linux 6.13 changed the vDSO layout, which CRIU before 4.1 fails on
// with "Unexpected rt vDSO area bounds" (criu issue 2532); 3.11 is the oldest
// CRIU that reads runc's configuration file.
func Requirement(release string) (int, string) {
	switch {
	case kernelAtLeast(release, 6, 16):
		return 40200, "Linux 6.16 restricted SO_PASSCRED/SO_PASSSEC on sockets, criu issues 2705 and 2718; 6.13 changed the vDSO layout"
	case kernelAtLeast(release, 6, 13):
		return 40100, "Linux 6.13 changed the vDSO layout (vvar_vclock; criu issue 2532)"
	}
	return 31100, "3.11 is the oldest CRIU that reads runc's configuration file"
}

// MinVersion is the version Requirement returns.
func MinVersion(release string) int {
	v, _ := Requirement(release)
	return v
}

// FormatVersion turns 40201 into "4.2.1".
func FormatVersion(v int) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

// Version asks the criu on PATH for its version.
func Version() (int, error) {
	if _, err := exec.LookPath("criu"); err != nil {
		return 0, hint.Wrap(errors.New("CRIU is not installed (no criu on PATH)"),
			"install CRIU >= "+FormatVersion(MinVersion(Kernel()))+" (scripts/setup.sh in ckpt's source builds one)")
	}
	v, err := gocriu.MakeCriu().GetCriuVersion()
	if err != nil {
		return 0, hint.Wrap(fmt.Errorf("cannot ask CRIU for its version: %w", err), "run criu check as root to see what is wrong")
	}
	return v, nil
}

// Check returns the CRIU version when it is new enough for this kernel, and
// an error naming the version needed otherwise. CRIU is asked once per
// process.
func Check() (int, error) { return checked() }

// Prefetch has CRIU asked in the background, so that Check finds the
// answer ready: save and resume ask it while they connect to the engine
// (it starts a criu process, about 15 ms).
func Prefetch() { go checked() }

var checked = sync.OnceValues(check)

func check() (int, error) {
	v, err := Version()
	if err != nil {
		return 0, err
	}
	kernel := Kernel()
	if min := MinVersion(kernel); v < min {
		return v, hint.New(fmt.Sprintf("CRIU %s is too old for kernel %s (needs >= %s)", FormatVersion(v), kernel, FormatVersion(min)),
			"install CRIU >= "+FormatVersion(min)+" (scripts/setup.sh in ckpt's source builds it)")
	}
	return v, nil
}

// logPath finds the CRIU log named in an engine error message. runc says
// "path= /run/.../criu-dump.log: unknown" or "log file: /path".
var logPath = regexp.MustCompile(`(?:path= ?|log file: ?)(/[^\s:]+\.log)`)

// known failures and what to do about them, matched against CRIU's log.
// A known failure with explain set gets its hint from the log (and the
// processes it names) instead.
var known = []struct {
	pattern *regexp.Regexp
	hint    string
	explain func(log []byte) string
}{
	{pattern: regexp.MustCompile(`External socket is used`), explain: explainExternal},
	{pattern: regexp.MustCompile(`Can't get rlimit|Can't get .*rlimit.*Operation not permitted`),
		hint: "CRIU lacks CAP_SYS_RESOURCE here, so it cannot read the limits of processes running as another user; this happens in sandboxes that drop that capability: run the container's processes as root here, or use a normal host or VM"},
	{pattern: regexp.MustCompile(`anon_inode:\[io_uring\]`),
		hint: "a process uses io_uring, which CRIU cannot checkpoint: MariaDB and MySQL need innodb_use_native_aio=0, PostgreSQL 18 io_method=worker (or sync); other programs: turn their io_uring backend off"},
	{pattern: regexp.MustCompile(`pmc_init: Can't allocate`),
		hint: "this CRIU cannot dump a process with a huge reserved mapping (MariaDB 10.11.12 and later reserve innodb_buffer_pool_size_max, terabytes by default): use CRIU 4 on a kernel >= 6.7 (scripts/setup.sh in ckpt's source builds 4.2.1), or cap the mapping (MariaDB: innodb_buffer_pool_size_max = a few times innodb_buffer_pool_size)"},
	{pattern: transient,
		hint: "a process stayed in uninterruptible sleep (state D: waiting for the disk, a database's fsync) longer than CRIU waits to freeze it (ckpt sets 20 s), so CRIU let the container go on; ckpt tried three times, letting the disk wait end in between: save again when the disk is less busy"},
	{pattern: regexp.MustCompile(`Some file locks are hold by dumping tasks`),
		hint: "the processes hold file locks (a database does) and runc.conf lacks file-locks; ckpt adds it to its block in " + RuncConf + " on every save, so check that the file is writable and that the engine's runc reads it"},
	{pattern: regexp.MustCompile(`Connected TCP socket, consider using --tcp-established`),
		hint: "established TCP connections need tcp-established in /etc/criu/runc.conf; ckpt adds it, so check that the file is readable and that the engine uses it"},
	{pattern: regexp.MustCompile(`Unsupported proto 262`),
		hint: "the process uses Multipath TCP, which CRIU cannot checkpoint; Go programs: set GODEBUG=multipathtcp=0"},
	{pattern: regexp.MustCompile(`Unexpected rt vDSO area bounds`),
		hint: "this CRIU does not understand this kernel's vDSO: install CRIU >= 4.2"},
	{pattern: regexp.MustCompile(`Can't get 1:16 opt|SO_PASSCRED`),
		hint: "kernel >= 6.16 needs CRIU >= 4.2 for sockets"},
	{pattern: regexp.MustCompile(`File .* has bad mode`),
		hint: "a file or directory the process had open (its working directory, a database's data directory) has another mode than at the save; checkpoints of ckpt before format 2 did not keep the mode of a volume's root: chmod it back (the mode CRIU expects is in the log line) and resume again"},
	{pattern: regexp.MustCompile(`File .* has bad size|can't open .* No such file`),
		hint: "a file the process had open changed or is missing in the container's file system"},
}

// transient matches CRIU failing to freeze a process that was busy in the
// kernel: it gives up and lets the processes go on, and another try once
// the wait is over usually succeeds.
var transient = regexp.MustCompile(`Unseizable non-zombie .* state D|Timeout reached\. Try to interrupt|Unable to freeze cgroup`)

// Transient reports whether err, as Explain returns it, is a dump that
// failed only because a process could not be frozen in time: the container
// runs on, and the checkpoint may be tried again.
func Transient(err error) bool { return err != nil && transient.MatchString(err.Error()) }

// Explain turns an engine error from a checkpoint or restore into one that
// quotes the Error lines of CRIU's log, names the log, and hints at a fix
// for the failures it recognises. The log is captured when not nil (the
// engine deletes the log of a failed restore), else read from the path the
// error names. Errors that are not about CRIU come back unchanged.
func Explain(err error, captured []byte) error {
	if err == nil {
		return nil
	}
	m := logPath.FindStringSubmatch(err.Error())
	if m == nil && captured == nil {
		return err
	}
	path := "(captured while the engine ran CRIU)"
	if m != nil {
		path = m[1]
	}
	if captured == nil {
		var rerr error
		if captured, rerr = os.ReadFile(filepath.Clean(path)); rerr != nil {
			return hint.Wrap(err, "CRIU's log "+path+" could not be read: "+rerr.Error())
		}
	}
	lines := ErrorLines(captured, 2)
	if _, serr := os.Stat(path); serr != nil && m != nil {
		path += " (deleted by the engine"
		if len(lines) > 0 {
			path += "; its errors are quoted above"
		}
		path += ")"
	}
	h := "see the whole log: " + path
	for _, k := range known {
		if k.pattern.MatchString(strings.Join(lines, "\n")) {
			text := k.hint
			if k.explain != nil {
				text = k.explain(captured)
			}
			h = text + "; log: " + path
			break
		}
	}
	msg := err.Error()
	if len(lines) > 0 {
		msg += "\nCRIU log:\n  " + strings.Join(lines, "\n  ")
	}
	return hint.Wrap(&criuError{msg: msg, err: err}, h)
}

type criuError struct {
	msg string
	err error
}

func (e *criuError) Error() string { return e.msg }
func (e *criuError) Unwrap() error { return e.err }

// ErrorLines returns the lines of a CRIU log that contain "Error", each with
// up to context lines before it, in order and without repeats.
func ErrorLines(log []byte, context int) []string {
	all := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
	var out []string
	next := 0 // first line not yet printed
	for i, l := range all {
		if !strings.Contains(l, "Error") {
			continue
		}
		from := max(i-context, next)
		out = append(out, all[from:i+1]...)
		next = i + 1
	}
	return out
}
