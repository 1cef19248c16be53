package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// RecoverEngine is what Recover needs of the engine. Save's Engine and
// resume's both embed it: each of them runs Recover first.
type RecoverEngine interface {
	engine.Looker
	ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error
	NetworkRemove(ctx context.Context, id string) error
	VolumeRemove(ctx context.Context, name string, force bool) error
	ContainerUnpause(ctx context.Context, id string) error
	ContainerKill(ctx context.Context, id, signal string) error
	ContainerStart(ctx context.Context, id string, opts container.StartOptions) error
	// StartFromCheckpoint starts container id from the CRIU images in dir,
	// returning CRIU's log when that fails and the log could be caught.
	StartFromCheckpoint(ctx context.Context, id, dir string) (restoreLog []byte, err error)
	SetRestartPolicy(ctx context.Context, id string, p format.RestartPolicy) error
}

// Recovery is what Recover did about a save that a killed ckpt left in
// flight.
type Recovery struct {
	// Message says what was found and done; "" when nothing was in flight.
	Message string
	// Started is true when the container runs again (started, or unpaused);
	// MemoryKept when it kept its memory (unpaused, or started from the
	// images the interrupted save had taken).
	Started, MemoryKept bool
	// Committed names the checkpoint of a save that was interrupted after
	// its commit and left the container stopped: it is to be resumed, as a
	// finished save's would be (the boot hook does, a shutdown hook killed
	// before it recorded the save had not said so).
	Committed string
	// Mode is the committed checkpoint's mode.
	Mode format.Mode
}

// Recover finishes or undoes a save of container name that a killed ckpt
// (SIGKILL, a power cut) left in flight, as its journal in st records: a
// save that had committed its checkpoint is left as a finished save leaves
// it (a container it had paused to kill after the commit is killed, one
// paused to go on is unpaused); otherwise a container it had paused is
// unpaused, one it had stopped is
// started again — from the images it had taken when they are whole, so that
// its memory is kept — and its restart policy is put back, and the
// unfinished checkpoint is removed. The caller holds the container's lock.
// On an error the journal stays, for a later run to try again.
func Recover(ctx context.Context, eng RecoverEngine, st *store.Store, name string) (Recovery, error) {
	var r Recovery
	j, err := st.ReadJournal(name)
	if err != nil || j == nil {
		return r, err
	}
	if j.Op == store.JournalResume {
		return recoverResume(ctx, eng, st, name, j)
	}
	c, err := eng.Lookup(ctx, j.ContainerID)
	if err != nil {
		return r, err
	}
	if _, err := st.Load(name, j.Checkpoint); err == nil {
		// It had committed: the checkpoint is whole. A container it had
		// paused goes on; one it had stopped stays stopped, to be resumed.
		r.Message = fmt.Sprintf("a save of %s was interrupted after its checkpoint %s was complete", name, j.Checkpoint)
		if c != nil && j.Stops && (!c.State.Running || c.State.Paused) {
			r.Committed, r.Mode = j.Checkpoint, format.ModeCold
			if j.Hot {
				r.Mode = format.ModeHot
			}
		}
		switch {
		case c == nil || !c.State.Paused:
		case j.Stops:
			// Paused to be checkpointed left running and killed after the
			// commit (an engine that cannot restore otherwise): finish
			// that. It has not run since the checkpoint.
			if err := eng.ContainerKill(ctx, c.ID, "KILL"); err != nil {
				return r, fmt.Errorf("%s, and it cannot be stopped as the save would have: %w", r.Message, err)
			}
			r.Message += ": stopped it as the save would have (ckpt resume brings it back)"
		default:
			if err := eng.ContainerUnpause(ctx, c.ID); err != nil {
				return r, fmt.Errorf("%s, and it cannot be unpaused: %w", r.Message, err)
			}
			r.Message += ": unpaused it"
		}
		return r, st.ClearJournal(name)
	}
	var did []string
	switch {
	case c == nil:
		did = append(did, "the container no longer exists")
	case c.State.Paused:
		if err := eng.ContainerUnpause(ctx, c.ID); err != nil {
			return r, fmt.Errorf("a save of %s was interrupted, and it cannot be unpaused: %w", name, err)
		}
		r.Started, r.MemoryKept = true, true
		did = append(did, "unpaused it (memory kept)")
	case !c.State.Running && j.Stops:
		images := ""
		if j.Hot {
			images = st.PendingImages(name, j.Checkpoint)
		}
		why := "the save had taken no images"
		if images != "" {
			log, err := eng.StartFromCheckpoint(ctx, c.ID, images)
			if err == nil {
				r.Started, r.MemoryKept = true, true
				did = append(did, "started it again from the checkpoint it had taken (memory kept)")
			} else {
				why = hint.FirstLine(criu.Explain(err, log))
			}
		}
		if !r.Started {
			if err := eng.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
				return r, fmt.Errorf("a save of %s was interrupted, and it cannot be started again: %w", name, err)
			}
			r.Started = true
			did = append(did, "started it again normally (memory lost: "+why+")")
		}
	}
	if c != nil && j.Stops && j.RestartPolicy.Restarts() { // only a save that stops holds it
		if err := eng.SetRestartPolicy(ctx, c.ID, j.RestartPolicy); err != nil {
			return r, fmt.Errorf("a save of %s was interrupted, and its restart policy cannot be put back: %w", name, err)
		}
		did = append(did, "put its restart policy "+j.RestartPolicy.Name+" back")
	}
	if err := removeIncomplete(st, name); err != nil {
		return r, err
	}
	did = append(did, "removed the unfinished checkpoint")
	r.Message = fmt.Sprintf("a save of %s was interrupted (ckpt was killed): %s", name, strings.Join(did, ", "))
	return r, st.ClearJournal(name)
}

// recoverResume finishes or undoes a resume of container name that a killed
// ckpt left in flight: when the container runs, the resume had started it
// and only its restart policy is put back; otherwise what it created
// (containers, networks, volumes) is removed, newest first, so that the
// next resume starts from the checkpoint again.
func recoverResume(ctx context.Context, eng RecoverEngine, st *store.Store, name string, j *store.Journal) (Recovery, error) {
	var r Recovery
	c, err := eng.Lookup(ctx, name)
	if err != nil {
		return r, err
	}
	if c != nil && c.State.Running {
		r.Started, r.MemoryKept = true, j.MemoryRestored
		r.Message = fmt.Sprintf("a resume of %s was interrupted after it started the container", name)
		if j.RestartPolicy.Restarts() {
			if err := eng.SetRestartPolicy(ctx, c.ID, j.RestartPolicy); err != nil {
				return r, fmt.Errorf("%s, and its restart policy cannot be put back: %w", r.Message, err)
			}
			r.Message += ": put its restart policy " + j.RestartPolicy.Name + " back"
		}
		return r, st.ClearJournal(name)
	}
	var did []string
	for i := len(j.Containers) - 1; i >= 0; i-- {
		if err := eng.ContainerRemove(ctx, j.Containers[i], container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return r, fmt.Errorf("a resume of %s was interrupted, and the container it created cannot be removed: %w", name, err)
		}
		did = append(did, "removed the container it had created")
	}
	for i := len(j.Networks) - 1; i >= 0; i-- {
		if err := eng.NetworkRemove(ctx, j.Networks[i]); err != nil && !cerrdefs.IsNotFound(err) {
			return r, fmt.Errorf("a resume of %s was interrupted, and the network it created cannot be removed: %w", name, err)
		}
		did = append(did, "removed the network it had created")
	}
	for i := len(j.Volumes) - 1; i >= 0; i-- {
		if err := eng.VolumeRemove(ctx, j.Volumes[i], true); err != nil && !cerrdefs.IsNotFound(err) {
			return r, fmt.Errorf("a resume of %s was interrupted, and volume %s it created cannot be removed: %w", name, j.Volumes[i], err)
		}
		if err := st.EndFill(name, j.Volumes[i]); err != nil {
			return r, err
		}
		did = append(did, "removed volume "+j.Volumes[i]+" it had created")
	}
	if len(did) == 0 {
		did = append(did, "it had created nothing")
	}
	r.Message = fmt.Sprintf("a resume of %s was interrupted (ckpt was killed): %s", name, strings.Join(did, ", "))
	return r, st.ClearJournal(name)
}

// removeIncomplete removes the unfinished checkpoints of container name.
// The engine may still be writing into one, or cleaning it up, for a moment
// after its client was killed: a removal that finds new files is tried
// again, for up to five seconds.
func removeIncomplete(st *store.Store, name string) error {
	for i := 0; ; i++ {
		err := st.RemoveIncomplete(name)
		if err == nil || i == 50 || !errors.Is(err, syscall.ENOTEMPTY) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
