package shim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ckpt-dev/ckpt/internal/hint"
)

// Where containerd finds the shim: on its PATH, or beside its own
// executable (containerd's core/runtime/v2 resolveRuntimePath).

// containerd describes the containerd process of this mount namespace.
type containerd struct {
	pid  int
	path string // its PATH
	dir  string // the directory of its executable
}

// procRoot is /proc; a variable for tests.
var procRoot = "/proc"

// findContainerd returns the containerd that runs in this mount namespace
// (the engine's, whether dockerd started it or a system one).
func findContainerd() (*containerd, error) {
	self, err := os.Readlink(filepath.Join(procRoot, "self/ns/mnt"))
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p := filepath.Join(procRoot, e.Name())
		comm, err := os.ReadFile(filepath.Join(p, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "containerd" {
			continue
		}
		if ns, err := os.Readlink(filepath.Join(p, "ns/mnt")); err != nil || ns != self {
			continue
		}
		c := &containerd{pid: pid}
		if exe, err := os.Readlink(filepath.Join(p, "exe")); err == nil {
			c.dir = filepath.Dir(exe)
		}
		env, _ := os.ReadFile(filepath.Join(p, "environ"))
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("PATH=")); ok {
				c.path = string(v)
			}
		}
		return c, nil
	}
	return nil, hint.New("no containerd runs here", "start the Docker engine: systemctl start docker")
}

// dirs are the directories containerd looks for the shim in, in its order.
func (c *containerd) dirs() []string {
	var out []string
	for _, d := range filepath.SplitList(c.path) {
		if filepath.IsAbs(d) && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if c.dir != "" && !slices.Contains(out, c.dir) {
		out = append(out, c.dir)
	}
	return out
}

// Status says whether containerd finds ckpt's shim.
type Status struct {
	// Path is where containerd finds containerd-shim-ckpt-v2; "" when it
	// does not.
	Path string
	// Target is the executable it is (a link to ckpt).
	Target string
	// Self is true when it is this ckpt.
	Self bool
	// Dirs are where containerd looks.
	Dirs []string
}

// Check tells where containerd finds the shim, and whether it is this ckpt.
func Check() (Status, error) {
	c, err := findContainerd()
	if err != nil {
		return Status{}, err
	}
	st := Status{Dirs: c.dirs()}
	self, _ := os.Executable()
	selfInfo, _ := os.Stat(self)
	for _, d := range st.Dirs {
		p := filepath.Join(d, Binary)
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			continue
		}
		st.Path = p
		st.Target, _ = filepath.EvalSymlinks(p)
		st.Self = selfInfo != nil && os.SameFile(fi, selfInfo)
		return st, nil
	}
	return st, nil
}

// Install makes containerd find the shim: a link to this ckpt, named
// containerd-shim-ckpt-v2, in the first directory containerd looks in that
// exists, preferring /usr/local/bin. A link that is there already and is
// this ckpt is left alone; one to another ckpt (an older one) is
// replaced. It returns where the link is.
func Install() (string, error) {
	st, err := Check()
	if err != nil {
		return "", err
	}
	if st.Self {
		return st.Path, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir := ""
	for _, d := range st.Dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && (dir == "" || strings.HasSuffix(d, "/usr/local/bin")) {
			dir = d
		}
	}
	if st.Path != "" {
		dir = filepath.Dir(st.Path) // replace what containerd finds first
	}
	if dir == "" {
		return "", hint.New("containerd looks for runtimes in no directory that exists ("+strings.Join(st.Dirs, ":")+")",
			"give containerd a PATH (its service's environment)")
	}
	path := filepath.Join(dir, Binary)
	if err := ensureLink(path, self); err != nil {
		return "", fmt.Errorf("cannot install ckpt's runtime (%s): %w", path, err)
	}
	return path, nil
}
