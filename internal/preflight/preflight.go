// Package preflight holds the checks that decide whether a save or a resume
// can go ahead, before anything is touched: the engine's experimental
// features and storage driver, CRIU against the kernel and runc's CRIU
// configuration, and room in the store. Save, resume and ckpt doctor call
// the same checks, so doctor warns exactly when a save would refuse.
package preflight

import (
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/archive"
	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/shim"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// Experimental returns an error when the engine has experimental features
// off: its checkpoint API needs them.
func Experimental(info system.Info) error {
	if info.ExperimentalBuild {
		return nil
	}
	return hint.New("the Docker engine has experimental features off, and checkpoints need them",
		`add {"experimental": true} to /etc/docker/daemon.json and restart dockerd`)
}

// Storage returns an error when the engine's storage driver keeps writable
// layers ckpt cannot read.
func Storage(info system.Info) error {
	if info.Driver == "overlay2" {
		return nil
	}
	return hint.New(fmt.Sprintf("the Docker engine uses the %s storage driver; ckpt reads writable layers of overlay2 only", orNone(info.Driver)),
		`set "storage-driver": "overlay2" in /etc/docker/daemon.json (existing containers and images stay with the old driver)`)
}

// Engine is Experimental and Storage: whether this engine can save and
// resume containers at all.
func Engine(info system.Info) error {
	if err := Experimental(info); err != nil {
		return err
	}
	return Storage(info)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Host is the machine the checks read and the CRIU configuration they
// keep. The zero value is this host; tests fill in functions of their own.
type Host struct {
	// CRIU returns CRIU's version, or why it cannot checkpoint or restore
	// on this kernel (default criu.Check).
	CRIU func() (int, error)
	// RuncConf makes sure runc's CRIU configuration holds ckpt's block
	// (default criu.EnsureRuncConf of criu.RuncConf).
	RuncConf func() error
	// WithRuncOptions runs fn, one checkpoint or restore, with extra lines
	// in ckpt's block of runc's CRIU configuration (default
	// criu.WithRuncOptions of criu.RuncConf).
	WithRuncOptions func(extra []string, fn func() error) error
	// Facts describes this host's kernel, architecture and CPU, for
	// checkpoints taken elsewhere (default criu.HostFacts).
	Facts func() criu.Facts
	// Free returns the bytes free for ckpt in the file system of dir
	// (default statfs).
	Free func(dir string) (int64, error)
	// Size returns the bytes a tree holds (default archive.Size).
	Size func(dir string) (int64, error)
	// FreeInodes returns the files that can still be made in the file
	// system of dir (default statfs).
	FreeInodes func(dir string) (int64, error)
	// Runtime makes sure the engine's containerd finds ckpt's runtime
	// (io.containerd.ckpt.v2), which restores containers on engines that
	// cannot, and returns where it is (default shim.Install).
	Runtime func() (string, error)
}

// withDefaults fills in what h leaves unset with this host's.
func (h Host) withDefaults() Host {
	if h.CRIU == nil {
		h.CRIU = criu.Check
	}
	if h.RuncConf == nil {
		h.RuncConf = func() error {
			if _, err := criu.EnsureRuncConf(criu.RuncConf); err != nil {
				return hint.Wrap(err, "run ckpt as root: it keeps "+criu.RuncOptions()+" in "+criu.RuncConf)
			}
			return nil
		}
	}
	if h.WithRuncOptions == nil {
		h.WithRuncOptions = func(extra []string, fn func() error) error {
			return criu.WithRuncOptions(criu.RuncConf, extra, fn)
		}
	}
	if h.Facts == nil {
		h.Facts = criu.HostFacts
	}
	if h.Free == nil {
		h.Free = Free
	}
	if h.Size == nil {
		h.Size = archive.Size
	}
	if h.FreeInodes == nil {
		h.FreeInodes = FreeInodes
	}
	if h.Runtime == nil {
		h.Runtime = func() (string, error) {
			if os.Getenv(NoRuntimeEnv) == "1" {
				return "", fmt.Errorf("%s=1 says not to use it", NoRuntimeEnv)
			}
			return shim.Install()
		}
	}
	return h
}

// NoRuntimeEnv names the environment variable that, set to 1, keeps ckpt
// from using (and installing) its runtime: on an engine that cannot restore
// by itself, containers are then saved to resume inside a network holder,
// as before ckpt had its runtime (docs/engines.md).
const NoRuntimeEnv = "CKPT_NO_RUNTIME"

// RestoreRuntime makes sure the engine finds ckpt's runtime, and returns
// where it is (Runtime).
func (h Host) RestoreRuntime() (string, error) { return h.withDefaults().Runtime() }

// Memory checks what a hot save and a resume with memory need of the host:
// a CRIU that works on this kernel, and ckpt's block in runc's CRIU
// configuration. It returns CRIU's version.
func (h Host) Memory() (int, error) {
	h = h.withDefaults()
	v, err := h.CRIU()
	if err != nil {
		return v, err
	}
	return v, h.RuncConf()
}

// WithOptions runs fn with extra lines in runc's CRIU configuration; with
// none, it just runs fn.
func (h Host) WithOptions(extra []string, fn func() error) error {
	if len(extra) == 0 {
		return fn()
	}
	if err := criu.CheckRuncOptions(extra); err != nil {
		return err
	}
	return h.withDefaults().WithRuncOptions(extra, fn)
}

// Here returns this host's facts, as a checkpoint made here records them.
func (h Host) Here() criu.Facts { return h.withDefaults().Facts() }

// Compatible returns an error when a checkpoint taken on a host described by
// from cannot be restored with memory on this one.
func (h Host) Compatible(from criu.Facts) error {
	return criu.Compatible(from, h.Here())
}

// Captured reports whether a save captures the contents of mount m: a
// named volume of the local driver. Other volumes are recorded only.
func Captured(m container.MountPoint) bool {
	return m.Type == "volume" && m.Driver == "local"
}

// Need estimates the bytes a save of container c takes in the store at
// most: memory twice (the engine's estimate of what CRIU dumps; 0 for a
// cold save: CRIU's images stay until the commit, beside their chunks,
// which the store may not have yet), its writable layer at upper, and
// every volume the save captures.
func (h Host) Need(c *container.InspectResponse, upper string, memory int64) (int64, error) {
	h = h.withDefaults()
	roots := []string{upper}
	for _, m := range c.Mounts {
		if Captured(m) {
			roots = append(roots, m.Source)
		}
	}
	need := 2 * memory
	for _, r := range roots {
		n, err := h.Size(r)
		if err != nil {
			return 0, err
		}
		need += n
	}
	return need, nil
}

// Space returns an error when need bytes, saving container name, do not fit
// in the store at dir (Fits), or when need is negative.
func (h Host) Space(dir, name string, need int64) error {
	if need < 0 {
		return fmt.Errorf("cannot check the space to save %s: %d bytes needed is negative", name, need)
	}
	free, err := h.withDefaults().Free(dir)
	if err != nil {
		return err
	}
	if !Fits(need, free) {
		return &SpaceError{Dir: dir, Container: name, Need: need, Free: free}
	}
	return nil
}

// SpaceError is the error of a save, an import or a resume that does not
// fit; it was refused before anything was changed.
type SpaceError struct {
	// Dir is the directory that lacks room: the store's, or the engine's
	// for a resume.
	Dir string
	// Container is the container to save or resume.
	Container string
	// Resume is true when the container was to be resumed, not saved.
	Resume bool
	// Need and Free are the bytes needed and those free in Dir; when
	// Inodes is true, the files (inodes) instead.
	Need, Free int64
	Inodes     bool
}

func (e *SpaceError) Error() string {
	op := "save"
	if e.Resume {
		op = "resume"
	}
	if e.Inodes {
		return fmt.Sprintf("not enough free inodes in %s to %s %s: %d files to make, %d free", e.Dir, op, e.Container, e.Need, e.Free)
	}
	return fmt.Sprintf("not enough space in %s to %s %s: about %s needed, %s free", e.Dir, op, e.Container, units.Bytes(e.Need), units.Bytes(e.Free))
}

// Room returns an error when what a resume of container name writes into
// the file system of dir, bytes and files (inodes) as its checkpoint
// declares them, does not fit there (Fits, with its margin).
func (h Host) Room(dir, name string, bytes, files int64) error {
	h = h.withDefaults()
	if bytes < 0 || files < 0 {
		return fmt.Errorf("cannot check the room to resume %s: %d bytes and %d files", name, bytes, files)
	}
	free, err := h.Free(dir)
	if err != nil {
		return err
	}
	if !Fits(bytes, free) {
		return &SpaceError{Dir: dir, Container: name, Resume: true, Need: bytes, Free: free}
	}
	inodes, err := h.FreeInodes(dir)
	if err != nil {
		return err
	}
	if files > inodes || files/20+1000 > inodes-files {
		return &SpaceError{Dir: dir, Container: name, Resume: true, Need: files, Free: inodes, Inodes: true}
	}
	return nil
}

// Fits reports whether a save estimated to need need bytes fits in free
// bytes, with a margin of 5% and 16 MiB for what the estimate misses. The
// margin is compared with what is left once need is taken, so that no sum
// wraps around however large need is; a negative need never fits.
func Fits(need, free int64) bool {
	if need < 0 || need > free {
		return false
	}
	return need/20+16<<20 <= free-need
}

// Free returns the bytes available to an unprivileged user in the file
// system of dir; math.MaxInt64 when there are more.
func Free(dir string) (int64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, fmt.Errorf("cannot measure free space in %s: %w", dir, err)
	}
	return blocksBytes(uint64(fs.Bavail), int64(fs.Bsize)), nil
}

// FreeInodes returns the files that can still be made in the file system
// of dir; math.MaxInt64 for file systems that do not count them (Files is
// 0: btrfs).
func FreeInodes(dir string) (int64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, fmt.Errorf("cannot count free inodes in %s: %w", dir, err)
	}
	if fs.Files == 0 {
		return math.MaxInt64, nil
	}
	return blocksBytes(fs.Ffree, 1), nil
}

// blocksBytes is n blocks of size bytes, or math.MaxInt64 when that is more
// than an int64 holds.
func blocksBytes(n uint64, size int64) int64 {
	if size <= 0 || n == 0 {
		return 0
	}
	if n > uint64(math.MaxInt64/size) {
		return math.MaxInt64
	}
	return int64(n) * size
}

// ErrTooLarge is the error of sizes that add up to more than an int64
// holds, 8 EiB: no store has that much room, and such sizes, added up
// without a check, wrap around to a small or negative total that passes
// any check of free space.
var ErrTooLarge = errors.New("the sizes add up to more than 8 EiB")

// SumSizes adds sizes in bytes, such as those a checkpoint's manifest
// declares for its files, and returns an error when one of them is
// negative or when they add up to more than an int64 holds (ErrTooLarge).
// A checkpoint from elsewhere declares what it likes: its sizes are added
// with SumSizes before they are compared with free space.
func SumSizes(sizes ...int64) (int64, error) {
	var total int64
	for _, n := range sizes {
		if n < 0 {
			return 0, fmt.Errorf("a size is negative (%d)", n)
		}
		if n > math.MaxInt64-total {
			return 0, ErrTooLarge
		}
		total += n
	}
	return total, nil
}
