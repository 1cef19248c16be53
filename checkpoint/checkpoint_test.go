package checkpoint_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/engine/fake"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/progress"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// env is one save's world: a fake engine with container "web" running
// (volume "data" at /data holding a file, a file in its writable layer),
// a store in a temporary directory, and a host where CRIU works.
type env struct {
	f    *fake.Engine
	host *fake.Host
	st   *store.Store
	id   string
	opts checkpoint.Options
	// cancel cancels the save's context.
	cancel func()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	f := fake.New(filepath.Join(dir, "engine"))
	id := f.Run("web", "app:1", "data:/data")
	must(t, os.WriteFile(filepath.Join(f.Volume("data"), "count"), []byte("41"), 0o644))
	must(t, os.WriteFile(filepath.Join(f.UpperDir("web"), "added"), []byte("layer"), 0o644))
	h := fake.NewHost()
	return &env{f: f, host: h, st: st, id: id,
		opts: checkpoint.Options{Store: st, Engine: f, Host: h.Preflight(), Mode: format.ModeHot}}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) state(t *testing.T) *container.InspectResponse {
	t.Helper()
	c, err := e.f.Lookup(context.Background(), "web")
	if err != nil || c == nil {
		t.Fatalf("web: %v", err)
	}
	return c
}

// checkpoints lists every checkpoint directory of web, whole or not.
func (e *env) checkpoints(t *testing.T) []store.Entry {
	t.Helper()
	ents, err := e.st.List("web")
	must(t, err)
	return ents
}

var errBoom = errors.New("boom")

// TestSaveFailureLeavesContainerAsItWas fails a save at each of its
// points and checks the undo: the container runs (from its checkpoint when
// the save had stopped it), unpaused, with its restart policy, and the
// store holds nothing for it.
func TestSaveFailureLeavesContainerAsItWas(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env)
		// wantErr is in the error.
		wantErr string
		// wantRecovery is in Result.Recovery ("" for none).
		wantRecovery string
		// restored: the container was started again from the checkpoint.
		restored bool
		// untouched: the engine saw no change at all.
		untouched bool
	}{
		{name: "no such container", setup: func(e *env) { e.opts.Containers = []string{"nope"} },
			wantErr: "no such container", untouched: true},
		{name: "engine without experimental features", setup: func(e *env) { e.f.Info.ExperimentalBuild = false },
			wantErr: "experimental features off", untouched: true},
		{name: "storage driver", setup: func(e *env) { e.f.Info.Driver = "vfs" },
			wantErr: "vfs storage driver", untouched: true},
		{name: "criu too old", setup: func(e *env) { e.host.CRIUErr = errors.New("CRIU 3.17 is too old for kernel 6.18") },
			wantErr: "too old", untouched: true},
		{name: "runc.conf not writable", setup: func(e *env) { e.host.RuncConfErr = errors.New("read-only file system") },
			wantErr: "read-only", untouched: true},
		{name: "not enough space", setup: func(e *env) { e.host.Free = 1 << 20 },
			wantErr: "not enough space", untouched: true},
		{name: "network inspect fails", setup: func(e *env) {
			e.connect("backend")
			e.f.FailOn("NetworkInspect", errBoom)
		}, wantErr: "network backend: boom", untouched: true},
		{name: "restart policy cannot be held off", setup: func(e *env) {
			e.policy("always")
			e.f.FailOn("SetRestartPolicy", errBoom)
		}, wantErr: "cannot hold the restart policy off", untouched: true},
		{name: "checkpoint fails, container runs on", setup: func(e *env) {
			e.policy("unless-stopped")
			e.f.FailOn("CheckpointCreate", errBoom)
		}, wantErr: "could not checkpoint web: boom"},
		{name: "checkpoint fails after the container exited", setup: func(e *env) {
			e.f.Before("CheckpointCreate", func() { e.f.Update("web", func(c *container.InspectResponse) { c.State.Running = false }) })
			e.f.FailOn("CheckpointCreate", errBoom)
		}, wantErr: "boom", wantRecovery: "started again normally (memory lost"},
		{name: "volume cannot be read after the checkpoint", setup: func(e *env) {
			e.policy("always")
			e.f.FailOn("VolumeInspect", errBoom)
		}, wantErr: "volume data: boom", wantRecovery: "started again from its checkpoint (memory kept)", restored: true},
		{name: "layer cannot be read after the checkpoint", setup: func(e *env) {
			// Gone between the preflight and the archive.
			e.f.Before("CheckpointCreate", func() { os.RemoveAll(e.f.UpperDir("web")) })
		}, wantErr: "writable layer", wantRecovery: "from its checkpoint", restored: true},
		{name: "restore from the checkpoint fails too", setup: func(e *env) {
			e.f.FailOn("VolumeInspect", errBoom)
			e.f.FailOn("StartFromCheckpoint", errBoom)
		}, wantErr: "volume data", wantRecovery: "started again normally (memory lost"},
		{name: "container cannot be started again at all", setup: func(e *env) {
			e.f.FailOn("VolumeInspect", errBoom)
			e.f.FailOn("StartFromCheckpoint", errBoom)
			e.f.FailOn("ContainerStart", errors.New("no start"))
		}, wantErr: "undo checkpoint: cannot start web again: no start", wantRecovery: "could NOT be started again"},
		{name: "disk full while writing", setup: func(e *env) {
			e.f.FailOn("CheckpointCreate", fmt.Errorf("write pages: %w", syscall.ENOSPC))
		}, wantErr: "is full, and the partial checkpoint was removed"},
		{name: "cold: stop fails", setup: func(e *env) {
			e.opts.Mode = format.ModeCold
			e.f.FailOn("ContainerStop", errBoom)
		}, wantErr: "cannot stop web: boom"},
		{name: "cold: failure after the stop", setup: func(e *env) {
			e.opts.Mode = format.ModeCold
			e.f.FailOn("VolumeInspect", errBoom)
		}, wantErr: "volume data", wantRecovery: "started again (it had been stopped for a cold save"},
		{name: "leave running: pause fails", setup: func(e *env) {
			e.opts.LeaveRunning = true
			e.f.FailOn("ContainerPause", errBoom)
		}, wantErr: "cannot pause web: boom"},
		{name: "leave running: failure while paused", setup: func(e *env) {
			e.opts.LeaveRunning = true
			e.f.FailOn("VolumeInspect", errBoom)
		}, wantErr: "volume data"},
		{name: "engine that cannot restore: failure after the checkpoint only unpauses", setup: func(e *env) {
			e.f.Info.ServerVersion = "28.5.2"
			e.policy("always")
			e.f.FailOn("VolumeInspect", errBoom)
		}, wantErr: "volume data", wantRecovery: "kept running: it was only paused"},
		{name: "interrupted during the checkpoint", setup: func(e *env) {
			e.policy("on-failure")
			e.f.Before("CheckpointCreate", e.cancel)
		}, wantErr: "context canceled", wantRecovery: "from its checkpoint", restored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.opts.Containers = []string{"web"}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			e.cancel = cancel
			tt.setup(e)
			before := e.state(t)
			calls := len(e.f.Calls())
			results, err := checkpoint.Save(ctx, e.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
			}
			if len(results) > 0 {
				r := results[0]
				if r.Checkpoint != nil {
					t.Errorf("a failed save returned checkpoint %s", r.Checkpoint.Name)
				}
				if !strings.Contains(r.Recovery, tt.wantRecovery) || (tt.wantRecovery == "" && r.Recovery != "") {
					t.Errorf("recovery = %q, want %q", r.Recovery, tt.wantRecovery)
				}
			}
			after := e.state(t)
			if tt.untouched {
				for _, c := range e.f.Calls()[calls:] {
					if !strings.HasPrefix(c, "Lookup") && !strings.HasPrefix(c, "NetworkInspect") && !strings.HasPrefix(c, "SetRestartPolicy") {
						t.Errorf("a save refused up front called %s", c)
					}
				}
			}
			if strings.Contains(tt.wantRecovery, "NOT") {
				return // nothing could bring it back; the message says so
			}
			if !after.State.Running || after.State.Paused {
				t.Errorf("container is %s after a failed save, want running", after.State.Status)
			}
			if got, want := after.HostConfig.RestartPolicy, before.HostConfig.RestartPolicy; got != want {
				t.Errorf("restart policy %v after a failed save, want %v", got, want)
			}
			if restored := e.f.RestoredFrom(e.id) != ""; restored != tt.restored {
				t.Errorf("started from the checkpoint: %v, want %v", restored, tt.restored)
			}
			if ents := e.checkpoints(t); len(ents) != 0 {
				t.Errorf("a failed save left %d checkpoints: %+v", len(ents), ents)
			}
		})
	}
}

func (e *env) policy(name string) {
	e.f.Update("web", func(c *container.InspectResponse) {
		c.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	})
}

// connect attaches web to a new user-defined network.
func (e *env) connect(net string) {
	ctx := context.Background()
	if _, err := e.f.NetworkCreate(ctx, net, network.CreateOptions{Driver: "bridge", Labels: map[string]string{"team": "a"}}); err != nil {
		panic(err)
	}
	if err := e.f.NetworkConnect(ctx, net, e.id, &network.EndpointSettings{Aliases: []string{"web-alias"}}); err != nil {
		panic(err)
	}
}

func TestSaveHot(t *testing.T) {
	e := newEnv(t)
	e.policy("always")
	e.connect("backend")
	var events []progress.Event
	e.opts.Progress = progress.Func(func(ev progress.Event) { events = append(events, ev) })
	e.opts.Name = "before-upgrade"
	e.opts.Containers = []string{"web"}
	results, err := checkpoint.Save(context.Background(), e.opts)
	must(t, err)
	r := results[0]
	if r.Container != "web" || r.Checkpoint == nil || r.Checkpoint.Name != "before-upgrade" || r.Took <= 0 {
		t.Fatalf("result %+v", r)
	}
	m := r.Checkpoint.Manifest
	if m.Mode != format.ModeHot || m.MemoryBytes != 4096 || m.Container.ID != e.id || m.Host.Arch != "amd64" || m.Host.CRIUVersion != 40201 {
		t.Errorf("manifest %+v", m)
	}
	if m.RestartPolicy.Name != "always" {
		t.Errorf("saved restart policy %q, want always", m.RestartPolicy.Name)
	}
	if len(m.Volumes) != 1 || m.Volumes[0].Name != "data" || m.Volumes[0].Destination != "/data" || m.Volumes[0].Anonymous {
		t.Errorf("volumes %+v", m.Volumes)
	}
	if m.Layer.Entries == 0 || m.Timings[len(m.Timings)-1].Phase != format.PhaseTotal {
		t.Errorf("layer %+v, timings %+v", m.Layer, m.Timings)
	}
	// Stopped by the checkpoint, its restart policy held off until resume.
	c := e.state(t)
	if c.State.Running || c.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("after a hot save: %s, restart policy %q", c.State.Status, c.HostConfig.RestartPolicy.Name)
	}
	must(t, r.Checkpoint.Verify(context.Background()))
	var nets []network.Inspect
	must(t, r.Checkpoint.ReadJSON(format.NetworksFile, &nets))
	if len(nets) != 1 || nets[0].Name != "backend" || nets[0].Labels["team"] != "a" {
		t.Errorf("networks %+v", nets)
	}
	var phases []string
	for _, ev := range events {
		phases = append(phases, ev.Phase)
	}
	for _, want := range []string{"checkpoint", "images", "volume data", "layer"} {
		if !slices.Contains(phases, want) {
			t.Errorf("no %q progress in %q", want, phases)
		}
	}
	// Only the freeze timeout: no namespace is marked external on an
	// engine that restores.
	if opts := e.host.Options(); len(opts) != 1 || !slices.Equal(opts[0], []string{"timeout 20"}) {
		t.Errorf("runc.conf got extra lines %q on an engine that restores", opts)
	}
}

func TestSaveModes(t *testing.T) {
	tests := []struct {
		name       string
		version    string
		cold, left bool
		policy     string
		// wantCalls are the engine calls that change the container, in order.
		wantCalls   []string
		wantRunning bool
		wantPolicy  string
		wantNetNS   string
		// noRuntime: ckpt's runtime cannot be installed.
		noRuntime bool
	}{
		{name: "hot", version: "20.10.24", policy: "always",
			wantCalls:  []string{"SetRestartPolicy no", "CheckpointCreate"},
			wantPolicy: "no"},
		{name: "hot, no restart policy", version: "26.1.5", policy: "no",
			wantCalls:  []string{"CheckpointCreate"},
			wantPolicy: "no"},
		{name: "cold", version: "20.10.24", cold: true, policy: "unless-stopped",
			wantCalls:  []string{"SetRestartPolicy no", "ContainerStop"},
			wantPolicy: "no"},
		{name: "leave running keeps the policy", version: "20.10.24", left: true, policy: "always",
			wantCalls:   []string{"ContainerPause", "CheckpointCreate", "ContainerUnpause"},
			wantRunning: true, wantPolicy: "always"},
		{name: "engine that cannot restore: paused, then killed once committed", version: "28.5.2", policy: "always",
			wantCalls:  []string{"SetRestartPolicy no", "ContainerPause", "CheckpointCreate", "ContainerKill"},
			wantPolicy: "no"},
		{name: "engine that cannot restore, no runtime of ckpt's: for a network holder", version: "28.5.2", policy: "always", noRuntime: true,
			wantCalls:  []string{"SetRestartPolicy no", "ContainerPause", "CheckpointCreate", "ContainerKill"},
			wantPolicy: "no", wantNetNS: format.NetNSHolder},
		{name: "cold on an engine that cannot restore is a plain stop", version: "28.5.2", cold: true,
			wantCalls: []string{"ContainerStop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.f.Info.ServerVersion = tt.version
			if tt.noRuntime {
				e.host.RuntimeErr = errors.New("no containerd runs here")
			}
			if tt.policy != "" {
				e.policy(tt.policy)
			}
			if tt.cold {
				e.opts.Mode = format.ModeCold
			}
			e.opts.LeaveRunning = tt.left
			r := checkpoint.SaveContainer(context.Background(), e.opts, e.id[:12])
			must(t, r.Err)
			var changes []string
			for _, c := range e.f.Calls() {
				for _, m := range []string{"SetRestartPolicy", "ContainerPause", "ContainerUnpause", "CheckpointCreate", "ContainerKill", "ContainerStop", "ContainerStart"} {
					if strings.HasPrefix(c, m+" ") {
						changes = append(changes, strings.TrimSpace(strings.Replace(c, e.id, "", 1)))
					}
				}
			}
			for i := range changes {
				changes[i] = strings.Join(strings.Fields(changes[i]), " ")
			}
			if !slices.Equal(changes, tt.wantCalls) {
				t.Errorf("calls %q, want %q", changes, tt.wantCalls)
			}
			c := e.state(t)
			if c.State.Running != tt.wantRunning || c.State.Paused {
				t.Errorf("container %s after the save, want running=%v", c.State.Status, tt.wantRunning)
			}
			if got := string(c.HostConfig.RestartPolicy.Name); got != tt.wantPolicy && !(got == "" && tt.wantPolicy == "") {
				t.Errorf("restart policy %q, want %q", got, tt.wantPolicy)
			}
			m := r.Checkpoint.Manifest
			if want := format.ModeHot; tt.cold {
				if m.Mode != format.ModeCold || m.MemoryBytes != 0 {
					t.Errorf("cold checkpoint: mode %s, memory %d", m.Mode, m.MemoryBytes)
				}
			} else if m.Mode != want {
				t.Errorf("mode %s", m.Mode)
			}
			if m.LeftRunning != tt.left || m.Container.NetNS != tt.wantNetNS {
				t.Errorf("left running %v, netns %q", m.LeftRunning, m.Container.NetNS)
			}
			if tt.wantNetNS != "" {
				opts := e.host.Options()
				if len(opts) != 1 || len(opts[0]) != 2 || !strings.HasPrefix(opts[0][0], "external net[") || opts[0][1] != "timeout 20" {
					t.Errorf("runc.conf lines %q, want the network namespace marked external", opts)
				}
			}
		})
	}
}

// TestSaveAfterCommitFailures: once the checkpoint is committed, a failure
// to let the container go on or to stop it is reported, and the checkpoint
// stays.
func TestSaveAfterCommitFailures(t *testing.T) {
	for _, tt := range []struct {
		name, version, fail, wantErr string
		left                         bool
	}{
		{"unpause fails", "20.10.24", "ContainerUnpause", "could not be unpaused", true},
		{"kill fails", "28.5.2", "ContainerKill", "could not be stopped (it runs on)", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.f.Info.ServerVersion = tt.version
			e.opts.LeaveRunning = tt.left
			e.f.FailOn(tt.fail, errBoom)
			r := checkpoint.SaveContainer(context.Background(), e.opts, "web")
			if r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", r.Err, tt.wantErr)
			}
			if ents := e.checkpoints(t); len(ents) != 1 || ents[0].State != store.StateComplete {
				t.Errorf("the committed checkpoint is gone: %+v", ents)
			}
		})
	}
}

func TestSaveNotRunning(t *testing.T) {
	e := newEnv(t)
	must(t, e.f.ContainerStop(context.Background(), "web", container.StopOptions{}))
	r := checkpoint.SaveContainer(context.Background(), e.opts, "web")
	if r.Err == nil || !strings.Contains(r.Err.Error(), "container web is not running (exited)") {
		t.Fatalf("err = %v", r.Err)
	}
}

func TestSaveAll(t *testing.T) {
	e := newEnv(t)
	e.f.Run("db", "db:1")
	holder := e.f.Run("web-ckpt-net", "ckpt-holder:x")
	e.f.Update(holder, func(c *container.InspectResponse) { c.Config.Labels[engine.HolderLabel] = "web" })
	e.opts.All = true
	results, err := checkpoint.Save(context.Background(), e.opts)
	must(t, err)
	var names []string
	for _, r := range results {
		names = append(names, r.Container)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"db", "web"}) {
		t.Errorf("saved %q, want db and web (never a network holder)", names)
	}
	if _, err := checkpoint.Save(context.Background(), e.opts); err == nil || !strings.Contains(err.Error(), "no running containers") {
		t.Errorf("second save --all: %v", err)
	}
}

// TestSaveInHolder: a container resumed inside its network holder is saved
// with the holder's configuration, to be recreated with it.
func TestSaveInHolder(t *testing.T) {
	e := newEnv(t)
	holder := e.f.Run("web-ckpt-net", "ckpt-holder:x")
	e.f.Update(holder, func(c *container.InspectResponse) {
		c.Config.Labels[engine.HolderLabel] = "web"
		c.Config.Hostname = "web-host"
	})
	e.f.Update("web", func(c *container.InspectResponse) { c.HostConfig.NetworkMode = "container:web-ckpt-net" })
	r := checkpoint.SaveContainer(context.Background(), e.opts, "web")
	must(t, r.Err)
	if r.Checkpoint.Manifest.Container.NetNS != format.NetNSHolder {
		t.Errorf("netns %q", r.Checkpoint.Manifest.Container.NetNS)
	}
	var h container.InspectResponse
	must(t, r.Checkpoint.ReadJSON(format.HolderFile, &h))
	if h.Config.Hostname != "web-host" {
		t.Errorf("holder.json %+v", h.Config)
	}
	if opts := e.host.Options(); len(opts) != 1 || !slices.Equal(opts[0], []string{"timeout 20"}) {
		t.Errorf("runc.conf lines %q: runc marks a shared namespace external itself", opts)
	}
}

func TestSaveConfigRecorded(t *testing.T) {
	e := newEnv(t)
	e.f.Update("web", func(c *container.InspectResponse) {
		c.Config.Labels["com.docker.compose.project"] = "shop"
		c.Mounts = append(c.Mounts,
			container.MountPoint{Type: "bind", Source: "/srv/web", Destination: "/srv", RW: true},
			container.MountPoint{Type: "volume", Name: "nfs", Driver: "nfs", Destination: "/nfs"},
			container.MountPoint{Type: "tmpfs", Destination: "/run"},
			container.MountPoint{Type: "npipe", Destination: "/pipe"})
	})
	r := checkpoint.SaveContainer(context.Background(), e.opts, "web")
	must(t, r.Err)
	m := r.Checkpoint.Manifest
	if m.Container.Project != "shop" {
		t.Errorf("project %q", m.Container.Project)
	}
	if len(m.Binds) != 1 || m.Binds[0].Source != "/srv/web" || !m.Binds[0].ReadWrite {
		t.Errorf("binds %+v", m.Binds)
	}
	if len(m.Skipped) != 2 || !strings.Contains(m.Skipped[0], "driver nfs") || !strings.Contains(m.Skipped[1], "npipe") {
		t.Errorf("skipped %q", m.Skipped)
	}
	var saved container.InspectResponse
	must(t, r.Checkpoint.ReadJSON(format.ContainerFile, &saved))
	if saved.ID != e.id {
		t.Errorf("container.json names %s", saved.ID)
	}
	b, _ := json.Marshal(m)
	if strings.Contains(string(b), `"mode":""`) {
		t.Errorf("manifest without a mode: %s", b)
	}
}

// TestProject: a compose project's running containers, dependents first
// (compose's depends_on and io.ckpt.after).
func TestProject(t *testing.T) {
	e := newEnv(t)
	label := func(ref, service, dependsOn, after string) {
		e.f.Update(ref, func(c *container.InspectResponse) {
			c.Config.Labels["com.docker.compose.project"] = "shop"
			c.Config.Labels["com.docker.compose.service"] = service
			if dependsOn != "" {
				c.Config.Labels["com.docker.compose.depends_on"] = dependsOn
			}
			if after != "" {
				c.Config.Labels["io.ckpt.after"] = after
			}
		})
	}
	e.f.Run("shop-db-1", "db:1")
	e.f.Run("cache", "cache:1")
	e.f.Run("other", "other:1")
	label("shop-db-1", "db", "", "")
	label("cache", "cache", "", "")
	label("web", "web", "db:service_started:false", " cache ,")
	names, err := checkpoint.Project(context.Background(), e.f, "shop")
	must(t, err)
	if len(names) != 3 || names[0] != "web" {
		t.Errorf("order %q: web depends on the others and is saved first", names)
	}
	if _, err := checkpoint.Project(context.Background(), e.f, "none"); err == nil || !strings.Contains(err.Error(), "no running container of compose project none") {
		t.Errorf("unknown project: %v", err)
	}
}

// killedSave runs a save that dies, as under SIGKILL, when the engine is
// called for method: nothing after that runs, no undo, and its lock goes
// with it. It returns once the save is dead.
func killedSave(t *testing.T, e *env, method string) {
	t.Helper()
	e.f.Before(method, runtime.Goexit)
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkpoint.SaveContainer(context.Background(), e.opts, "web")
		t.Errorf("the save went on after it was killed")
	}()
	<-done
	e.f.Before(method, nil)
}

// TestRecoverKilledSave: a save killed at any point is finished or undone
// by the next ckpt run on the container, as its journal records.
func TestRecoverKilledSave(t *testing.T) {
	tests := []struct {
		name         string
		left         bool
		killAt       string
		wantRecovery string
		// restored: started again from the images the killed save took.
		restored bool
	}{
		{name: "after the checkpoint stopped it", killAt: "VolumeInspect",
			wantRecovery: "started it again from the checkpoint it had taken (memory kept), put its restart policy always back, removed the unfinished checkpoint", restored: true},
		{name: "before the checkpoint", killAt: "CheckpointCreate",
			wantRecovery: "put its restart policy always back, removed the unfinished checkpoint"},
		{name: "while paused for --leave-running", left: true, killAt: "VolumeInspect",
			wantRecovery: "unpaused it (memory kept), removed the unfinished checkpoint"},
		{name: "after the commit, still paused", left: true, killAt: "ContainerUnpause",
			wantRecovery: "after its checkpoint before-kill was complete: unpaused it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.policy("always")
			e.opts.LeaveRunning = tt.left
			e.opts.Name = "before-kill"
			killedSave(t, e, tt.killAt)
			if j, _ := e.st.ReadJournal("web"); j == nil {
				t.Fatal("the killed save left no journal")
			}

			e.opts.Name = "after"
			r := checkpoint.SaveContainer(context.Background(), e.opts, "web")
			must(t, r.Err)
			if !strings.Contains(r.Recovered, tt.wantRecovery) {
				t.Errorf("recovered %q, want %q", r.Recovered, tt.wantRecovery)
			}
			if restored := e.f.RestoredFrom(e.id) != ""; restored != tt.restored {
				t.Errorf("started from the killed save's images: %v, want %v", restored, tt.restored)
			}
			if j, _ := e.st.ReadJournal("web"); j != nil {
				t.Errorf("the journal outlived the recovery: %+v", j)
			}
			var names []string
			for _, ent := range e.checkpoints(t) {
				names = append(names, ent.Name+":"+ent.State)
			}
			want := []string{"after:complete"}
			if tt.killAt == "ContainerUnpause" {
				want = []string{"after:complete", "before-kill:complete"}
			}
			slices.Sort(names)
			if !slices.Equal(names, want) {
				t.Errorf("checkpoints %q, want %q", names, want)
			}
		})
	}
}

// TestSaveRetriesUnfreezable: CRIU gives up freezing a process that waits
// for the disk (state D) and lets the container go on; the save lets it
// run (unpausing it when the save paused it) and tries again, three times
// in all. Other failures are not retried.
func TestSaveRetriesUnfreezable(t *testing.T) {
	unfreezable := errors.New("criu failed: Error (compel/src/lib/infect.c:262): Unseizable non-zombie 27711 found, state D, err -1/4")
	for _, tt := range []struct {
		name      string
		version   string
		errs      []error
		wantCalls []string
		wantErr   string
	}{
		{name: "once", errs: []error{unfreezable},
			wantCalls: []string{"CheckpointCreate", "CheckpointCreate"}},
		{name: "twice", errs: []error{unfreezable, unfreezable},
			wantCalls: []string{"CheckpointCreate", "CheckpointCreate", "CheckpointCreate"}},
		{name: "three times", errs: []error{unfreezable, unfreezable, unfreezable},
			wantCalls: []string{"CheckpointCreate", "CheckpointCreate", "CheckpointCreate"}, wantErr: "Unseizable non-zombie"},
		{name: "paused by the save: unpaused between attempts", version: "28.5.2", errs: []error{unfreezable},
			wantCalls: []string{"ContainerPause", "CheckpointCreate", "ContainerUnpause", "ContainerPause", "CheckpointCreate", "ContainerKill"}},
		{name: "paused by the save, failing: unpaused at the end", version: "28.5.2", errs: []error{unfreezable, unfreezable, unfreezable},
			wantCalls: []string{"ContainerPause", "CheckpointCreate", "ContainerUnpause", "ContainerPause", "CheckpointCreate",
				"ContainerUnpause", "ContainerPause", "CheckpointCreate", "ContainerUnpause"}, wantErr: "Unseizable non-zombie"},
		{name: "another failure", errs: []error{errBoom}, wantCalls: []string{"CheckpointCreate"}, wantErr: "boom"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.version != "" {
				e.f.Info.ServerVersion = tt.version
			}
			e.f.FailOn("CheckpointCreate", tt.errs...)
			var reports []string
			e.opts.Progress = progress.Func(func(ev progress.Event) {
				if ev.Warning {
					reports = append(reports, ev.Message)
				}
			})
			r := checkpoint.SaveContainer(context.Background(), e.opts, "web")
			var calls []string
			for _, c := range e.f.Calls() {
				for _, m := range []string{"ContainerPause", "ContainerUnpause", "CheckpointCreate", "ContainerKill"} {
					if c == m || strings.HasPrefix(c, m+" ") {
						calls = append(calls, m)
					}
				}
			}
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("calls %q, want %q", calls, tt.wantCalls)
			}
			if retries := min(len(tt.errs), 2); len(tt.errs) > 0 && tt.errs[0] == unfreezable && len(reports) != retries {
				t.Errorf("warnings %q, want %d", reports, retries)
			}
			if tt.wantErr == "" {
				must(t, r.Err)
				must(t, r.Checkpoint.Verify(context.Background()))
				return
			}
			if r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", r.Err, tt.wantErr)
			}
			c := e.state(t)
			if !c.State.Running || c.State.Paused {
				t.Errorf("after the failed save the container runs %v, paused %v", c.State.Running, c.State.Paused)
			}
		})
	}
}

// TestRecoverKilledBeforeTheKill: on an engine that cannot restore, a save
// pauses the container, checkpoints it left running and kills it after the
// commit. Killed between the commit and that kill, the save is finished by
// the recovery: the container is stopped (it has not run since the
// checkpoint), not unpaused to run on past it, and its restart policy stays
// held for the resume to put back.
func TestRecoverKilledBeforeTheKill(t *testing.T) {
	e := newEnv(t)
	e.f.Info.ServerVersion = "28.5.2"
	e.policy("always")
	e.opts.Name = "before-kill"
	killedSave(t, e, "ContainerKill")
	if c := e.state(t); !c.State.Paused {
		t.Fatalf("the killed save did not leave the container paused: %+v", c.State)
	}
	rec, err := checkpoint.Recover(context.Background(), e.f, e.st, "web")
	must(t, err)
	if !strings.Contains(rec.Message, "was complete: stopped it as the save would have") || rec.Started {
		t.Errorf("recovery %+v", rec)
	}
	c := e.state(t)
	if c.State.Running || c.State.Paused {
		t.Errorf("after the recovery the container runs %v, paused %v", c.State.Running, c.State.Paused)
	}
	if got := c.HostConfig.RestartPolicy.Name; got != "no" {
		t.Errorf("restart policy %q, want it held (no) until the resume", got)
	}
	if j, _ := e.st.ReadJournal("web"); j != nil {
		t.Errorf("the journal outlived the recovery: %+v", j)
	}
	if _, err := e.st.Load("web", "before-kill"); err != nil {
		t.Errorf("the complete checkpoint: %v", err)
	}
}

// TestRecoverKilledResume: a resume killed before it started the container
// has what it created removed, newest first, so that the next resume starts
// from the checkpoint again; one killed after the start only has its
// restart policy put back. Either way the journal goes.
func TestRecoverKilledResume(t *testing.T) {
	for _, tt := range []struct {
		name    string
		running bool
		want    string
	}{
		{name: "before the start", want: "removed the container it had created, removed the network it had created, removed volume fresh it had created"},
		{name: "after the start", running: true, want: "after it started the container: put its restart policy always back"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			must(t, e.f.ContainerRemove(ctx, e.id, container.RemoveOptions{Force: true}))
			net, err := e.f.NetworkCreate(ctx, "backend", network.CreateOptions{})
			must(t, err)
			_, err = e.f.VolumeCreate(ctx, volume.CreateOptions{Name: "fresh"})
			must(t, err)
			must(t, e.st.BeginFill("web", "fresh", "now"))
			id, err := e.f.Create(ctx, "web", &container.Config{Image: "app:1"},
				&container.HostConfig{Binds: []string{"fresh:/data"}, NetworkMode: "backend"}, nil)
			must(t, err)
			if tt.running {
				must(t, e.f.ContainerStart(ctx, id, container.StartOptions{}))
			}
			must(t, e.st.WriteJournal("web", &store.Journal{Op: store.JournalResume, Checkpoint: "c1",
				RestartPolicy: format.RestartPolicy{Name: "always"},
				Containers:    []string{id}, Networks: []string{net.ID}, Volumes: []string{"fresh"}}))

			rec, err := checkpoint.Recover(ctx, e.f, e.st, "web")
			must(t, err)
			if !strings.Contains(rec.Message, tt.want) || rec.Started != tt.running {
				t.Errorf("recovery %+v, want %q", rec, tt.want)
			}
			if j, _ := e.st.ReadJournal("web"); j != nil {
				t.Errorf("the journal outlived the recovery: %+v", j)
			}
			c, err := e.f.Lookup(ctx, "web")
			must(t, err)
			if tt.running {
				if c == nil || c.HostConfig.RestartPolicy.Name != "always" {
					t.Errorf("after the recovery: %+v", c)
				}
				return
			}
			if c != nil || e.f.Network("backend") || e.f.Volume("fresh") != "" {
				t.Errorf("left behind: container %v, network %v, volume %q", c != nil, e.f.Network("backend"), e.f.Volume("fresh"))
			}
			if e.st.PartlyFilled("web", "fresh", "now") {
				t.Error("the fill marker outlived the removed volume")
			}
		})
	}
}
