package integration

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/ckpt-dev/ckpt/internal/engine"
)

// A save checkpoints through the engine's own containerd, CRIU writing
// straight into the store (no copy through the content store); with
// CKPT_CHECKPOINT_VIA=engine through Docker's checkpoint API. Either way
// the engine's view stays right: the container died (exit 137 when the
// save stopped it), docker ps no longer lists it, its restart policy is
// held, and the engine starts it from those images. Only the API path
// makes the engine log a checkpoint event: that tells the paths apart.
func TestCheckpointPathsEngineView(t *testing.T) {
	for _, via := range []string{"containerd", "engine"} {
		t.Run(via, func(t *testing.T) {
			e := newEnv(t)
			name := e.name("app")
			policy := container.RestartPolicyAlways
			e.startApp(name, appOpts{restart: policy})
			before := e.waitCounter(name, 2)
			since := time.Now()
			cmd := exec.Command(ckptBin, "save", name)
			cmd.Env = e.environ(engine.ViaEnv + "=" + via)
			out, err := cmd.CombinedOutput()
			t.Logf("ckpt save (%s=%s): %v\n%s", engine.ViaEnv, via, err, out)
			if err != nil {
				t.Fatal(err)
			}
			c := e.inspect(name)
			if c.State.Running || c.State.Status != "exited" {
				t.Fatalf("after the save the engine says %s (running %v)", c.State.Status, c.State.Running)
			}
			if got := c.HostConfig.RestartPolicy.Name; got != container.RestartPolicyDisabled {
				t.Fatalf("restart policy %q during the checkpoint, want it held (no)", got)
			}
			ps, err := docker.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
			must(t, err)
			if len(ps) != 0 {
				t.Fatalf("docker ps lists the saved container: %+v", ps)
			}
			actions := containerEvents(t, name, since)
			if !slices.Contains(actions, "die") {
				t.Fatalf("the engine logged no die event: %q", actions)
			}
			if checkpointed := slices.Contains(actions, "checkpoint"); checkpointed != (via == "engine") {
				t.Fatalf("checkpoint event %v through %s: the save did not take that path (events %q)", checkpointed, via, actions)
			}
			r := e.mustCkpt("resume", name)
			if !strings.Contains(r.stdout, "memory restored") {
				t.Fatalf("resume: %s", r.stdout)
			}
			e.assertWhole(name, before, policy, "nothing")
		})
	}
}

// containerEvents returns the actions the engine logged for container name
// since then, up to now.
func containerEvents(t *testing.T, name string, since time.Time) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience(10*time.Second))
	defer cancel()
	msgs, errs := docker.Events(ctx, events.ListOptions{
		Since:   since.Add(-time.Second).Format(time.RFC3339Nano),
		Until:   time.Now().Add(time.Second).Format(time.RFC3339Nano),
		Filters: filters.NewArgs(filters.Arg("container", name), filters.Arg("type", "container")),
	})
	var actions []string
	for {
		select {
		case m := <-msgs:
			actions = append(actions, string(m.Action))
		case err := <-errs:
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("engine events: %v", err)
			}
			return actions
		}
	}
}

// A resume hands the engine a checkpoint of symbolic links to the store's
// images (CKPT_RESTORE_VIA=links, the default), which the engine copies
// through containerd's content store in a few kilobytes while CRIU reads
// the store's files; with CKPT_RESTORE_VIA=images the images themselves.
// Either way the container comes back with its memory, into the same
// container and into a removed one, and nothing is left in containerd's
// temporary directory. The fault build's trace tells which way the images
// went.
func TestRestorePaths(t *testing.T) {
	for _, via := range []string{"links", "images"} {
		t.Run(via, func(t *testing.T) {
			e := newEnv(t)
			name, vol := e.name("app"), e.name("data")
			policy := container.RestartPolicyAlways
			e.startApp(name, appOpts{volume: vol, restart: policy})
			e.call(name, "POST", "/write?path=/data/kept.txt&data=kept")
			before := e.waitCounter(name, 2)
			leaks := leakedCopies(t)
			for _, removed := range []bool{false, true} {
				e.mustCkpt("save", name)
				if removed {
					removeContainer(t, name)
					e.removeHolder(name)
					must(t, docker.VolumeRemove(t.Context(), vol, true))
				}
				pts := e.tracePoints([]string{engine.RestoreViaEnv + "=" + via}, "resume", name)
				// Where the engine cannot restore (Docker 28+), ckpt's
				// runtime does, from the store's images: the engine is
				// handed none, by either way.
				viaRuntime := runtimeEngine(t)
				if asked := slices.Contains(pts, "runtime:asked"); asked != viaRuntime {
					t.Fatalf("removed %v: restored through ckpt's runtime %v on an engine that needs it %v (points %q)", removed, asked, viaRuntime, pts)
				}
				for _, how := range []string{"links", "images"} {
					if took := slices.Contains(pts, "engine:placed "+how); took != (how == via && !viaRuntime) {
						t.Fatalf("%s=%s, removed %v: placed as %s %v (points %q)", engine.RestoreViaEnv, via, removed, how, took, pts)
					}
				}
				before = e.assertWhole(name, before, policy, "nothing")
				if kept, _ := e.call(name, "GET", "/read?path=/data/kept.txt"); kept != "kept" {
					t.Fatalf("removed %v: the volume holds %q", removed, kept)
				}
			}
			if now := leakedCopies(t); !slices.Equal(now, leaks) {
				t.Fatalf("containerd's temporary directory held %q before, %q after", leaks, now)
			}
		})
	}
}

// leakedCopies lists containerd's checkpoint copies in its temporary
// directory.
func leakedCopies(t *testing.T) []string {
	t.Helper()
	var all []string
	for _, d := range engine.LeakDirs() {
		m, err := filepath.Glob(filepath.Join(d, engine.LeakPattern))
		must(t, err)
		all = append(all, m...)
	}
	return all
}
