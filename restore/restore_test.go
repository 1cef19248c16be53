package restore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/cgroup"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/engine/fake"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/shim"
	"github.com/ckpt-dev/ckpt/internal/sign"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/restore"
)

// env is one resume's world: container "web" (image app:1, volume "data"
// holding count=41, network "backend", a file in its writable layer,
// restart policy always) saved by a real save on a fake engine, into a
// store in a temporary directory.
type env struct {
	f    *fake.Engine
	host *fake.Host
	st   *store.Store
	id   string
	ck   *store.Checkpoint
	opts restore.Options
	// cancel cancels the resume's context.
	cancel func()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newEnv saves web with engine version version, mode mode.
func newEnv(t *testing.T, version string, mode format.Mode) *env {
	t.Helper()
	return newEnvOn(t, version, mode, nil)
}

// holderEnv is newEnv on an engine that cannot restore, where ckpt's
// runtime cannot be had: the container is saved to resume inside a
// network holder.
func holderEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, "28.5.2", format.ModeHot, func(h *fake.Host) { h.RuntimeErr = errors.New("no containerd runs here") })
}

// newEnvOn is newEnv on a host that setup changes first.
func newEnvOn(t *testing.T, version string, mode format.Mode, setup func(*fake.Host)) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"))
	must(t, err)
	f := fake.New(filepath.Join(dir, "engine"))
	f.Info.ServerVersion = version
	ctx := context.Background()
	_, err = f.NetworkCreate(ctx, "backend", network.CreateOptions{Driver: "bridge"})
	must(t, err)
	id := f.Run("web", "app:1", "data:/data")
	must(t, f.NetworkConnect(ctx, "bridge", id, &network.EndpointSettings{}))
	must(t, f.NetworkConnect(ctx, "backend", id, &network.EndpointSettings{Aliases: []string{"api", id[:12]}}))
	f.Update(id, func(c *container.InspectResponse) {
		c.HostConfig.RestartPolicy = container.RestartPolicy{Name: "always"}
		c.HostConfig.PortBindings = nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: "8080"}}}
		c.Config.Hostname = "web-host"
	})
	must(t, os.WriteFile(filepath.Join(f.Volume("data"), "count"), []byte("41"), 0o644))
	must(t, os.WriteFile(filepath.Join(f.UpperDir("web"), "added"), []byte("layer"), 0o644))
	h := fake.NewHost()
	if setup != nil {
		setup(h)
	}
	shim.RunDir = filepath.Join(dir, "run") // ckpt's runtime's requests
	r := checkpoint.SaveContainer(ctx, checkpoint.Options{Store: st, Engine: f, Host: h.Preflight(), Mode: mode}, "web")
	must(t, r.Err)
	return &env{f: f, host: h, st: st, id: id, ck: r.Checkpoint,
		opts: restore.Options{Store: st, Engine: f, Host: h.Preflight()}}
}

// removeAll removes web, its volume and its network, as after docker rm
// -v and docker network rm, or on another host.
func (e *env) removeAll(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	must(t, e.f.ContainerRemove(ctx, "web", container.RemoveOptions{Force: true}))
	if h, _ := e.f.Lookup(ctx, engine.HolderName("web")); h != nil {
		must(t, e.f.ContainerRemove(ctx, h.ID, container.RemoveOptions{Force: true}))
	}
	must(t, e.f.VolumeRemove(ctx, "data", true))
	must(t, e.f.NetworkRemove(ctx, "backend"))
}

func (e *env) web(t *testing.T) *container.InspectResponse {
	t.Helper()
	c, err := e.f.Lookup(context.Background(), "web")
	must(t, err)
	if c == nil {
		t.Fatal("web does not exist")
	}
	return c
}

func TestResumeSameContainer(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	r := restore.ResumeContainer(context.Background(), e.opts, e.id[:12])
	must(t, r.Err)
	if r.Container != "web" || !r.MemoryRestored || r.Recreated || r.Cold || r.Fallback != nil {
		t.Errorf("result %+v", r)
	}
	c := e.web(t)
	if c.ID != e.id || !c.State.Running || c.HostConfig.RestartPolicy.Name != "always" {
		t.Errorf("web: id %s, %s, restart policy %q", c.ID, c.State.Status, c.HostConfig.RestartPolicy.Name)
	}
	// The memory images are in chunks: CRIU read them put together
	// beside the checkpoint, in a directory gone after the resume.
	got := e.f.RestoredFrom(e.id)
	if want := filepath.Join(filepath.Dir(e.ck.Dir), ".tmp-"+e.ck.Name+".placed", format.ImagesDir); got != want {
		t.Errorf("started from %q, want %q", got, want)
	}
	if _, err := os.Lstat(filepath.Dir(got)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the images put together are still there: %v", err)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "volume data exists and is not empty: kept its current contents") {
		t.Errorf("notes %q", r.Notes)
	}
}

func TestResumeRecreated(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	e.removeAll(t)
	r := restore.ResumeContainer(context.Background(), e.opts, "web")
	must(t, r.Err)
	if !r.MemoryRestored || !r.Recreated {
		t.Errorf("result %+v", r)
	}
	c := e.web(t)
	if c.ID == e.id || !c.State.Running || c.Config.Image != "app:1" || c.Config.Hostname != "web-host" {
		t.Errorf("recreated web: %+v %+v", c.ContainerJSONBase, c.Config)
	}
	ep := c.NetworkSettings.Networks["backend"]
	if ep == nil || !slices.Equal(ep.Aliases, []string{"api"}) {
		t.Errorf("backend endpoint %+v: want the alias, without the old short id", ep)
	}
	if b, err := os.ReadFile(filepath.Join(e.f.Volume("data"), "count")); err != nil || string(b) != "41" {
		t.Errorf("volume data: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(e.f.UpperDir("web"), "added")); err != nil || string(b) != "layer" {
		t.Errorf("writable layer: %q %v", b, err)
	}
	if !e.f.Network("backend") {
		t.Error("network backend not recreated")
	}
	for _, want := range []string{"recreated network backend", "restored volume data"} {
		if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, want) }) {
			t.Errorf("notes %q lack %q", r.Notes, want)
		}
	}
	if c.HostConfig.RestartPolicy.Name != "always" {
		t.Errorf("restart policy %q", c.HostConfig.RestartPolicy.Name)
	}
}

func TestResumeCold(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeCold)
	r := restore.ResumeContainer(context.Background(), e.opts, "web")
	must(t, r.Err)
	if !r.Cold || r.MemoryRestored || e.f.Called("StartFromCheckpoint") != 0 || !e.web(t).State.Running {
		t.Errorf("result %+v, calls %q", r, e.f.Calls())
	}
}

// TestResumeRefused: what a resume refuses before it touches anything.
func TestResumeRefused(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, e *env)
		wantErr string
	}{
		{"running", func(t *testing.T, e *env) {
			must(t, e.f.ContainerStart(context.Background(), "web", container.StartOptions{}))
		}, "container web is running"},
		{"another container with the name", func(t *testing.T, e *env) {
			must(t, e.f.ContainerRemove(context.Background(), "web", container.RemoveOptions{}))
			id, err := e.f.Create(context.Background(), "web", &container.Config{Image: "app:1"}, &container.HostConfig{}, nil)
			must(t, err)
			e.id = id
		}, "is not the container that was saved"},
		{"no checkpoint", func(t *testing.T, e *env) {
			must(t, e.st.Remove("web", e.ck.Name))
		}, "no checkpoint"},
		{"damaged checkpoint", func(t *testing.T, e *env) {
			must(t, os.WriteFile(e.ck.Stored(format.LayerFile)[0], []byte("tampered"), 0o600))
		}, "layer"},
		{"image gone", func(t *testing.T, e *env) {
			e.removeAll(t)
			e.f.RemoveImage("app:1")
			e.f.RemoveImage(e.ck.Manifest.Container.ImageID)
		}, "image app:1"},
		{"no room for the volume and the layer", func(t *testing.T, e *env) {
			e.removeAll(t)
			e.host.Free = 100 << 10
		}, "not enough space in " /* the engine's directory */},
		{"no inodes for the volume and the layer", func(t *testing.T, e *env) {
			e.removeAll(t)
			e.host.Inodes = 1000
		}, "not enough free inodes in "},
		{"engine without experimental features", func(t *testing.T, e *env) {
			e.f.Info.ExperimentalBuild = false
		}, "experimental"},
		{"no fallback, another architecture", func(t *testing.T, e *env) {
			e.removeAll(t)
			e.host.Facts.Arch = "arm64"
			e.opts.NoFallback = true
		}, "made on amd64 and this host is arm64"},
		{"no fallback, CRIU too old", func(t *testing.T, e *env) {
			e.host.CRIUErr = errors.New("CRIU 3.17 is too old")
			e.opts.NoFallback = true
		}, "too old"},
		{"no fallback, engine that cannot restore and no runtime of ckpt's", func(t *testing.T, e *env) {
			e.f.Info.ServerVersion = "28.0.0"
			e.host.RuntimeErr = errors.New("no containerd runs here")
			e.opts.NoFallback = true
		}, "moby issue 50750"},
		{"no fallback, engine that cannot restore, a runtime of the container's own", func(t *testing.T, e *env) {
			e.f.Update("web", func(c *container.InspectResponse) { c.HostConfig.Runtime = "kata" })
			must(t, e.f.ContainerStart(context.Background(), "web", container.StartOptions{}))
			must(t, checkpoint.SaveContainer(context.Background(), checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host, Name: "kata"}, "web").Err)
			e.f.Info.ServerVersion = "28.0.0" // saved on 20.10, resumed on 28
			e.opts.NoFallback, e.opts.From = true, "kata"
		}, "this container runs on runtime kata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "20.10.24", format.ModeHot)
			tt.setup(t, e)
			before := e.f.Calls()
			r := restore.ResumeContainer(context.Background(), e.opts, "web")
			if r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", r.Err, tt.wantErr)
			}
			for _, c := range e.f.Calls()[len(before):] {
				if !strings.HasPrefix(c, "Lookup") && !strings.HasPrefix(c, "ImageID") && !strings.HasPrefix(c, "VolumeInspect") {
					t.Errorf("a refused resume called %s", c)
				}
			}
			var nf *restore.NoFallbackError
			if e.opts.NoFallback && !errors.As(r.Err, &nf) {
				t.Errorf("err %T is not a NoFallbackError", r.Err)
			}
		})
	}
}

// TestResumeFailureUndone: a resume that fails after it created things
// removes them again, and leaves the checkpoint as it was.
func TestResumeFailureUndone(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		setup   func(e *env)
		wantErr string
	}{
		{"network cannot be created", func(e *env) { e.f.FailOn("NetworkCreate", errBoom) }, "cannot recreate network backend"},
		{"volume cannot be created", func(e *env) { e.f.FailOn("VolumeCreate", errBoom) }, "cannot recreate volume data"},
		{"volume cannot be filled", func(e *env) {
			e.f.Before("VolumeCreate", func() { os.Remove(e.ck.Stored(e.ck.Manifest.Volumes[0].Archive)[0]) })
		}, "volume data"},
		{"container cannot be created", func(e *env) { e.f.FailOn("Create", errBoom) }, "cannot recreate container web"},
		{"network cannot be connected", func(e *env) { e.f.FailOn("NetworkConnect", errBoom) }, "cannot connect web to network backend"},
		{"memory cannot be restored and no fallback", func(e *env) {
			e.opts.NoFallback = true
			e.f.FailOn("StartFromCheckpoint", errBoom)
		}, "start on the saved data only was ruled out: boom"},
		{"neither restore nor normal start", func(e *env) {
			e.f.FailOn("StartFromCheckpoint", errBoom)
			e.f.FailOn("ContainerStart", errors.New("no start"))
		}, "a normal start failed too: no start"},
		{"interrupted", func(e *env) {
			e.f.Before("Create", e.cancel)
		}, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "20.10.24", format.ModeHot)
			e.removeAll(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			e.cancel = cancel
			tt.setup(e)
			r := restore.ResumeContainer(ctx, e.opts, "web")
			if r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", r.Err, tt.wantErr)
			}
			if c, _ := e.f.Lookup(context.Background(), "web"); c != nil {
				t.Errorf("a failed resume left container web (%s)", c.State.Status)
			}
			if e.f.Volume("data") != "" || e.f.Network("backend") {
				t.Errorf("a failed resume left volume data (%q) or network backend (%v)", e.f.Volume("data"), e.f.Network("backend"))
			}
			ck, err := e.st.Find("web", "")
			if tt.name == "volume cannot be filled" {
				return // the test itself damaged the checkpoint
			}
			must(t, err)
			must(t, ck.Verify(context.Background()))
		})
	}
}

func TestResumeFallback(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(e *env)
		wantWhy  string
		wantNote string
	}{
		{"restore fails: started on the data", func(e *env) {
			e.f.FailOn("StartFromCheckpoint", errors.New("criu failed"))
		}, "criu failed", ""},
		{"CPU lacks a feature", func(e *env) {
			e.host.Facts.CPUFlags = []string{"fpu"}
		}, "sse2", ""},
		{"engine that cannot restore, ckpt's runtime not installable", func(e *env) {
			e.f.Info.ServerVersion = "28.5.2"
			e.host.RuntimeErr = errors.New("no containerd runs here")
		}, "cannot start a container from a checkpoint", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "20.10.24", format.ModeHot)
			tt.setup(e)
			r := restore.ResumeContainer(context.Background(), e.opts, "web")
			must(t, r.Err)
			if r.MemoryRestored || r.Fallback == nil || !strings.Contains(r.Fallback.Error(), tt.wantWhy) {
				t.Errorf("memory restored %v, fallback %v, want %q", r.MemoryRestored, r.Fallback, tt.wantWhy)
			}
			if c := e.web(t); !c.State.Running || c.HostConfig.RestartPolicy.Name != "always" {
				t.Errorf("web %s, restart policy %q", c.State.Status, c.HostConfig.RestartPolicy.Name)
			}
		})
	}
}

// TestResumeInHolder: a checkpoint taken on an engine that cannot restore
// comes back inside a network holder that has the container's network.
func TestResumeInHolder(t *testing.T) {
	for _, recreate := range []bool{true, false} {
		name := "replaces the stopped container"
		if recreate {
			name = "after docker rm"
		}
		t.Run(name, func(t *testing.T) {
			e := holderEnv(t)
			if e.ck.Manifest.Container.NetNS != format.NetNSHolder {
				t.Fatalf("saved netns %q", e.ck.Manifest.Container.NetNS)
			}
			if recreate {
				e.removeAll(t)
			}
			r := restore.ResumeContainer(context.Background(), e.opts, "web")
			must(t, r.Err)
			if !r.MemoryRestored || !r.Recreated {
				t.Errorf("result %+v", r)
			}
			c := e.web(t)
			h, err := e.f.Lookup(context.Background(), engine.HolderName("web"))
			must(t, err)
			if h == nil || !h.State.Running || h.Config.Labels[engine.HolderLabel] != "web" || h.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
				t.Fatalf("holder %+v", h)
			}
			if !engine.InHolder(c, engine.HolderName("web"), h.ID) || c.HostConfig.PortBindings != nil || c.Config.Hostname != "" {
				t.Errorf("web: network mode %q, ports %v, hostname %q", c.HostConfig.NetworkMode, c.HostConfig.PortBindings, c.Config.Hostname)
			}
			if h.Config.Hostname != "web-host" || len(h.HostConfig.PortBindings) != 1 {
				t.Errorf("holder: hostname %q, ports %v", h.Config.Hostname, h.HostConfig.PortBindings)
			}
			ep := h.NetworkSettings.Networks["backend"]
			if ep == nil || !slices.Contains(ep.Aliases, "web") || !slices.Contains(ep.Aliases, "api") {
				t.Errorf("holder's backend endpoint %+v: want aliases api and web", ep)
			}

			// Saved again inside the holder, and resumed in place.
			r2 := checkpoint.SaveContainer(context.Background(), checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host}, "web")
			must(t, r2.Err)
			r3 := restore.ResumeContainer(context.Background(), e.opts, "web")
			must(t, r3.Err)
			if !r3.MemoryRestored || r3.Recreated || e.web(t).ID != c.ID {
				t.Errorf("second resume %+v", r3)
			}
		})
	}
}

// TestResumeHolderNotOurs: a container that has the network holder's name
// but not ckpt's label for the container is not taken for its holder: the
// processes would share the network of whoever made it.
func TestResumeHolderNotOurs(t *testing.T) {
	e := holderEnv(t)
	e.removeAll(t)
	ctx := context.Background()
	for _, labels := range []map[string]string{{}, {engine.HolderLabel: "another"}} {
		id, err := e.f.Create(ctx, engine.HolderName("web"), &container.Config{Image: "app:1", Labels: labels}, &container.HostConfig{}, nil)
		must(t, err)
		r := restore.ResumeContainer(ctx, e.opts, "web")
		if r.Err == nil || !strings.Contains(r.Err.Error(), "container web-ckpt-net is not the network holder of web") {
			t.Fatalf("labels %v: err = %v", labels, r.Err)
		}
		if c, _ := e.f.Lookup(ctx, "web"); c != nil {
			t.Error("the refused resume left web")
		}
		must(t, e.f.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}))
	}
}

func TestResumeVolumes(t *testing.T) {
	t.Run("an existing volume with contents is kept", func(t *testing.T) {
		e := newEnv(t, "20.10.24", format.ModeHot)
		must(t, os.WriteFile(filepath.Join(e.f.Volume("data"), "count"), []byte("99"), 0o644))
		r := restore.ResumeContainer(context.Background(), e.opts, "web")
		must(t, r.Err)
		if b, _ := os.ReadFile(filepath.Join(e.f.Volume("data"), "count")); string(b) != "99" {
			t.Errorf("live data overwritten: %q", b)
		}
		if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "kept its current contents") }) {
			t.Errorf("notes %q", r.Notes)
		}
	})
	t.Run("an existing empty volume is filled", func(t *testing.T) {
		e := newEnv(t, "20.10.24", format.ModeHot)
		must(t, os.Remove(filepath.Join(e.f.Volume("data"), "count")))
		r := restore.ResumeContainer(context.Background(), e.opts, "web")
		must(t, r.Err)
		if b, _ := os.ReadFile(filepath.Join(e.f.Volume("data"), "count")); string(b) != "41" {
			t.Errorf("volume not filled: %q", b)
		}
	})
}

func TestResumeImageRetagged(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	e.removeAll(t)
	e.f.RemoveImage("app:1")
	e.f.AddImage("app:1") // the tag now names another image
	r := restore.ResumeContainer(context.Background(), e.opts, "web")
	must(t, r.Err)
	if c := e.web(t); c.Config.Image != e.ck.Manifest.Container.ImageID {
		t.Errorf("created from %q, want the saved image id", c.Config.Image)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "now names another image") }) {
		t.Errorf("notes %q", r.Notes)
	}
}

func TestResumeRestartPolicyNote(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	e.f.FailOn("SetRestartPolicy", errors.New("boom"))
	r := restore.ResumeContainer(context.Background(), e.opts, "web")
	must(t, r.Err)
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "could not put restart policy always back") }) {
		t.Errorf("notes %q", r.Notes)
	}
}

func TestResumeAll(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	e.opts.All = true
	results, err := restore.Resume(context.Background(), e.opts)
	must(t, err)
	if len(results) != 1 || results[0].Container != "web" || !results[0].MemoryRestored {
		t.Errorf("results %+v", results)
	}
	if _, err := restore.Resume(context.Background(), e.opts); err == nil || !strings.Contains(err.Error(), "no stopped container has a checkpoint") {
		t.Errorf("second resume --all: %v", err)
	}
}

// TestResumeCgroupRoot: on cgroup v2 the processes of a recreated
// container go to its own cgroup, named from its configuration and the
// engine's driver, never from the checkpoint's cgroup.img (here one whose
// path would add a CRIU option).
func TestResumeCgroupRoot(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	e.f.Info.CgroupVersion, e.f.Info.CgroupDriver = "2", "systemd"
	e.f.Images["cgroup.img"] = string(cgroupImage(t, "system.slice/docker-"+e.id+".scope\nlibdir /tmp/evil"))
	must(t, e.f.ContainerStart(context.Background(), "web", container.StartOptions{}))
	must(t, checkpoint.SaveContainer(context.Background(), checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host, Name: "crafted"}, "web").Err)
	e.removeAll(t)
	r := restore.ResumeContainer(context.Background(), e.opts, "web")
	must(t, r.Err)
	id := e.web(t).ID
	opts := e.host.Options()
	want := []string{"cgroup-root /system.slice/docker-" + id + ".scope"}
	if len(opts) == 0 || !slices.Equal(opts[len(opts)-1], want) {
		t.Errorf("CRIU options %q, want %q last", opts, want)
	}
}

// cgroupImage is a CRIU cgroup.img whose one cgroup has path p.
func cgroupImage(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "cgroup")
	must(t, err)
	defer f.Close()
	img := &crit.CriuImage{Magic: "CGROUP", Entries: []*crit.CriuEntry{{Message: &cgroup.CgroupEntry{
		Sets: []*cgroup.CgSetEntry{{Id: proto.Uint32(1), Ctls: []*cgroup.CgMemberEntry{{Name: proto.String("memory"), Path: proto.String(p)}}}},
	}}}}
	must(t, crit.New(nil, f, "", false, false).Encode(img))
	b, err := os.ReadFile(f.Name())
	must(t, err)
	return b
}

// TestProject: a compose project's saved containers, dependencies first.
func TestProject(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	ctx := context.Background()
	for _, c := range []struct{ name, service, dependsOn string }{{"shop-db-1", "db", ""}, {"shop-web-1", "web", "db:service_started:false"}} {
		e.f.Run(c.name, "app:1")
		e.f.Update(c.name, func(ic *container.InspectResponse) {
			ic.Config.Labels["com.docker.compose.project"] = "shop"
			ic.Config.Labels["com.docker.compose.service"] = c.service
			if c.dependsOn != "" {
				ic.Config.Labels["com.docker.compose.depends_on"] = c.dependsOn
			}
		})
	}
	for _, name := range []string{"shop-web-1", "shop-db-1"} {
		must(t, checkpoint.SaveContainer(ctx, checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host}, name).Err)
	}
	names, err := restore.Project(e.st, "shop")
	must(t, err)
	if !slices.Equal(names, []string{"shop-db-1", "shop-web-1"}) {
		t.Errorf("order %q, want the database first", names)
	}
	if _, err := restore.Project(e.st, "none"); err == nil || !strings.Contains(err.Error(), "no checkpoint of compose project none") {
		t.Errorf("unknown project: %v", err)
	}
}

// imported saves web again with hc's changes as checkpoint "foreign",
// marks it as brought by ckpt import and unsigned, and removes web, what it
// had and its other checkpoint: as on a host it was imported to.
func (e *env) imported(t *testing.T, change func(*container.HostConfig)) {
	t.Helper()
	ctx := context.Background()
	if change != nil {
		e.f.Update("web", func(c *container.InspectResponse) { change(c.HostConfig) })
	}
	must(t, e.f.ContainerStart(ctx, "web", container.StartOptions{}))
	r := checkpoint.SaveContainer(ctx, checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host, Name: "foreign"}, "web")
	must(t, r.Err)
	origin, _ := json.Marshal(format.Origin{Imported: true})
	must(t, os.WriteFile(r.Checkpoint.Path(format.OriginFile), origin, 0o600))
	must(t, os.Remove(r.Checkpoint.Path(format.SignatureFile)))
	must(t, e.st.Remove("web", e.ck.Name))
	e.removeAll(t)
}

// widen gives the container what reaches outside a plain one.
func widen(hc *container.HostConfig) {
	hc.Privileged = true
	hc.CapAdd = []string{"ALL"}
	hc.PidMode = "host"
	hc.Binds = append(hc.Binds, "/:/host", "otherapp:/steal")
	hc.SecurityOpt = []string{"seccomp=unconfined", "no-new-privileges"}
	hc.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
	hc.Links = []string{"/db:/web/db"}
	hc.LogConfig = container.LogConfig{Type: "syslog", Config: map[string]string{"syslog-address": "udp://203.0.113.9:514"}}
	hc.Annotations = map[string]string{"org.criu.config": "/tmp/evil.conf", "team": "x"}
	hc.PortBindings = nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: "8080"}, {HostIP: "10.1.2.3", HostPort: "22"}}}
}

// widened is what an untrusted resume of a widened container leaves out.
var widened = []string{
	"annotation org.criu.config=/tmp/evil.conf", "annotation team=x",
	"bind mount /:/host", "capability ALL", "link /db:/web/db",
	"log driver syslog (syslog-address=udp://203.0.113.9:514)",
	"pid namespace mode host", "port 80/tcp published on host address 10.1.2.3",
	"privileged mode", "security option seccomp=unconfined", "sysctl net.ipv4.ip_forward=1",
	"volume otherapp (bind otherapp:/steal): not one this resume made from the checkpoint",
}

// assertPlain checks that c got none of what widen gives.
func assertPlain(t *testing.T, c *container.InspectResponse) {
	t.Helper()
	hc := c.HostConfig
	if hc.Privileged || hc.CapAdd != nil || hc.PidMode != "" || hc.Sysctls != nil || hc.Links != nil ||
		hc.LogConfig.Type != "" || hc.Annotations != nil || !slices.Equal(hc.SecurityOpt, []string{"no-new-privileges"}) {
		t.Errorf("not a plain container: %+v", hc)
	}
	if slices.ContainsFunc(hc.Binds, func(b string) bool { return strings.HasPrefix(b, "/:") || strings.HasPrefix(b, "otherapp:") }) {
		t.Errorf("binds %q", hc.Binds)
	}
	if got := hc.PortBindings["80/tcp"]; len(got) != 1 || got[0].HostIP != "127.0.0.1" {
		t.Errorf("ports %v", hc.PortBindings)
	}
}

// TestResumeUntrusted: a checkpoint from elsewhere that is not signed
// comes back as data only, in a plain container, with what it asked for
// beyond one named; with Trust, whole.
func TestResumeUntrusted(t *testing.T) {
	t.Run("data only", func(t *testing.T) {
		e := newEnv(t, "20.10.24", format.ModeHot)
		e.imported(t, widen)
		ck, err := e.st.Find("web", "")
		must(t, err)
		if ck.Name != "foreign" || ck.Trust.Trusted() || ck.Trust.Reason != "it is not signed" {
			t.Fatalf("checkpoint %s, trust %+v", ck.Name, ck.Trust)
		}
		r := restore.ResumeContainer(context.Background(), e.opts, "web")
		must(t, r.Err)
		var ue *restore.UntrustedError
		if r.MemoryRestored || !r.Untrusted || !r.Recreated || !errors.As(r.Fallback, &ue) || ue.Trust.Reason != "it is not signed" {
			t.Fatalf("result %+v", r)
		}
		if !slices.Equal(r.Dropped, widened) {
			t.Errorf("dropped\n%q\nwant\n%q", r.Dropped, widened)
		}
		c := e.web(t)
		if !c.State.Running || e.f.RestoredFrom(c.ID) != "" {
			t.Errorf("web: running %v, restored from %q", c.State.Running, e.f.RestoredFrom(c.ID))
		}
		assertPlain(t, c)
		// Its own volume and network were made from the checkpoint, and
		// marked so.
		if got, _ := os.ReadFile(filepath.Join(e.f.Volume("data"), "count")); string(got) != "41" {
			t.Errorf("volume data holds %q", got)
		}
		if c.NetworkSettings.Networks["backend"] == nil {
			t.Errorf("networks %v", c.NetworkSettings.Networks)
		}
		v, err := e.f.VolumeInspect(context.Background(), "data")
		must(t, err)
		n, err := e.f.NetworkInspect(context.Background(), "backend", network.InspectOptions{})
		must(t, err)
		if !strings.HasPrefix(v.Labels["io.ckpt.restored-from"], "web:foreign@sha256:") || n.Labels["io.ckpt.restored-from"] != v.Labels["io.ckpt.restored-from"] {
			t.Errorf("labels: volume %v, network %v", v.Labels, n.Labels)
		}

		// Removed and resumed again, it finds its own volume and network.
		must(t, e.f.ContainerRemove(context.Background(), "web", container.RemoveOptions{Force: true}))
		r = restore.ResumeContainer(context.Background(), e.opts, "web")
		must(t, r.Err)
		c = e.web(t)
		if c.NetworkSettings.Networks["backend"] == nil || !slices.Contains(c.HostConfig.Binds, "data:/data") {
			t.Errorf("second resume: networks %v, binds %q, notes %q", c.NetworkSettings.Networks, c.HostConfig.Binds, r.Notes)
		}
	})
	t.Run("no fallback", func(t *testing.T) {
		e := newEnv(t, "20.10.24", format.ModeHot)
		e.imported(t, widen)
		e.opts.NoFallback = true
		r := restore.ResumeContainer(context.Background(), e.opts, "web")
		var nf *restore.NoFallbackError
		var ue *restore.UntrustedError
		if !errors.As(r.Err, &nf) || !errors.As(r.Err, &ue) {
			t.Fatalf("err = %v, want a NoFallbackError for an untrusted checkpoint", r.Err)
		}
		if c, _ := e.f.Lookup(context.Background(), "web"); c != nil || e.f.Volume("data") != "" || e.f.Network("backend") {
			t.Error("a refused resume created something")
		}
	})
	t.Run("trusted with --trust", func(t *testing.T) {
		e := newEnv(t, "20.10.24", format.ModeHot)
		e.imported(t, widen)
		e.opts.Trust = true
		r := restore.ResumeContainer(context.Background(), e.opts, "web")
		must(t, r.Err)
		c := e.web(t)
		if !r.MemoryRestored || r.Untrusted || !c.HostConfig.Privileged || c.HostConfig.PidMode != "host" || c.HostConfig.LogConfig.Type != "syslog" {
			t.Errorf("trusted: %+v; privileged %v, pid %q", r, c.HostConfig.Privileged, c.HostConfig.PidMode)
		}
		// No checkpoint's value reaches CRIU, trusted or not.
		if !maps.Equal(c.HostConfig.Annotations, map[string]string{"team": "x"}) || !slices.Equal(r.Dropped, []string{"annotation org.criu.config=/tmp/evil.conf"}) {
			t.Errorf("annotations %v, dropped %q", c.HostConfig.Annotations, r.Dropped)
		}
	})
	t.Run("made here", func(t *testing.T) {
		e := newEnv(t, "20.10.24", format.ModeHot)
		e.imported(t, widen)
		ck, err := e.st.Find("web", "foreign")
		must(t, err)
		must(t, os.Remove(ck.Path(format.OriginFile)))
		r := restore.ResumeContainer(context.Background(), e.opts, "web")
		must(t, r.Err)
		if !r.MemoryRestored || !r.Trust.Trusted() {
			t.Errorf("result %+v", r)
		}
	})
}

// TestResumeSigned: a checkpoint signed by a key the store trusts comes
// back whole; signed by another key, or altered after it was signed, as
// data only.
func TestResumeSigned(t *testing.T) {
	other, err := store.Open(t.TempDir())
	must(t, err)
	otherID, err := other.Identity()
	must(t, err)
	signAs := func(t *testing.T, e *env, id ssh.Signer) *store.Checkpoint {
		t.Helper()
		ck, err := e.st.Find("web", "foreign")
		must(t, err)
		raw, err := ck.RawManifest()
		must(t, err)
		sig, err := sign.Sign(id, raw)
		must(t, err)
		must(t, os.WriteFile(ck.Path(format.SignatureFile), sig, 0o600))
		ck, err = e.st.Find("web", "foreign")
		must(t, err)
		return ck
	}
	t.Run("trusted signer", func(t *testing.T) {
		e := newEnv(t, "20.10.24", format.ModeHot)
		e.imported(t, widen)
		ck := signAs(t, e, otherID)
		if ck.Trust.Trusted() || !strings.Contains(ck.Trust.Reason, "which this store does not trust") || ck.Trust.Key != sign.Fingerprint(otherID.PublicKey()) {
			t.Fatalf("before trust add: %+v", ck.Trust)
		}
		must(t, e.st.AddSigner(sign.Signer{Name: "host1", Key: otherID.PublicKey()}))
		r := restore.ResumeContainer(context.Background(), e.opts, "web")
		must(t, r.Err)
		if !r.MemoryRestored || r.Trust.Signer != "host1" || !e.web(t).HostConfig.Privileged {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("its own key", func(t *testing.T) {
		e := newEnv(t, "20.10.24", format.ModeHot)
		e.imported(t, nil)
		own, err := e.st.Identity()
		must(t, err)
		if ck := signAs(t, e, own); ck.Trust.Signer != store.SelfSigner {
			t.Errorf("trust %+v", ck.Trust)
		}
	})
	t.Run("altered after signing", func(t *testing.T) {
		e := newEnv(t, "20.10.24", format.ModeHot)
		e.imported(t, nil)
		must(t, e.st.AddSigner(sign.Signer{Name: "host1", Key: otherID.PublicKey()}))
		ck := signAs(t, e, otherID)
		// The manifest changed, its checksum made to match.
		raw, err := ck.RawManifest()
		must(t, err)
		raw = append(raw, ' ')
		must(t, os.WriteFile(ck.Path(format.ManifestFile), raw, 0o600))
		sum := sha256.Sum256(raw)
		must(t, os.WriteFile(ck.Path(format.ManifestSumFile), []byte(hex.EncodeToString(sum[:])+"\n"), 0o600))
		r := restore.ResumeContainer(context.Background(), e.opts, "web")
		must(t, r.Err)
		if r.MemoryRestored || !r.Untrusted || !strings.Contains(r.Trust.Reason, "altered after it was signed") {
			t.Errorf("result %+v", r)
		}
	})
}

// TestResumeUntrustedNeverIntoExisting: a checkpoint that is not trusted
// is not restored into a container that exists, even one with its name
// and id, whose configuration someone else chose.
func TestResumeUntrustedNeverIntoExisting(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	ck, err := e.st.Find("web", "")
	must(t, err)
	origin, _ := json.Marshal(format.Origin{Imported: true})
	must(t, os.WriteFile(ck.Path(format.OriginFile), origin, 0o600))
	must(t, os.Remove(ck.Path(format.SignatureFile)))
	r := restore.ResumeContainer(context.Background(), e.opts, "web")
	if r.Err == nil || !strings.Contains(r.Err.Error(), "container web exists, and checkpoint web:"+ck.Name+" is not trusted") {
		t.Fatalf("err = %v", r.Err)
	}
	if c := e.web(t); c.State.Running || e.f.RestoredFrom(c.ID) != "" {
		t.Error("the container was started")
	}
}

// TestResumeUntrustedHostObjects: volumes and networks of the host that
// an untrusted checkpoint names are neither mounted nor joined, nor
// changed.
func TestResumeUntrustedHostObjects(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	e.imported(t, nil)
	ctx := context.Background()
	_, err := e.f.VolumeCreate(ctx, volume.CreateOptions{Name: "data"})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(e.f.Volume("data"), "secret"), []byte("another app's"), 0o600))
	_, err = e.f.NetworkCreate(ctx, "backend", network.CreateOptions{Driver: "bridge"})
	must(t, err)
	r := restore.ResumeContainer(ctx, e.opts, "web")
	must(t, r.Err)
	c := e.web(t)
	if slices.ContainsFunc(c.HostConfig.Binds, func(b string) bool { return strings.HasPrefix(b, "data:") }) || c.NetworkSettings.Networks["backend"] != nil {
		t.Errorf("binds %q, networks %v", c.HostConfig.Binds, c.NetworkSettings.Networks)
	}
	for _, want := range []string{"volume data exists on this host and was not made from this checkpoint: not mounted", "network backend exists on this host and was not made from this checkpoint: not joined"} {
		if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, want) }) {
			t.Errorf("notes %q lack %q", r.Notes, want)
		}
	}
	if ents, _ := os.ReadDir(e.f.Volume("data")); len(ents) != 1 {
		t.Errorf("the host's volume was changed: %v", ents)
	}
}

func TestPowers(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	powers, err := restore.Powers(e.ck)
	must(t, err)
	if len(powers) != 0 {
		t.Errorf("a plain container asks for %q", powers)
	}
	e.imported(t, widen)
	ck, err := e.st.Find("web", "foreign")
	must(t, err)
	powers, err = restore.Powers(ck)
	must(t, err)
	if !slices.Equal(powers, widened) {
		t.Errorf("powers\n%q\nwant\n%q", powers, widened)
	}
}

// TestResumeBadConfiguration: a checkpoint whose container.json lacks the
// configuration, or whose manifest lacks the container's id, is damaged,
// and nothing is touched (both used to panic).
func TestResumeBadConfiguration(t *testing.T) {
	for _, tt := range []struct {
		name, containerJSON, id, want string
	}{
		{"no configuration", `{"Id": "abc", "Name": "/web"}`, "abc", "lacks the container's configuration"},
		{"no id", `{"Id": "", "Name": "/web", "Config": {}, "HostConfig": {}}`, "", "no name or no id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "20.10.24", format.ModeHot)
			e.removeAll(t)
			p, err := e.st.Begin("web", "forged")
			must(t, err)
			for name, content := range map[string]string{format.ContainerFile: tt.containerJSON, format.NetworksFile: "[]", format.LayerFile: ""} {
				f, err := p.Create(name)
				must(t, err)
				_, err = f.Write([]byte(content))
				must(t, err)
				must(t, f.Close())
			}
			raw, err := p.Manifest(&format.Manifest{Created: time.Now(), Mode: format.ModeCold,
				Container: format.Container{Name: "web", ID: tt.id, Image: "app:1"}, Layer: format.Layer{Archive: format.LayerFile}})
			must(t, err)
			_, err = p.Commit(raw)
			must(t, err)
			e.opts.From = "forged"
			r := restore.ResumeContainer(context.Background(), e.opts, "web")
			var de *store.DamagedError
			if !errors.As(r.Err, &de) || !strings.Contains(r.Err.Error(), tt.want) {
				t.Fatalf("err = %v, want a damaged checkpoint: %q", r.Err, tt.want)
			}
			if c, _ := e.f.Lookup(context.Background(), "web"); c != nil {
				t.Error("a refused resume created the container")
			}
		})
	}
}

// TestResumeRanAfter: a container that ran after its checkpoint is not
// resumed over its newer files unless forced.
func TestResumeRanAfter(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ran   func(t *testing.T, e *env)
		force bool
		want  string
	}{
		{"started and stopped again", func(t *testing.T, e *env) {
			must(t, e.f.ContainerStart(context.Background(), "web", container.StartOptions{}))
			must(t, e.f.ContainerStop(context.Background(), "web", container.StopOptions{}))
		}, false, "was started again at"},
		{"left running, stopped later", func(t *testing.T, e *env) {
			ctx := context.Background()
			must(t, e.f.ContainerStart(ctx, "web", container.StartOptions{}))
			r := checkpoint.SaveContainer(ctx, checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host, LeaveRunning: true, Name: "lr"}, "web")
			must(t, r.Err)
			must(t, e.f.ContainerStop(ctx, "web", container.StopOptions{}))
			e.f.Update("web", func(c *container.InspectResponse) {
				c.State.FinishedAt = r.Checkpoint.Manifest.Created.Add(time.Hour).Format(time.RFC3339Nano)
			})
			e.opts.From = "lr"
		}, false, "saved with --leave-running, went on, and stopped at"},
		{"forced", func(t *testing.T, e *env) {
			must(t, e.f.ContainerStart(context.Background(), "web", container.StartOptions{}))
			must(t, e.f.ContainerStop(context.Background(), "web", container.StopOptions{}))
		}, true, ""},
		{"stopped by the checkpoint", func(t *testing.T, e *env) {}, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "20.10.24", format.ModeHot)
			tt.ran(t, e)
			e.opts.Force = tt.force
			calls := len(e.f.Calls())
			r := restore.ResumeContainer(context.Background(), e.opts, "web")
			if tt.want == "" {
				must(t, r.Err)
				if !r.MemoryRestored {
					t.Errorf("result %+v", r)
				}
				return
			}
			var ra *restore.RanAfterError
			if !errors.As(r.Err, &ra) || !strings.Contains(r.Err.Error(), tt.want) {
				t.Fatalf("err = %v, want a RanAfterError saying %q", r.Err, tt.want)
			}
			for _, c := range e.f.Calls()[calls:] {
				if !strings.HasPrefix(c, "Lookup") {
					t.Errorf("a refused resume called %s", c)
				}
			}
		})
	}
}

// TestResumePartlyFilled: a volume that a killed resume left partly filled
// is not taken for live data: it is emptied and filled again. The same name
// on a volume created since is live data, and kept.
func TestResumePartlyFilled(t *testing.T) {
	for _, tt := range []struct {
		name      string
		sameVol   bool
		wantCount string
		wantNote  string
	}{
		{"left by a killed resume", true, "41", "left partly filled by a resume that did not finish"},
		{"a newer volume of the same name", false, "junk", "exists and is not empty: kept its current contents"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "20.10.24", format.ModeHot)
			e.removeAll(t)
			ctx := context.Background()
			v, err := e.f.VolumeCreate(ctx, volume.CreateOptions{Name: "data"})
			must(t, err)
			must(t, os.WriteFile(filepath.Join(v.Mountpoint, "count"), []byte("junk"), 0o644))
			created := v.CreatedAt
			if !tt.sameVol {
				created = "2001-01-01T00:00:00Z"
			}
			must(t, e.st.BeginFill("web", "data", created)) // what the killed resume recorded
			r := restore.ResumeContainer(ctx, e.opts, "web")
			must(t, r.Err)
			if b, _ := os.ReadFile(filepath.Join(e.f.Volume("data"), "count")); string(b) != tt.wantCount {
				t.Errorf("count = %q, want %q", b, tt.wantCount)
			}
			if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, tt.wantNote) }) {
				t.Errorf("notes %q lack %q", r.Notes, tt.wantNote)
			}
			if tt.sameVol && e.st.PartlyFilled("web", "data", v.CreatedAt) {
				t.Error("the marker outlived the fill")
			}
		})
	}
}

// TestResumeAfterKilledSave: ckpt resume after a save that was killed once
// the checkpoint had stopped the container brings it back from the images
// that save took, with its restart policy.
func TestResumeAfterKilledSave(t *testing.T) {
	e := newEnv(t, "20.10.24", format.ModeHot)
	ctx := context.Background()
	must(t, e.f.ContainerStart(ctx, "web", container.StartOptions{})) // running again, as before any save
	must(t, e.f.SetRestartPolicy(ctx, "web", format.RestartPolicy{Name: "always"}))
	e.f.Before("VolumeInspect", runtime.Goexit)
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkpoint.SaveContainer(ctx, checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host, Name: "killed"}, "web")
	}()
	<-done
	e.f.Before("VolumeInspect", nil)
	if c := e.web(t); c.State.Running || c.HostConfig.RestartPolicy.Name != "no" {
		t.Fatalf("after the killed save: %s, restart policy %q", c.State.Status, c.HostConfig.RestartPolicy.Name)
	}
	r := restore.ResumeContainer(ctx, e.opts, "web")
	must(t, r.Err)
	if !r.MemoryRestored || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "a save of web was interrupted") {
		t.Errorf("result %+v", r)
	}
	if c := e.web(t); !c.State.Running || c.HostConfig.RestartPolicy.Name != "always" {
		t.Errorf("after resume: %s, restart policy %q", c.State.Status, c.HostConfig.RestartPolicy.Name)
	}
	if !strings.HasSuffix(e.f.RestoredFrom(e.id), filepath.Join(format.TempPrefix+"killed", format.ImagesDir)) {
		t.Errorf("started from %q, want the killed save's images", e.f.RestoredFrom(e.id))
	}
}

// TestRecoverKilledResume: a resume killed (as under SIGKILL: no undo) at
// each engine call is finished or undone by the next one, which brings the
// container back with its memory, its data and its restart policy.
func TestRecoverKilledResume(t *testing.T) {
	for _, tt := range []struct {
		killAt, wantNote string
	}{
		{"NetworkCreate", "it had created nothing"},
		{"VolumeCreate", "removed the network it had created"},
		{"Create", "removed volume data it had created"},
		{"NetworkConnect", "removed the container it had created"},
		{"StartFromCheckpoint", "removed the container it had created"},
		{"SetRestartPolicy", "after it started the container: put its restart policy always back"},
	} {
		t.Run(tt.killAt, func(t *testing.T) {
			e := newEnv(t, "20.10.24", format.ModeHot)
			e.removeAll(t)
			ctx := context.Background()
			e.f.Before(tt.killAt, runtime.Goexit)
			done := make(chan struct{})
			go func() {
				defer close(done)
				restore.ResumeContainer(ctx, e.opts, "web")
				t.Error("the resume went on after it was killed")
			}()
			<-done
			e.f.Before(tt.killAt, nil)
			if j, _ := e.st.ReadJournal("web"); j == nil {
				t.Fatal("the killed resume left no journal")
			}

			r := restore.ResumeContainer(ctx, e.opts, "web")
			must(t, r.Err)
			if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, tt.wantNote) }) {
				t.Errorf("notes %q lack %q", r.Notes, tt.wantNote)
			}
			c := e.web(t)
			if !c.State.Running || c.HostConfig.RestartPolicy.Name != "always" {
				t.Errorf("web %s, restart policy %q", c.State.Status, c.HostConfig.RestartPolicy.Name)
			}
			if b, _ := os.ReadFile(filepath.Join(e.f.Volume("data"), "count")); string(b) != "41" {
				t.Errorf("volume data holds %q", b)
			}
			if j, _ := e.st.ReadJournal("web"); j != nil {
				t.Errorf("the journal outlived the recovery: %+v", j)
			}
			if tt.killAt != "SetRestartPolicy" && e.f.RestoredFrom(c.ID) == "" {
				t.Error("the second resume did not restore memory")
			}
		})
	}
}

// rewriteManifest changes ck's manifest and makes its checksum match, as
// whoever made an archive can.
func rewriteManifest(t *testing.T, ck *store.Checkpoint, change func(*format.Manifest)) {
	t.Helper()
	m := *ck.Manifest
	change(&m)
	raw, err := json.MarshalIndent(&m, "", "  ")
	must(t, err)
	must(t, os.WriteFile(ck.Path(format.ManifestFile), raw, 0o600))
	sum := sha256.Sum256(raw)
	must(t, os.WriteFile(ck.Path(format.ManifestSumFile), []byte(hex.EncodeToString(sum[:])+"\n"), 0o600))
}

// TestResumeDeclaredSizes: a resume adds up what the manifest declares it
// will write, with checked arithmetic, before it creates anything, and
// writes no more than that.
func TestResumeDeclaredSizes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*format.Manifest)
		want   string
	}{
		{"a volume larger than the disk", func(m *format.Manifest) { m.Volumes[0].Bytes = 1 << 50 }, "not enough space in "},
		{"sizes that wrap around", func(m *format.Manifest) {
			m.Volumes[0].Bytes, m.Layer.Bytes = 1<<62, 1<<62+1<<61
		}, "the sizes add up to more than 8 EiB"},
		{"more files than declared", func(m *format.Manifest) { m.Layer.Entries = 1 }, "the archive holds more entries than its manifest declares (1)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "20.10.24", format.ModeHot)
			e.removeAll(t)
			rewriteManifest(t, e.ck, tt.change)
			r := restore.ResumeContainer(context.Background(), e.opts, "web")
			if r.Err == nil || !strings.Contains(r.Err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", r.Err, tt.want)
			}
			if c, _ := e.f.Lookup(context.Background(), "web"); c != nil || e.f.Volume("data") != "" || e.f.Network("backend") {
				t.Error("the refused resume left something")
			}
		})
	}
}

// TestResumeThroughRuntime: on an engine that cannot restore by itself, a
// checkpoint saved as any other (here on Docker 20.10, or there) comes back
// with its memory in a container of ckpt's runtime, with its own network:
// the container that exists is replaced by one of that runtime, which is
// then resumed in place.
func TestResumeThroughRuntime(t *testing.T) {
	for _, saved := range []string{"20.10.24", "28.5.2"} {
		t.Run("saved on "+saved, func(t *testing.T) {
			e := newEnv(t, saved, format.ModeHot)
			if e.ck.Manifest.Container.NetNS != "" {
				t.Fatalf("saved for a network holder")
			}
			e.f.Info.ServerVersion = "28.5.2"
			ctx := context.Background()
			r := restore.ResumeContainer(ctx, e.opts, "web")
			must(t, r.Err)
			c := e.web(t)
			if !r.MemoryRestored || !r.Recreated || c.ID == e.id || c.HostConfig.Runtime != shim.Runtime {
				t.Fatalf("result %+v; web %s of runtime %q", r, c.ID, c.HostConfig.Runtime)
			}
			if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "recreated with ckpt's runtime io.containerd.ckpt.v2") }) {
				t.Errorf("notes %q", r.Notes)
			}
			// Its own network, its ports, its name: nothing of a holder.
			if h, _ := e.f.Lookup(ctx, engine.HolderName("web")); h != nil || c.HostConfig.NetworkMode.IsContainer() ||
				c.NetworkSettings.Networks["backend"] == nil || len(c.HostConfig.PortBindings) != 1 || c.Config.Hostname != "web-host" {
				t.Errorf("web: network mode %q, networks %v, ports %v", c.HostConfig.NetworkMode, c.NetworkSettings.Networks, c.HostConfig.PortBindings)
			}
			if got := e.f.RestoredFrom(c.ID); !strings.HasSuffix(got, ".placed/"+format.ImagesDir) {
				t.Errorf("restored from %q", got)
			}
			// Its CRIU options in a file of its own, none in runc.conf.
			if got := e.f.RestoreConfig(c.ID); got != "leave-stopped\n" {
				t.Errorf("CRIU configuration %q, want leave-stopped", got)
			}
			for _, o := range e.host.Options() {
				if slices.Contains(o, "leave-stopped") {
					t.Errorf("runc.conf lines %q", o)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(shim.RunDir, "restore", "*")); len(left) > 0 {
				t.Errorf("requests left: %v", left)
			}

			// Saved again and resumed in place: the same container.
			r2 := checkpoint.SaveContainer(ctx, checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host}, "web")
			must(t, r2.Err)
			r3 := restore.ResumeContainer(ctx, e.opts, "web")
			must(t, r3.Err)
			if !r3.MemoryRestored || r3.Recreated || e.web(t).ID != c.ID || e.f.RestoredFrom(c.ID) == "" {
				t.Errorf("second resume %+v", r3)
			}
		})
	}
	t.Run("back on an engine that restores", func(t *testing.T) {
		e := newEnv(t, "28.5.2", format.ModeHot)
		e.removeAll(t)
		ctx := context.Background()
		must(t, restore.ResumeContainer(ctx, e.opts, "web").Err)
		r := checkpoint.SaveContainer(ctx, checkpoint.Options{Store: e.st, Engine: e.f, Host: e.opts.Host, Name: "on28"}, "web")
		must(t, r.Err)
		e.removeAll(t)
		e.f.Info.ServerVersion = "26.1.5"
		e.opts.From = "on28"
		res := restore.ResumeContainer(ctx, e.opts, "web")
		must(t, res.Err)
		if c := e.web(t); !res.MemoryRestored || c.HostConfig.Runtime != "" {
			t.Errorf("result %+v, runtime %q: want the engine's own", res, c.HostConfig.Runtime)
		}
	})
}
