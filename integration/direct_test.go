package integration

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
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
			cmd.Env = append(os.Environ(), "CKPT_STORE="+e.store, engine.ViaEnv+"="+via)
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
