// Package engine talks to the Docker engine: connection and capability
// checks, container lookup, and starting a container from CRIU images kept
// outside the engine.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"

	"github.com/ckpt-dev/ckpt/internal/ctrd"
	"github.com/ckpt-dev/ckpt/internal/fault"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
)

// Engine is a connected Docker engine.
type Engine struct {
	*client.Client
	// Info is the engine's system information, read at connect time.
	Info system.Info
}

// Connect reaches the engine named by the usual DOCKER_HOST environment (the
// local socket by default), negotiating the API version.
func Connect(ctx context.Context) (*Engine, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, hint.Wrap(fmt.Errorf("cannot set up the Docker client: %w", err), "check DOCKER_HOST and DOCKER_CERT_PATH")
	}
	unreachable := func(err error) error {
		return hint.Wrap(fmt.Errorf("cannot reach the Docker engine at %s: %w", c.DaemonHost(), err),
			"start it (systemctl start docker, or scripts/engine.sh start) or point DOCKER_HOST at a running one")
	}
	ping, err := c.Ping(ctx)
	if err != nil {
		c.Close()
		return nil, unreachable(err)
	}
	// The version from this ping, not from another one before the first
	// request.
	c.NegotiateAPIVersionPing(ping)
	info, err := c.Info(ctx)
	if err != nil {
		c.Close()
		return nil, unreachable(err)
	}
	return &Engine{Client: c, Info: info}, nil
}

// ViaEnv names the environment variable that picks how a checkpoint is
// taken: "containerd" (the default) through the engine's own containerd,
// CRIU writing straight into the store; "engine" through Docker's
// checkpoint API, which copies the images through containerd's content
// store (16.4 s against 0.7 s for 512 MiB on Docker 20.10 here,
// bench/README.md).
const ViaEnv = "CKPT_CHECKPOINT_VIA"

// CheckpointCreate checkpoints container id into
// opts.CheckpointDir/opts.CheckpointID: through the engine's containerd
// when it runs on this host and can be reached, else through Docker's API.
// With opts.Exit the engine may still call the container running when it
// returns: see WaitStopped.
func (e *Engine) CheckpointCreate(ctx context.Context, id string, opts checkpoint.CreateOptions) error {
	if os.Getenv(ViaEnv) != "engine" && strings.HasPrefix(e.DaemonHost(), "unix://") {
		err := ctrd.Checkpoint(ctx, id, filepath.Join(opts.CheckpointDir, opts.CheckpointID), opts.Exit)
		if !errors.Is(err, ctrd.ErrUnavailable) {
			return err
		}
	}
	return e.Client.CheckpointCreate(ctx, id, opts)
}

// stopWait bounds how long WaitStopped waits for the engine.
const stopWait = 30 * time.Second

// WaitStopped returns once the engine sees container id stopped. After a
// checkpoint through containerd the task is gone at once, but the engine
// learns it from containerd's events, in its own time (1 s for a process
// of 2 GiB here, the kernel freeing its memory): until then it still calls
// the container running, and a save that fails right after its checkpoint
// would not start it again. A save waits for it while it takes in the
// images.
func (e *Engine) WaitStopped(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, stopWait)
	defer cancel()
	waited, errs := e.Client.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case <-waited:
		return nil
	case err := <-errs:
		return fmt.Errorf("the engine did not see %s stop after its checkpoint within %v: %w", id, stopWait, err)
	}
}

// System returns the engine's system information, read at connect time.
func (e *Engine) System() system.Info { return e.Info }

// Lookup inspects the container with the given name or id. It returns nil
// and no error when there is no such container.
func (e *Engine) Lookup(ctx context.Context, name string) (*container.InspectResponse, error) {
	c, err := e.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &c, nil
}

// Looker finds containers by name or id.
type Looker interface {
	// Lookup returns the container named or identified by ref, or nil and no
	// error when there is none.
	Lookup(ctx context.Context, ref string) (*container.InspectResponse, error)
}

// Find is Lookup for a container that must exist.
func Find(ctx context.Context, l Looker, ref string) (*container.InspectResponse, error) {
	c, err := l.Lookup(ctx, ref)
	if err == nil && c == nil {
		err = hint.New("no such container: "+ref, "docker ps -a lists containers, ckpt ls lists saved ones")
	}
	return c, err
}

// Create creates container name and returns its id.
func (e *Engine) Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (string, error) {
	created, err := e.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	return created.ID, err
}

// ImageID returns the id of the image ref names; an error for which
// errdefs.IsNotFound holds when there is none.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := e.ImageInspect(ctx, ref)
	return img.ID, err
}

// SetRestartPolicy sets container id's restart policy.
func (e *Engine) SetRestartPolicy(ctx context.Context, id string, p format.RestartPolicy) error {
	_, err := e.ContainerUpdate(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{
		Name: container.RestartPolicyMode(p.Name), MaximumRetryCount: p.MaximumRetryCount}})
	return err
}

// Name returns the container's name without the engine's leading slash.
func Name(c *container.InspectResponse) string { return strings.TrimPrefix(c.Name, "/") }

// UpperDir returns the directory holding the container's writable layer.
func UpperDir(c *container.InspectResponse) (string, error) {
	if c.GraphDriver.Name != "overlay2" || c.GraphDriver.Data["UpperDir"] == "" {
		return "", fmt.Errorf("container %s uses storage driver %q; ckpt reads writable layers of overlay2 only", Name(c), c.GraphDriver.Name)
	}
	return c.GraphDriver.Data["UpperDir"], nil
}

// StartFromCheckpoint starts container id from the CRIU images in dir. The
// engine refuses a checkpoint directory of our choosing on start, so the
// images are placed where the engine keeps the container's own checkpoints,
// and removed again after; see placeImages for how (RestoreViaEnv). When the
// start fails, it returns CRIU's restore log too, when it could be caught:
// the engine deletes it along with the failed task.
func (e *Engine) StartFromCheckpoint(ctx context.Context, id, dir string) (restoreLog []byte, err error) {
	if os.Getenv(RestoreViaEnv) != "images" {
		log, err := e.startPlaced(ctx, id, dir, "links", symlinkTree)
		if err == nil || !linksNotFollowed(err, log) {
			return log, err
		}
		// The engine or CRIU did not follow the links (no CRIU log
		// caught, or an image it could not open): hand it the images.
	}
	return e.startPlaced(ctx, id, dir, "images", linkTree)
}

// RestoreViaEnv names the environment variable that picks how the images
// are handed to the engine on resume: "links" (the default), a directory of
// symbolic links to the store's images, which the engine copies through
// containerd's content store in a few kilobytes while CRIU reads the store's
// files; "images", the images themselves (hard links, or copies across file
// systems), which the engine copies whole: tar, content store, untar into
// containerd's temporary directory (12.4 s against 1.2 s for 512 MiB on
// Docker 20.10 here, bench/README.md). A start through links that fails
// because they were not followed is tried again with the images.
const RestoreViaEnv = "CKPT_RESTORE_VIA"

// startPlaced places the images of dir with place into a checkpoint of the
// container's and starts the container from it. how names the placement
// (RestoreViaEnv) in the fault point passed once it is done.
func (e *Engine) startPlaced(ctx context.Context, id, dir, how string, place func(src, dst string) error) ([]byte, error) {
	b := make([]byte, 6)
	rand.Read(b)
	name := "ckpt-" + hex.EncodeToString(b)
	parent := filepath.Join(e.Info.DockerRootDir, "containers", id, "checkpoints")
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("cannot place checkpoint images for the engine: %w", err)
	}
	dst := filepath.Join(parent, name)
	defer os.RemoveAll(dst)
	if err := place(dir, dst); err != nil {
		return nil, fmt.Errorf("cannot place checkpoint images for the engine: %w", err)
	}
	fault.Point("engine:placed " + how)
	catch := e.catchLog(id, "restore.log")
	err := e.ContainerStart(ctx, id, container.StartOptions{CheckpointID: name})
	log := catch()
	RemoveLeakedCopy(dir)
	if err != nil {
		return log, err
	}
	return nil, nil
}

// catchLog opens CRIU's log file in the task's work directory as soon as it
// appears and keeps it open, so that its contents can still be read after
// the engine deletes the directory of a failed task. The returned function
// stops watching and returns what the log held (nil if it never appeared).
func (e *Engine) catchLog(id, name string) func() []byte {
	candidates := []string{
		// containerd started by dockerd, and a system containerd
		filepath.Join(e.Info.DockerRootDir, "containerd/daemon/io.containerd.runtime.v2.task/moby", id, name),
		filepath.Join("/var/lib/containerd/io.containerd.runtime.v2.task/moby", id, name),
	}
	stop := make(chan struct{})
	found := make(chan *os.File, 1)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			for _, c := range candidates {
				if f, err := os.Open(c); err == nil {
					found <- f
					return
				}
			}
			select {
			case <-stop:
				found <- nil
				return
			case <-t.C:
			}
		}
	}()
	return func() []byte {
		close(stop)
		f := <-found
		if f == nil {
			return nil
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		return b
	}
}

// linkTree recreates the tree at src under dst with hard links, falling back
// to copies where src and dst are on different file systems.
func linkTree(src, dst string) error {
	return placeTree(src, dst, func(path, target string) error {
		if err := os.Link(path, target); err == nil {
			return nil
		} else if !errors.Is(err, fs.ErrPermission) && !isCrossDevice(err) {
			return err
		}
		return copyFile(path, target)
	})
}

// symlinkTree recreates the tree at src under dst with symbolic links to its
// files (linkTo).
func symlinkTree(src, dst string) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	return placeTree(abs, dst, func(path, target string) error {
		return os.Symlink(linkTo(path), target)
	})
}

// linkTo returns the target of a symbolic link to the file at the absolute
// path: the path made relative to the root by climbing with ".." first, as
// many times as any directory can be deep, so that the link resolves to the
// same file wherever it is moved (containerd unpacks the engine's
// checkpoints into a temporary directory of its choosing) and by whichever
// root: CRIU opens some images after it has switched to the container's
// root, where an absolute link would name a file in the container; ".."
// stops at the mount namespace's root, and the walk starts in the host's
// tree, from the directory CRIU opened before the switch.
func linkTo(path string) string {
	return strings.Repeat("../", linkDepth) + strings.TrimPrefix(path, "/")
}

// linkDepth is how deep a directory holding links of linkTo may be.
const linkDepth = 64

// linksNotFollowed reports whether a start through symlinkTree failed
// because the links were not followed: the engine refused them before
// CRIU ran (no log), or CRIU could not open an image.
func linksNotFollowed(err error, log []byte) bool {
	return log == nil || imageNotOpened.Match(log) || imageNotOpened.MatchString(err.Error())
}

var imageNotOpened = regexp.MustCompile(`Unable to open [^ ]*\.img|No [^ ]*\.img image|invalid symlink|breakout`)

// placeTree recreates the directories of the tree at src under dst, placing
// each regular file with place(path in src, path in dst).
func placeTree(src, dst string, place func(path, target string) error) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.Mkdir(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path)
		}
		return place(path, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Running lists the running containers that match opts' filters. The
// engine's list can lag behind a container that has just stopped (one that
// was checkpointed a moment ago); each container's inspect document does
// not, so it decides. Network holders (HolderLabel) are left out: they are
// part of the container they hold a namespace for.
func (e *Engine) Running(ctx context.Context, opts container.ListOptions) ([]container.InspectResponse, error) {
	opts.All = false
	list, err := e.ContainerList(ctx, opts)
	if err != nil {
		return nil, err
	}
	var out []container.InspectResponse
	for _, c := range list {
		ins, err := e.Lookup(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		if ins == nil || ins.State == nil || !ins.State.Running {
			continue
		}
		if ins.Config != nil {
			if _, holder := ins.Config.Labels[HolderLabel]; holder {
				continue // a network holder is part of another container
			}
		}
		out = append(out, *ins)
	}
	return out, nil
}

// DumpMemory estimates how much memory CRIU will dump for container id:
// what the container uses minus its inactive page cache (file pages, which
// CRIU does not dump), as docker stats counts it. It is 0 when the engine
// cannot say.
func (e *Engine) DumpMemory(ctx context.Context, id string) int64 {
	stats, err := e.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return 0
	}
	defer stats.Body.Close()
	var v container.StatsResponse
	if err := json.NewDecoder(io.LimitReader(stats.Body, 16<<20)).Decode(&v); err != nil {
		return 0
	}
	cache := v.MemoryStats.Stats["total_inactive_file"] // cgroup v1
	if c, ok := v.MemoryStats.Stats["inactive_file"]; ok && cache == 0 {
		cache = c // cgroup v2
	}
	if cache >= v.MemoryStats.Usage {
		return 0
	}
	return int64(v.MemoryStats.Usage - cache)
}
