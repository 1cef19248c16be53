package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// runcGlobalValues are runc's global flags that take a value.
var runcGlobalValues = map[string]bool{"root": true, "log": true, "log-format": true, "criu": true, "rootless": true}

// runcCreateValues are the flags of runc create that take a value.
var runcCreateValues = map[string]bool{"bundle": true, "b": true, "console-socket": true, "pidfd-socket": true, "pid-file": true, "preserve-fds": true}

// invocation is a runc command line: global flags, the command, its flags
// and arguments.
type invocation struct {
	globals []string
	cmd     string
	args    []string
	// flags are the command's flags by name, with their values ("" for a
	// switch); operands are its other arguments.
	flags    map[string]string
	operands []string
}

// parseRunc splits runc's arguments (without argv[0]).
func parseRunc(args []string) invocation {
	inv := invocation{flags: map[string]string{}}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			break
		}
		inv.globals = append(inv.globals, a)
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && runcGlobalValues[name] && i+1 < len(args) {
			i++
			inv.globals = append(inv.globals, args[i])
		}
	}
	if i == len(args) {
		return inv
	}
	inv.cmd, inv.args = args[i], args[i+1:]
	for j := 0; j < len(inv.args); j++ {
		a := inv.args[j]
		if a == "--" {
			inv.operands = append(inv.operands, inv.args[j+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			inv.operands = append(inv.operands, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasValue && runcCreateValues[name] && j+1 < len(inv.args) {
			j++
			value = inv.args[j]
		}
		inv.flags[name] = value
	}
	return inv
}

// id is the container id: the command's last operand.
func (inv invocation) id() string {
	if len(inv.operands) == 0 {
		return ""
	}
	return inv.operands[len(inv.operands)-1]
}

// bundle is the bundle directory of a create.
func (inv invocation) bundle() string {
	if b := inv.flags["bundle"]; b != "" {
		return b
	}
	if b := inv.flags["b"]; b != "" {
		return b
	}
	wd, _ := os.Getwd()
	return wd
}

// systemdPath matches a cgroupsPath in systemd's form, slice:prefix:name,
// which runc takes only with --systemd-cgroup.
var systemdPath = regexp.MustCompile(`^[^/:]*:[^/:]+:[^/:]+$`)

// withCgroupDriver adds --systemd-cgroup to globals when the bundle's
// configuration names a systemd cgroup (the engine's cgroup driver is
// systemd): containerd passes runc options only to the runtimes the engine
// configured, and this one has none.
func withCgroupDriver(globals []string, bundle string) []string {
	for _, g := range globals {
		if g == "--systemd-cgroup" {
			return globals
		}
	}
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil || json.Unmarshal(b, &spec) != nil || !systemdPath.MatchString(spec.Linux.CgroupsPath) {
		return globals
	}
	return append([]string{"--systemd-cgroup"}, globals...)
}

// runcMain is ckpt's runc: the real runc but for a create that restores
// and a start that resumes (see the package documentation).
func runcMain(args []string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "ckpt runc: %v\n", err)
		return 1
	}
	self, _ := os.Executable()
	real, err := lookPath("runc", os.Getenv(envPath), self)
	if err != nil {
		return fail(err)
	}
	inv := parseRunc(args[1:])
	switch inv.cmd {
	case "create":
		globals := withCgroupDriver(inv.globals, inv.bundle())
		req, err := takeRequest(inv.id())
		if err != nil {
			return fail(err)
		}
		if req != nil {
			return run(real, restoreArgs(globals, inv, req), req.Config)
		}
		return fail(unix.Exec(real, append(append([]string{real}, globals...), append([]string{"create"}, inv.args...)...), os.Environ()))
	case "start":
		if running, pid := state(real, inv.globals, inv.id()); running {
			// Restored at create, and left stopped: resume it.
			if err := resume(pid); err != nil {
				return fail(err)
			}
			return 0
		}
	}
	return fail(unix.Exec(real, append([]string{real}, args[1:]...), os.Environ()))
}

// restoreArgs is the runc restore command line that stands for create inv,
// as containerd's runc shim restores a checkpoint: detached, not a
// subreaper, with the create's bundle, pid file and console.
func restoreArgs(globals []string, inv invocation, req *Request) []string {
	a := append([]string(nil), globals...)
	a = append(a, "restore", "--detach", "--no-subreaper", "--bundle", inv.bundle(),
		"--image-path", req.Images, "--work-path", req.Work)
	if p := inv.flags["pid-file"]; p != "" {
		a = append(a, "--pid-file", p)
	}
	if s := inv.flags["console-socket"]; s != "" {
		a = append(a, "--console-socket", s)
	}
	if _, ok := inv.flags["no-pivot"]; ok {
		a = append(a, "--no-pivot")
	}
	return append(a, inv.id())
}

// run runs runc with args, its standard streams ours, and CRIU's
// configuration file config (none for ""), and returns its exit code. runc
// runs CRIU with its environment, and CRIU reads CRIU_CONFIG_FILE as it
// starts, before the options runc sends it.
func run(real string, args []string, config string) int {
	cmd := exec.Command(real, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	if config != "" {
		cmd.Env = append(cmd.Env, "CRIU_CONFIG_FILE="+config)
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "ckpt runc: %v\n", err)
	return 1
}

// state asks the real runc for container id's state: whether it runs, and
// its init's pid.
func state(real string, globals []string, id string) (bool, int) {
	if id == "" {
		return false, 0
	}
	var keep []string // --root and the like; not --log
	for i := 0; i < len(globals); i++ {
		g := globals[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(g, "-"), "=")
		takes := runcGlobalValues[name] && !hasValue
		if name == "root" || name == "systemd-cgroup" || name == "rootless" {
			keep = append(keep, g)
			if takes && i+1 < len(globals) {
				keep = append(keep, globals[i+1])
			}
		}
		if takes {
			i++
		}
	}
	out, err := exec.Command(real, append(keep, "state", id)...).Output()
	if err != nil {
		return false, 0
	}
	var st struct {
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	if json.Unmarshal(out, &st) != nil {
		return false, 0
	}
	return st.Status == "running", st.Pid
}

// resume sends SIGCONT to every process of the cgroup of pid, the
// container's init, which CRIU restored stopped.
func resume(pid int) error {
	pids, err := cgroupProcs(pid)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pids {
		if err := unix.Kill(p, unix.SIGCONT); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("SIGCONT %d: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupRoot is where cgroup file systems are mounted; a variable for
// tests.
var cgroupRoot = "/sys/fs/cgroup"

// cgroupProcs lists the processes of pid's cgroup and the cgroups below
// it: on cgroup v2 the unified one, on v1 the pids, freezer or memory
// controller's.
func cgroupProcs(pid int) ([]int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v1, v2 := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = filepath.Join(cgroupRoot, parts[2])
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if v1 == "" && (c == "pids" || c == "freezer" || c == "memory") {
				v1 = filepath.Join(cgroupRoot, parts[1], parts[2])
			}
		}
	}
	// A host with v1 controllers mounts the unified hierarchy elsewhere,
	// if at all: the v1 one holds the container.
	dir := v1
	if dir == "" {
		dir = v2
	}
	if dir == "" {
		return []int{pid}, nil
	}
	seen := map[int]bool{pid: true}
	pids := []int{pid}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, l := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(l); err == nil && !seen[n] {
				seen[n] = true
				pids = append(pids, n)
			}
		}
		return nil
	})
	return pids, err
}
