// Package shim is ckpt's containerd runtime, io.containerd.ckpt.v2: how a
// container comes back from a checkpoint with its memory on engines that
// cannot restore one themselves (Docker 28 and later, moby issue 50750),
// without changing its shape.
//
// Docker 28 creates a task from a checkpoint, then calls SetKey with the
// task's pid to attach its network, then starts it; containerd's runc shim
// restores only at start, so the pid is 0 and SetKey fails. A container of
// runtime io.containerd.ckpt.v2 runs containerd's own runc shim
// (containerd-shim-runc-v2, found on PATH) with one difference: the runc it
// calls is ckpt's, which passes every command through to the real runc but
// two:
//
//   - create, for a container ckpt has asked to restore (a Request written
//     just before it starts the container normally), runs runc restore
//     instead: the processes come back from their CRIU images at create,
//     stopped (CRIU's leave-stopped), so the engine sees a real pid, gives
//     the restored network namespace its interfaces, addresses and ports as
//     for any container, and calls start;
//   - start, of a container that restore left running, resumes its stopped
//     processes instead of failing.
//
// Everything else (stop, kill, exec, pause, a later checkpoint, delete) is
// the real runc's, and a container of this runtime that is not being
// restored starts as a runc container does. Docker 23 and later run a shim
// named io.containerd.NAME.v2 by finding containerd-shim-NAME-v2 on
// containerd's PATH: ckpt puts a link to itself there (Install); nothing is
// configured and nothing restarted.
package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// Runtime is the runtime name a container is created with to be
	// restored by ckpt (docker run --runtime io.containerd.ckpt.v2).
	Runtime = "io.containerd.ckpt.v2"
	// Binary is the shim containerd runs for Runtime: a link to ckpt.
	Binary = "containerd-shim-ckpt-v2"
	// RuncShim is containerd's runc shim, which Binary runs.
	RuncShim = "containerd-shim-runc-v2"
)

// CRIUOptions are the CRIU options of every restore through the runtime:
// the processes are left stopped until the engine has attached their
// network and started the container.
var CRIUOptions = []string{"leave-stopped"}

// RunDir holds the runc link the shim puts first on the runc shim's PATH
// (RunDir/runtime/runc) and the restore requests (RunDir/restore). A
// variable for tests.
var RunDir = "/run/ckpt"

// envPath carries the PATH the shim was started with to ckpt's runc, which
// finds the real runc on it.
const envPath = "CKPT_SHIM_PATH"

// defaultPath is the PATH of a process started without one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Dispatch runs the shim or ckpt's runc when ckpt was started as one of them
// (by its name), and returns the exit code and true; otherwise false.
func Dispatch(args []string) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch filepath.Base(args[0]) {
	case Binary:
		return shimMain(args), true
	case "runc":
		if _, ok := os.LookupEnv(envPath); ok {
			return runcMain(args), true
		}
	}
	return 0, false
}

// shimMain is containerd-shim-ckpt-v2: containerd's runc shim, with ckpt's
// runc first on its PATH.
func shimMain(args []string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Binary, err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	dir := filepath.Join(RunDir, "runtime")
	if err := ensureLink(filepath.Join(dir, "runc"), self); err != nil {
		return fail(err)
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	real, err := lookPath(RuncShim, path, self)
	if err != nil {
		return fail(err)
	}
	env := []string{"PATH=" + dir + ":" + path, envPath + "=" + path}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PATH=") && !strings.HasPrefix(e, envPath+"=") {
			env = append(env, e)
		}
	}
	return fail(unix.Exec(real, append([]string{real}, args[1:]...), env))
}

// ensureLink makes path a symbolic link to target, replacing what is there
// in one rename; its directory is made 0755, root's.
func ensureLink(path, target string) error {
	if got, err := os.Readlink(path); err == nil && got == target {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// lookPath finds the executable name in the directories of path, leaving
// out any that is ckpt itself (self): the real runc, or runc shim, never
// ckpt's.
func lookPath(name, path, self string) (string, error) {
	selfInfo, _ := os.Stat(self)
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			continue
		}
		if selfInfo != nil && os.SameFile(st, selfInfo) {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("%s: %w in %s", name, fs.ErrNotExist, path)
}

// ErrNotInstalled is returned by Check when containerd cannot find the
// shim.
var ErrNotInstalled = errors.New("ckpt's runtime is not installed")
