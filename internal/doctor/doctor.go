// Package doctor checks that this host can save and resume containers: the
// engine, CRIU and the kernel, runc's CRIU configuration, room in the store,
// and what containerd leaves behind. Each check says ok, warn or fail, what
// it found, and what to do about it.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/ckpt-dev/ckpt/internal/archive"
	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/shim"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// Status is the outcome of a check.
type Status string

const (
	// OK: nothing to do.
	OK Status = "ok"
	// Warn: saves and resumes work, but something deserves attention.
	Warn Status = "warn"
	// Fail: saves or resumes fail until it is fixed.
	Fail Status = "fail"
	// Skip: the check could not run because another one failed.
	Skip Status = "skip"
)

// Result is the outcome of one check.
type Result struct {
	// Check names the check: engine, experimental, restore, storage, criu,
	// criu check, kernel, cgroup, runc.conf, space, io_uring, leftovers.
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Finding string `json:"finding"`
	// Fix says what to do, when Status is not OK.
	Fix string `json:"fix,omitempty"`
}

// Options says where to look; the zero value looks where ckpt works.
type Options struct {
	// Store is the checkpoint store (default /var/lib/ckpt). It is not
	// created: space is measured at its nearest existing parent.
	Store string
	// TempDirs are where containerd leaves copies of restored checkpoints
	// (default /tmp and $TMPDIR).
	TempDirs []string
	// RuncConf is runc's CRIU configuration file (default
	// /etc/criu/runc.conf).
	RuncConf string
	// CgroupRoot is where the cgroup file system is mounted (default
	// /sys/fs/cgroup).
	CgroupRoot string
	// Kernel is the kernel release (default: the running kernel's).
	Kernel string
	// Free returns the free bytes of the file system of dir (default:
	// statfs).
	Free func(dir string) (int64, error)
	// Timeout bounds each call of the engine and of CRIU (default 30s).
	Timeout time.Duration
	// StoreSetting says, in the fixes, how a person points ckpt at
	// another store, for example "--store DIR or CKPT_STORE" (default:
	// nothing more than "use another store").
	StoreSetting string
}

// otherStore is the end of a fix that suggests another store.
func (o *Options) otherStore() string {
	if o.StoreSetting == "" {
		return "use another store"
	}
	return "use another store (" + o.StoreSetting + ")"
}

func (o *Options) defaults() {
	if o.Store == "" {
		o.Store = "/var/lib/ckpt"
	}
	if o.TempDirs == nil {
		o.TempDirs = engine.LeakDirs()
	}
	if o.RuncConf == "" {
		o.RuncConf = criu.RuncConf
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	if o.Kernel == "" {
		o.Kernel = criu.Kernel()
	}
	if o.Free == nil {
		o.Free = preflight.Free
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
}

// Failed reports whether any check failed: a save or resume would fail.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Run runs every check, in order. Checks that need the engine are skipped
// when it cannot be reached; the others run regardless.
func Run(ctx context.Context, o Options) []Result {
	o.defaults()
	var out []Result
	eng, r := checkEngine(ctx, o)
	out = append(out, r)
	if eng != nil {
		defer eng.Close()
	}
	out = append(out, checkExperimental(eng), checkRestore(eng), checkStorage(eng))
	version, criuPath, r := checkCRIU(o)
	out = append(out, r, checkCRIURuns(ctx, o, criuPath), checkKernel(o.Kernel, version))
	out = append(out, checkCgroup(o, eng), checkRuncConf(o.RuncConf), checkSpace(ctx, o, eng), checkIOURing(ctx, o, eng), checkLeftovers(o.TempDirs))
	for i := range out {
		out[i].Finding, out[i].Fix = oneLine(out[i].Finding), oneLine(out[i].Fix)
	}
	return out
}

// oneLine joins the lines of s (errors.Join makes several) with "; ".
func oneLine(s string) string {
	return strings.Join(lastLines([]byte(s), math.MaxInt), "; ")
}

const unreachable = "not checked: the engine is unreachable"

// checkEngine connects to the engine as save and resume do.
func checkEngine(ctx context.Context, o Options) (*engine.Engine, Result) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	eng, err := engine.Connect(ctx)
	if err != nil {
		return nil, Result{Check: "engine", Status: Fail, Finding: err.Error(), Fix: hint.Of(err)}
	}
	return eng, Result{Check: "engine", Status: OK,
		Finding: fmt.Sprintf("Docker %s (API %s) at %s", eng.Info.ServerVersion, eng.ClientVersion(), eng.DaemonHost())}
}

// checkExperimental and checkStorage report the engine checks of
// preflight.Engine, which save and resume refuse to go on without.
func checkExperimental(eng *engine.Engine) Result {
	r := Result{Check: "experimental"}
	if eng == nil {
		r.Status, r.Finding = Skip, unreachable
	} else if err := preflight.Experimental(eng.System()); err != nil {
		r.Status, r.Finding, r.Fix = Fail, err.Error(), hint.Of(err)
	} else {
		r.Status, r.Finding = OK, "experimental features on (the engine's checkpoint API)"
	}
	return r
}

// checkRestore names the engine bug that makes every restore of the
// engine's own fail on Docker 26.0.0 and 28.0 and later, and checks that
// ckpt's runtime, which restores there instead, is where containerd finds
// it.
func checkRestore(eng *engine.Engine) Result {
	r := Result{Check: "restore"}
	if eng == nil {
		r.Status, r.Finding = Skip, unreachable
		return r
	}
	broken := eng.RestoreBroken()
	if broken == nil {
		r.Status, r.Finding = OK, "Docker "+eng.Info.ServerVersion+" starts containers from checkpoints"
		return r
	}
	return runtimeResult(broken, shim.Check)
}

// runtimeResult is the restore check on an engine that cannot restore by
// itself: whether containerd finds ckpt's runtime (check), and is it this
// ckpt.
func runtimeResult(broken error, check func() (shim.Status, error)) Result {
	r := Result{Check: "restore"}
	self, _ := os.Executable()
	st, err := check()
	link := "a link to ckpt (" + self + ") named " + shim.Binary
	switch {
	case err != nil:
		r.Status, r.Finding = Warn, fmt.Sprintf("%v; ckpt restores here through its runtime %s, and cannot tell whether containerd finds it: %v", broken, shim.Runtime, err)
		r.Fix = "run ckpt on the engine's host, where containerd runs: save and resume install " + link + " on containerd's PATH"
	case st.Path == "":
		r.Status, r.Finding = Warn, fmt.Sprintf("%v; ckpt restores here through its runtime %s, which containerd does not find: no %s in %s", broken, shim.Runtime, shim.Binary, strings.Join(st.Dirs, ":"))
		r.Fix = "nothing to do by hand: the next ckpt save or resume installs " + link + " in the first of those directories (/usr/local/bin when containerd looks there); neither the engine nor containerd is restarted"
	case !st.Self:
		r.Status, r.Finding = Warn, fmt.Sprintf("%v; containerd finds ckpt's runtime at %s, and it is another executable (%s), not this ckpt", broken, st.Path, st.Target)
		r.Fix = "the next ckpt save or resume makes it a link to this ckpt; or remove " + st.Path + " if it is not ckpt's"
	default:
		r.Status, r.Finding = OK, fmt.Sprintf("Docker cannot start a container from a checkpoint by itself (moby issue 50750); ckpt's runtime %s restores here (%s -> %s): containers keep their own network, ports and compose labels", shim.Runtime, st.Path, st.Target)
	}
	return r
}

func checkStorage(eng *engine.Engine) Result {
	r := Result{Check: "storage"}
	if eng == nil {
		r.Status, r.Finding = Skip, unreachable
	} else if err := preflight.Storage(eng.System()); err != nil {
		r.Status, r.Finding, r.Fix = Fail, err.Error(), hint.Of(err)
	} else {
		r.Status, r.Finding = OK, "storage driver overlay2"
	}
	return r
}

// checkCRIU finds CRIU on PATH and asks it for its version (over its RPC
// interface, as go-criu does). It returns the version (0 when unknown) and
// the binary's path ("" when there is none).
func checkCRIU(o Options) (int, string, Result) {
	r := Result{Check: "criu"}
	path, err := exec.LookPath("criu")
	if err != nil {
		r.Status, r.Finding = Fail, "CRIU is not installed (no criu on PATH)"
		r.Fix = fmt.Sprintf("install CRIU >= %s (scripts/setup.sh in ckpt's source builds one)", criu.FormatVersion(minCRIU(o.Kernel).version))
		return 0, "", r
	}
	type answer struct {
		v   int
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		v, err := criu.Version()
		ch <- answer{v, err}
	}()
	var a answer
	select {
	case a = <-ch:
	case <-time.After(o.Timeout):
		a.err = hint.Wrap(fmt.Errorf("criu swrk did not answer the version request within %s", o.Timeout), "run criu check as root to see what is wrong")
	}
	if a.err != nil {
		r.Status, r.Finding, r.Fix = Fail, fmt.Sprintf("%s: %v", path, a.err), hint.Of(a.err)
		if r.Fix == "" {
			r.Fix = "run criu check as root to see what is wrong"
		}
		return 0, path, r
	}
	r.Status, r.Finding = OK, fmt.Sprintf("CRIU %s at %s", criu.FormatVersion(a.v), path)
	return a.v, path, r
}

// checkCRIURuns runs criu check, which tries what CRIU needs of the kernel.
func checkCRIURuns(ctx context.Context, o Options, path string) Result {
	r := Result{Check: "criu check"}
	if path == "" {
		r.Status, r.Finding = Skip, "not checked: no criu on PATH"
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "check").CombinedOutput()
	last := lastLines(out, 3)
	if err == nil {
		r.Status, r.Finding = OK, "passed: "+orDefault(strings.Join(last, "; "), "(no output)")
		return r
	}
	why := err.Error()
	if ctx.Err() != nil {
		why = "no answer within " + o.Timeout.String()
	}
	r.Status = Fail
	r.Finding = fmt.Sprintf("criu check failed (%s)", why)
	if len(last) > 0 {
		r.Finding += ": " + strings.Join(last, "; ")
	}
	min := criu.FormatVersion(minCRIU(o.Kernel).version)
	switch s := string(out); {
	case strings.Contains(s, "Unexpected rt vDSO area bounds"):
		r.Fix = "this CRIU does not understand this kernel's vDSO: install CRIU >= 4.2 (scripts/setup.sh in ckpt's source builds one)"
	case os.Geteuid() != 0:
		r.Fix = "criu check needs root: run ckpt doctor as root"
	default:
		r.Fix = fmt.Sprintf("run criu check -v4 as root for the details; a CRIU >= %s built for this kernel fixes most failures (scripts/setup.sh in ckpt's source builds one)", min)
	}
	return r
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// lastLines returns the last n non-empty lines of out, trimmed.
func lastLines(out []byte, n int) []string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// requirement is the oldest CRIU a kernel needs, and why.
type requirement struct {
	version int
	why     string
}

// minCRIU is what this kernel needs of CRIU, and why.
func minCRIU(kernel string) requirement {
	v, why := criu.Requirement(kernel)
	return requirement{v, why}
}

// checkKernel compares the CRIU version (0: unknown) with what the kernel
// needs.
func checkKernel(kernel string, version int) Result {
	r := Result{Check: "kernel"}
	need := minCRIU(kernel)
	min := criu.FormatVersion(need.version)
	switch {
	case version == 0:
		r.Status, r.Finding = Skip, fmt.Sprintf("not checked: the CRIU version is unknown; kernel %s needs CRIU >= %s (%s)", kernel, min, need.why)
	case version < need.version:
		r.Status = Fail
		r.Finding = fmt.Sprintf("CRIU %s is too old for kernel %s: it needs >= %s (%s)", criu.FormatVersion(version), kernel, min, need.why)
		r.Fix = "install CRIU >= " + min + " (scripts/setup.sh in ckpt's source builds one)"
	default:
		r.Status = OK
		r.Finding = fmt.Sprintf("kernel %s needs CRIU >= %s, and CRIU is %s", kernel, min, criu.FormatVersion(version))
	}
	return r
}

// checkCgroup says which cgroup version the engine and the host use; ckpt
// works with both.
func checkCgroup(o Options, eng *engine.Engine) Result {
	host := "/sys/fs/cgroup is cgroup v1 (no cgroup.controllers)"
	if _, err := os.Stat(filepath.Join(o.CgroupRoot, "cgroup.controllers")); err == nil {
		host = "/sys/fs/cgroup is cgroup v2"
	}
	if o.CgroupRoot != "/sys/fs/cgroup" {
		host = strings.Replace(host, "/sys/fs/cgroup", o.CgroupRoot, 1)
	}
	engine := "engine unreachable"
	if eng != nil {
		engine = "the engine uses cgroup v" + orDefault(eng.Info.CgroupVersion, "?")
	}
	return Result{Check: "cgroup", Status: OK, Finding: engine + "; " + host}
}

// checkRuncConf checks that runc's CRIU configuration holds ckpt's block
// (criu.RuncOptions): the same test save makes before it
// rewrites the file, made on a copy.
func checkRuncConf(path string) Result {
	r := Result{Check: "runc.conf"}
	conf, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.Status, r.Finding = Warn, fmt.Sprintf("cannot read %s: %v", path, err)
		r.Fix = "make it readable; ckpt rewrites its block there on the next save"
		return r
	}
	if !exists {
		r.Status, r.Finding = Warn, path+" does not exist: CRIU cannot checkpoint established TCP connections until ckpt adds its block"
		r.Fix = "nothing to do: ckpt adds it on the next save"
		return r
	}
	changed, err := wouldChange(conf)
	switch {
	case err != nil:
		r.Status, r.Finding = Warn, "cannot check "+path+": "+err.Error()
	case changed:
		r.Status, r.Finding = Warn, path+" lacks ckpt's block ("+criu.RuncOptions()+"), or holds an older one"
		r.Fix = "nothing to do: ckpt adds it on the next save"
	default:
		r.Status, r.Finding = OK, path+" holds ckpt's block ("+criu.RuncOptions()+")"
	}
	return r
}

// wouldChange reports whether save would rewrite a runc.conf holding conf.
func wouldChange(conf []byte) (bool, error) {
	tmp, err := os.MkdirTemp("", "ckpt-doctor-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	cp := filepath.Join(tmp, "runc.conf")
	if err := os.WriteFile(cp, conf, 0o600); err != nil {
		return false, err
	}
	return criu.EnsureRuncConf(cp)
}

// nearestExisting returns dir or its nearest parent that exists.
func nearestExisting(dir string) string {
	d, err := filepath.Abs(dir)
	if err != nil {
		d = filepath.Clean(dir)
	}
	for {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			return d
		}
		d = filepath.Dir(d)
	}
}

// need is what saving one container takes in the store.
type need struct {
	name          string
	memory, data  int64
	unknownVolume bool
}

// checkIOURing names the running containers with processes that use
// io_uring, which CRIU cannot checkpoint: databases (MariaDB, MySQL,
// PostgreSQL 18) turn it on by themselves when the kernel has it.
func checkIOURing(ctx context.Context, o Options, eng *engine.Engine) Result {
	r := Result{Check: "io_uring"}
	if eng == nil {
		r.Status, r.Finding = Skip, unreachable
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	running, err := eng.Running(ctx, container.ListOptions{})
	if err != nil {
		r.Status, r.Finding = Warn, "cannot list the running containers: "+err.Error()
		return r
	}
	var found []string
	for _, c := range running {
		for _, p := range criu.IOURingUsers(c.State.Pid) {
			found = append(found, engine.Name(&c)+": "+p.String())
		}
	}
	if len(found) == 0 {
		r.Status, r.Finding = OK, fmt.Sprintf("no process of the %d running containers uses io_uring", len(running))
		return r
	}
	r.Status = Warn
	r.Finding = "io_uring, which CRIU cannot checkpoint, is used by " + strings.Join(found, "; ") + ": a hot save of these containers fails"
	r.Fix = "turn the program's io_uring off and restart the container: MariaDB and MySQL --innodb-use-native-aio=0, PostgreSQL 18 io_method=worker"
	return r
}

// checkSpace compares the store's free space with what saving the largest
// running container takes: its memory less the inactive page cache (what
// CRIU dumps), its volumes and its writable layer, with save's margin. A
// store that does not exist yet is measured at its nearest existing parent.
func checkSpace(ctx context.Context, o Options, eng *engine.Engine) Result {
	r := Result{Check: "space"}
	dir := nearestExisting(o.Store)
	free, err := o.Free(dir)
	if err != nil {
		r.Status, r.Finding = Warn, fmt.Sprintf("cannot measure free space in %s: %v", dir, err)
		r.Fix = "check that the store's file system is mounted, or " + o.otherStore()
		return r
	}
	where := dir
	if filepath.Clean(dir) != filepath.Clean(o.Store) {
		where = fmt.Sprintf("%s (the store %s does not exist yet)", dir, o.Store)
	}
	freeText := fmt.Sprintf("%s free in %s", units.Bytes(free), where)
	if eng == nil {
		r.Status, r.Finding = Skip, freeText+"; not compared with the containers: the engine is unreachable"
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	list, err := eng.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		r.Status, r.Finding = Warn, freeText+"; cannot list the running containers: "+err.Error()
		return r
	}
	if len(list) == 0 {
		r.Status, r.Finding = OK, freeText+"; no running container to compare with"
		return r
	}
	var largest *need
	for _, c := range list {
		n := measure(ctx, eng, c)
		if largest == nil || n.memory+n.data > largest.memory+largest.data {
			largest = &n
		}
	}
	// The memory counts twice: a save keeps CRIU's images beside their
	// chunks until its commit (preflight.Host.Need).
	total := 2*largest.memory + largest.data
	detail := fmt.Sprintf("the largest running container, %s, needs about %s (memory %s twice, volumes and writable layer %s)",
		largest.name, units.Bytes(total), units.Bytes(largest.memory), units.Bytes(largest.data))
	if largest.unknownVolume {
		detail += "; some of its volumes could not be measured"
	}
	if !preflight.Fits(total, free) { // exactly when save would refuse
		r.Status, r.Finding = Warn, freeText+"; "+detail
		r.Fix = "free space there (ckpt rm and ckpt prune remove old checkpoints), or " + o.otherStore()
		return r
	}
	r.Status, r.Finding = OK, freeText+"; "+detail
	return r
}

// measure estimates what saving container c takes, as a save does
// (preflight.Host.Need).
func measure(ctx context.Context, eng *engine.Engine, c container.Summary) need {
	n := need{name: c.ID}
	if len(c.Names) > 0 {
		n.name = strings.TrimPrefix(c.Names[0], "/")
	} else if len(n.name) > 12 {
		n.name = n.name[:12]
	}
	n.memory = eng.DumpMemory(ctx, c.ID)
	insp, err := eng.ContainerInspect(ctx, c.ID)
	if err != nil {
		n.unknownVolume = true
		return n
	}
	upper, err := engine.UpperDir(&insp)
	if err != nil {
		n.unknownVolume = true
		return n
	}
	total, err := preflight.Host{}.Need(&insp, upper, n.memory)
	if err != nil {
		n.unknownVolume = true
		return n
	}
	n.data = total - 2*n.memory
	return n
}

// checkLeftovers looks for the copies of restored checkpoints containerd
// leaves in its temporary directory (containerd issue 10166); resume
// removes the one it caused, but not those of docker start --checkpoint or
// of a ckpt that was killed.
func checkLeftovers(dirs []string) Result {
	r := Result{Check: "leftovers"}
	var found, patterns []string
	var total int64
	for _, d := range dirs {
		pattern := filepath.Join(d, engine.LeakPattern)
		patterns = append(patterns, pattern)
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if st, err := os.Lstat(m); err != nil || !st.IsDir() {
				continue
			}
			found = append(found, m)
			if n, err := archive.Size(m); err == nil {
				total += n
			}
		}
	}
	if len(found) == 0 {
		r.Status, r.Finding = OK, "no leftover "+strings.Join(patterns, " or ")+" directories"
		return r
	}
	sort.Strings(found)
	copies, hold := "copies", "hold"
	if len(found) == 1 {
		copies, hold = "copy", "holds"
	}
	r.Status = Warn
	r.Finding = fmt.Sprintf("%d leftover %s of restored checkpoints (%s) %s %s: containerd leaves one for every restore (containerd issue 10166)",
		len(found), copies, strings.Join(patterns, ", "), hold, units.Bytes(total))
	r.Fix = fmt.Sprintf("rm -rf %s (when no container restore is running)", strings.Join(patterns, " "))
	return r
}
