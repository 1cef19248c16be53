// Package fake is an in-memory container engine for unit tests of save,
// resume and the hooks: containers, volumes, networks and images live in
// maps, writable layers and volumes are directories under a temporary
// directory, and a checkpoint is a few small files. Any call can be made to
// fail, or to run a function first (to cancel a context mid-save, say), and
// every call is recorded. It implements the engine interfaces of
// checkpoint, restore and hook as the Docker adapter (internal/engine)
// does; it decides nothing the real engine's tests would not catch.
package fake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/storage"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"

	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/shim"
)

// Engine is the fake engine. Use New.
type Engine struct {
	// Info is what System returns; New sets a Docker 20.10 engine with
	// experimental features on, overlay2 and cgroup v1.
	Info system.Info
	// Memory is what DumpMemory returns.
	Memory int64
	// Images are the image files CheckpointCreate writes, name to content.
	Images map[string]string
	// RestoreLog is what a failing StartFromCheckpoint returns as CRIU's log.
	RestoreLog []byte

	dir        string
	mu         sync.Mutex
	containers map[string]*container.InspectResponse // by id
	volumes    map[string]*volume.Volume
	networks   map[string]*network.Inspect
	images     map[string]string // reference or id to id
	calls      []string
	fail       map[string][]error
	before     map[string]func()
	restored   map[string]string // container id to the images it was started from
	// restoreConfig is, by container id, the CRIU configuration a restore
	// through ckpt's runtime was given.
	restoreConfig map[string]string
}

// New returns an empty engine keeping its directories under dir.
func New(dir string) *Engine {
	return &Engine{
		Info: system.Info{ServerVersion: "20.10.24", Driver: "overlay2", ExperimentalBuild: true, CgroupVersion: "1",
			DockerRootDir: filepath.Join(dir, "docker")},
		Memory:        1 << 20,
		Images:        map[string]string{"inventory.img": "inventory", "core-1.img": "core", "pages-1.img": strings.Repeat("p", 4096)},
		dir:           dir,
		containers:    map[string]*container.InspectResponse{},
		volumes:       map[string]*volume.Volume{},
		networks:      map[string]*network.Inspect{},
		images:        map[string]string{},
		fail:          map[string][]error{},
		before:        map[string]func(){},
		restored:      map[string]string{},
		restoreConfig: map[string]string{},
	}
}

// FailOn makes the next calls of method (a method name: "CheckpointCreate")
// return errs in turn, one per call; a nil entry lets that call through.
func (f *Engine) FailOn(method string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = append(f.fail[method], errs...)
}

// Before runs fn at the start of every call of method, before it acts.
func (f *Engine) Before(method string, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before[method] = fn
}

// Calls returns the calls made so far, "Method arg", in order.
func (f *Engine) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Called reports how many calls of method were made.
func (f *Engine) Called(method string) int {
	n := 0
	for _, c := range f.Calls() {
		if c == method || strings.HasPrefix(c, method+" ") {
			n++
		}
	}
	return n
}

// RestoredFrom returns the images directory container id was last started
// from by StartFromCheckpoint, "" if none.
// RestoreConfig returns the CRIU configuration that container id was
// restored with through ckpt's runtime ("" for none).
func (f *Engine) RestoreConfig(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restoreConfig[id]
}

// RestoredFrom returns the images container id was last started from.
func (f *Engine) RestoredFrom(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restored[id]
}

// enter records a call and returns the error it must fail with, if any. It
// runs the method's Before function without the lock held.
func (f *Engine) enter(method, arg string) error {
	f.mu.Lock()
	fn := f.before[method]
	f.mu.Unlock()
	if fn != nil {
		fn()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.TrimSpace(method+" "+arg))
	if errs := f.fail[method]; len(errs) > 0 {
		f.fail[method] = errs[1:]
		return errs[0]
	}
	return nil
}

func notFound(what, ref string) error {
	return fmt.Errorf("no such %s: %s: %w", what, ref, cerrdefs.ErrNotFound)
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// clone deep-copies v through JSON, as the engine's API would.
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

// find returns the container ref names (a name, an id or an id prefix);
// the lock must be held.
func (f *Engine) find(ref string) *container.InspectResponse {
	if c, ok := f.containers[ref]; ok {
		return c
	}
	for id, c := range f.containers {
		if c.Name == "/"+ref || (len(ref) >= 4 && strings.HasPrefix(id, ref)) {
			return c
		}
	}
	return nil
}

// AddImage makes image ref known and returns its id.
func (f *Engine) AddImage(ref string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.images[ref]; ok {
		return id
	}
	id := "sha256:" + newID()
	f.images[ref], f.images[id] = id, id
	return id
}

// RemoveImage forgets image ref (its id stays known when ref is a tag).
func (f *Engine) RemoveImage(ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.images, ref)
}

// Run creates and starts container name from image (added if unknown),
// with the named volumes mounted ("name:/destination", created if
// missing), and returns its id.
func (f *Engine) Run(name, image string, volumes ...string) string {
	f.AddImage(image)
	ctx := context.Background()
	id, err := f.Create(ctx, name, &container.Config{Image: image, Labels: map[string]string{}},
		&container.HostConfig{Binds: volumes, NetworkMode: "default"}, nil)
	if err == nil {
		err = f.ContainerStart(ctx, id, container.StartOptions{})
	}
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
	return id
}

// Update changes container ref in place.
func (f *Engine) Update(ref string, fn func(*container.InspectResponse)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.find(ref))
}

// UpperDir returns container ref's writable layer directory.
func (f *Engine) UpperDir(ref string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.find(ref).GraphDriver.Data["UpperDir"]
}

// System implements the engine interfaces.
func (f *Engine) System() system.Info { return f.Info }

// ClientVersion implements the engine interfaces.
func (f *Engine) ClientVersion() string { return "1.41" }

// Lookup implements the engine interfaces.
func (f *Engine) Lookup(ctx context.Context, ref string) (*container.InspectResponse, error) {
	if err := f.enter("Lookup", ref); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(ref)
	if c == nil {
		return nil, nil
	}
	return clone(c), nil
}

// Running implements the engine interfaces: running containers, network
// holders left out, filtered by "label" filters only.
func (f *Engine) Running(ctx context.Context, opts container.ListOptions) ([]container.InspectResponse, error) {
	if err := f.enter("Running", ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []container.InspectResponse
	for _, c := range f.containers {
		if !c.State.Running || c.Config.Labels[engine.HolderLabel] != "" {
			continue
		}
		match := true
		for _, l := range opts.Filters.Get("label") {
			k, v, _ := strings.Cut(l, "=")
			if got, ok := c.Config.Labels[k]; !ok || got != v {
				match = false
			}
		}
		if match {
			out = append(out, *clone(c))
		}
	}
	return out, nil
}

// DumpMemory implements the engine interfaces.
func (f *Engine) DumpMemory(ctx context.Context, id string) int64 { return f.Memory }

// locked records a call of method on container id and returns the
// container with the lock held (release it with f.mu.Unlock), or the error
// the call fails with.
func (f *Engine) locked(method, id string) (*container.InspectResponse, error) {
	if err := f.enter(method, id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	c := f.find(id)
	if c == nil {
		f.mu.Unlock()
		return nil, notFound("container", id)
	}
	return c, nil
}

// setState changes container id's state; the lock must be held.
func (f *Engine) setState(id string, fn func(*container.State) error) error {
	c := f.find(id)
	if c == nil {
		return notFound("container", id)
	}
	if err := fn(c.State); err != nil {
		return err
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	switch {
	case c.State.Running && c.State.Status != "running" && c.State.Status != "paused":
		c.State.StartedAt = now
	case !c.State.Running && (c.State.Status == "running" || c.State.Status == "paused"):
		c.State.FinishedAt = now
	}
	switch {
	case c.State.Paused:
		c.State.Status = "paused"
	case c.State.Running:
		c.State.Status = "running"
	default:
		c.State.Status = "exited"
	}
	return nil
}

func (f *Engine) change(method, id string, fn func(*container.State) error) error {
	if err := f.enter(method, id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.setState(id, fn)
}

// ContainerStart implements the engine interfaces.
// A container of ckpt's runtime (shim.Runtime) with a restore request
// (shim.Ask) is restored from its images, as ckpt's runc does at create.
func (f *Engine) ContainerStart(ctx context.Context, id string, opts container.StartOptions) error {
	if err := f.enter("ContainerStart", id); err != nil {
		return err
	}
	f.mu.Lock()
	c := f.find(id)
	f.mu.Unlock()
	restore, config := "", ""
	if c != nil && c.HostConfig.Runtime == shim.Runtime {
		req, err := shim.Take(c.ID)
		if err != nil {
			return err
		}
		if req != nil {
			if _, err := os.Stat(filepath.Join(req.Images, "inventory.img")); err != nil {
				return fmt.Errorf("OCI runtime create failed: no checkpoint images in %s: %w", req.Images, err)
			}
			restore = req.Images
			if req.Config != "" {
				b, err := os.ReadFile(req.Config)
				if err != nil {
					return err
				}
				config = string(b)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.setState(id, func(s *container.State) error {
		s.Running, s.Paused, s.Pid, s.ExitCode = true, false, os.Getpid(), 0
		if restore != "" {
			f.restored[c.ID], f.restoreConfig[c.ID] = restore, config
		}
		return nil
	})
}

// ContainerStop implements the engine interfaces.
func (f *Engine) ContainerStop(ctx context.Context, id string, opts container.StopOptions) error {
	return f.change("ContainerStop", id, func(s *container.State) error {
		s.Running, s.Paused, s.Pid = false, false, 0
		return nil
	})
}

// ContainerKill implements the engine interfaces.
func (f *Engine) ContainerKill(ctx context.Context, id, signal string) error {
	return f.change("ContainerKill", id, func(s *container.State) error {
		if !s.Running {
			return fmt.Errorf("container %s is not running: %w", id, cerrdefs.ErrConflict)
		}
		s.Running, s.Paused, s.Pid, s.ExitCode = false, false, 0, 137
		return nil
	})
}

// ContainerPause implements the engine interfaces.
func (f *Engine) ContainerPause(ctx context.Context, id string) error {
	return f.change("ContainerPause", id, func(s *container.State) error {
		if !s.Running || s.Paused {
			return fmt.Errorf("container %s is not running or already paused: %w", id, cerrdefs.ErrConflict)
		}
		s.Paused = true
		return nil
	})
}

// ContainerUnpause implements the engine interfaces.
func (f *Engine) ContainerUnpause(ctx context.Context, id string) error {
	return f.change("ContainerUnpause", id, func(s *container.State) error {
		if !s.Paused {
			return fmt.Errorf("container %s is not paused: %w", id, cerrdefs.ErrConflict)
		}
		s.Paused = false
		return nil
	})
}

// SetRestartPolicy implements the engine interfaces.
func (f *Engine) SetRestartPolicy(ctx context.Context, id string, p format.RestartPolicy) error {
	if err := f.enter("SetRestartPolicy", id+" "+p.Name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return notFound("container", id)
	}
	c.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(p.Name), MaximumRetryCount: p.MaximumRetryCount}
	return nil
}

// CheckpointCreate implements the engine interfaces: it writes f.Images
// into the checkpoint directory and, with Exit, stops the container as the
// engine does (exit code 137).
func (f *Engine) CheckpointCreate(ctx context.Context, id string, opts checkpoint.CreateOptions) error {
	c, err := f.locked("CheckpointCreate", id)
	if err != nil {
		return err
	}
	defer f.mu.Unlock()
	if !c.State.Running {
		return fmt.Errorf("container %s is not running: %w", id, cerrdefs.ErrConflict)
	}
	dir := filepath.Join(opts.CheckpointDir, opts.CheckpointID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, content := range f.Images {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	if opts.Exit {
		c.State.Running, c.State.Paused, c.State.Pid, c.State.ExitCode, c.State.Status = false, false, 0, 137, "exited"
		c.State.FinishedAt = time.Now().UTC().Format(time.RFC3339Nano)
	}
	return nil
}

// WaitStopped implements the engine interfaces: the container is stopped
// once CheckpointCreate with Exit returns.
func (f *Engine) WaitStopped(ctx context.Context, id string) error {
	_, err := f.locked("WaitStopped", id)
	if err != nil {
		return err
	}
	f.mu.Unlock()
	return nil
}

// StartFromCheckpoint implements the engine interfaces: the container
// starts when dir holds the images CheckpointCreate writes.
func (f *Engine) StartFromCheckpoint(ctx context.Context, id, dir string) ([]byte, error) {
	if err := f.enter("StartFromCheckpoint", id); err != nil {
		return f.RestoreLog, err
	}
	if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err != nil {
		return nil, fmt.Errorf("no checkpoint images in %s: %w", dir, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restored[id] = dir
	return nil, f.setState(id, func(s *container.State) error {
		if s.Running {
			return fmt.Errorf("container %s is running: %w", id, cerrdefs.ErrConflict)
		}
		s.Running, s.Pid, s.ExitCode = true, os.Getpid(), 0
		return nil
	})
}

// ContainerRemove implements the engine interfaces.
func (f *Engine) ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error {
	c, err := f.locked("ContainerRemove", id)
	if err != nil {
		return err
	}
	defer f.mu.Unlock()
	if c.State.Running && !opts.Force {
		return fmt.Errorf("container %s is running: %w", id, cerrdefs.ErrConflict)
	}
	delete(f.containers, c.ID)
	return os.RemoveAll(filepath.Dir(c.GraphDriver.Data["UpperDir"]))
}

// Create implements the engine interfaces: named volumes of Binds and
// Mounts are created when missing, as the engine does.
func (f *Engine) Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (string, error) {
	if err := f.enter("Create", name); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.find(name) != nil {
		return "", fmt.Errorf("the container name /%s is already in use: %w", name, cerrdefs.ErrConflict)
	}
	imageID, ok := f.images[cfg.Image]
	if !ok {
		return "", notFound("image", cfg.Image)
	}
	id := newID()
	upper := filepath.Join(f.dir, "layers", id, "diff")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return "", err
	}
	c := &container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: id, Name: "/" + name, Image: imageID,
			State:       &container.State{Status: "created"},
			HostConfig:  clone(hc),
			GraphDriver: storage.DriverData{Name: "overlay2", Data: map[string]string{"UpperDir": upper}},
		},
		Config:          clone(cfg),
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}},
	}
	if c.Config.Labels == nil {
		c.Config.Labels = map[string]string{}
	}
	mountVolume := func(name, dest string) error {
		if name == "" {
			name = newID()
		}
		v, err := f.volume(name, "local", nil, nil)
		if err != nil {
			return err
		}
		c.Mounts = append(c.Mounts, container.MountPoint{Type: mount.TypeVolume, Name: name, Source: v.Mountpoint, Destination: dest, Driver: v.Driver, RW: true})
		return nil
	}
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			return "", fmt.Errorf("invalid bind %q: %w", b, cerrdefs.ErrInvalidArgument)
		}
		if strings.HasPrefix(parts[0], "/") {
			c.Mounts = append(c.Mounts, container.MountPoint{Type: mount.TypeBind, Source: parts[0], Destination: parts[1], RW: true})
		} else if err := mountVolume(parts[0], parts[1]); err != nil {
			return "", err
		}
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume {
			if err := mountVolume(m.Source, m.Target); err != nil {
				return "", err
			}
		}
	}
	if nc != nil {
		for net, ep := range nc.EndpointsConfig {
			if err := f.connect(c, net, ep); err != nil {
				return "", err
			}
		}
	}
	f.containers[id] = c
	return id, nil
}

// connect attaches c to network net; the lock must be held.
func (f *Engine) connect(c *container.InspectResponse, net string, ep *network.EndpointSettings) error {
	if container.NetworkMode(net).IsUserDefined() {
		if _, ok := f.networks[net]; !ok {
			return notFound("network", net)
		}
	}
	c.NetworkSettings.Networks[net] = clone(ep)
	return nil
}

// NetworkConnect implements the engine interfaces.
func (f *Engine) NetworkConnect(ctx context.Context, net, id string, ep *network.EndpointSettings) error {
	if err := f.enter("NetworkConnect", net+" "+id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return notFound("container", id)
	}
	return f.connect(c, net, ep)
}

// NetworkInspect implements the engine interfaces.
func (f *Engine) NetworkInspect(ctx context.Context, name string, opts network.InspectOptions) (network.Inspect, error) {
	if err := f.enter("NetworkInspect", name); err != nil {
		return network.Inspect{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.networks {
		if n.Name == name || n.ID == name {
			return *clone(n), nil
		}
	}
	return network.Inspect{}, notFound("network", name)
}

// NetworkCreate implements the engine interfaces.
func (f *Engine) NetworkCreate(ctx context.Context, name string, opts network.CreateOptions) (network.CreateResponse, error) {
	if err := f.enter("NetworkCreate", name); err != nil {
		return network.CreateResponse{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.networks[name]; ok {
		return network.CreateResponse{}, fmt.Errorf("network %s exists: %w", name, cerrdefs.ErrConflict)
	}
	n := &network.Inspect{Name: name, ID: newID(), Driver: opts.Driver, Labels: opts.Labels, Options: opts.Options, Internal: opts.Internal}
	if opts.IPAM != nil {
		n.IPAM = *opts.IPAM
	}
	f.networks[name] = n
	return network.CreateResponse{ID: n.ID}, nil
}

// NetworkRemove implements the engine interfaces.
func (f *Engine) NetworkRemove(ctx context.Context, id string) error {
	if err := f.enter("NetworkRemove", id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, n := range f.networks {
		if n.ID == id || n.Name == id {
			delete(f.networks, name)
			return nil
		}
	}
	return notFound("network", id)
}

// volume returns volume name, creating it when missing; the lock must be
// held.
func (f *Engine) volume(name, driver string, opts, labels map[string]string) (*volume.Volume, error) {
	if v, ok := f.volumes[name]; ok {
		return v, nil
	}
	if driver == "" {
		driver = "local"
	}
	mp := filepath.Join(f.dir, "volumes", name, "_data")
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return nil, err
	}
	v := &volume.Volume{Name: name, Driver: driver, Mountpoint: mp, Options: opts, Labels: labels, CreatedAt: time.Now().UTC().Format(time.RFC3339Nano)}
	f.volumes[name] = v
	return v, nil
}

// VolumeInspect implements the engine interfaces.
func (f *Engine) VolumeInspect(ctx context.Context, name string) (volume.Volume, error) {
	if err := f.enter("VolumeInspect", name); err != nil {
		return volume.Volume{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[name]
	if !ok {
		return volume.Volume{}, notFound("volume", name)
	}
	return *clone(v), nil
}

// VolumeCreate implements the engine interfaces.
func (f *Engine) VolumeCreate(ctx context.Context, opts volume.CreateOptions) (volume.Volume, error) {
	if err := f.enter("VolumeCreate", opts.Name); err != nil {
		return volume.Volume{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.volume(opts.Name, opts.Driver, opts.DriverOpts, opts.Labels)
	if err != nil {
		return volume.Volume{}, err
	}
	return *clone(v), nil
}

// VolumeRemove implements the engine interfaces.
func (f *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	if err := f.enter("VolumeRemove", name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[name]
	if !ok {
		return notFound("volume", name)
	}
	for _, c := range f.containers {
		for _, m := range c.Mounts {
			if m.Name == name {
				return fmt.Errorf("volume %s is in use: %w", name, cerrdefs.ErrConflict)
			}
		}
	}
	delete(f.volumes, name)
	return os.RemoveAll(filepath.Dir(v.Mountpoint))
}

// ImageID implements the engine interfaces.
func (f *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	if err := f.enter("ImageID", ref); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.images[ref]
	if !ok {
		return "", notFound("image", ref)
	}
	return id, nil
}

// HolderImage implements the engine interfaces.
func (f *Engine) HolderImage(ctx context.Context) (string, error) {
	if err := f.enter("HolderImage", ""); err != nil {
		return "", err
	}
	f.AddImage("ckpt-holder:fake")
	return "ckpt-holder:fake", nil
}

// Volume returns volume name's mountpoint, "" when there is no such volume.
func (f *Engine) Volume(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.volumes[name]; ok {
		return v.Mountpoint
	}
	return ""
}

// Network reports whether network name exists.
func (f *Engine) Network(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.networks[name]
	return ok
}

// ErrInjected is a handy error for FailOn.
var ErrInjected = errors.New("injected failure")
