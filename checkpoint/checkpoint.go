// Package checkpoint saves Docker containers whole: process state through
// the engine's checkpoint API (CRIU underneath), named volumes, the writable
// layer and the container's configuration, as one verified unit in the
// store.
package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/archive"
	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/progress"
	"github.com/ckpt-dev/ckpt/internal/shim"
	"github.com/ckpt-dev/ckpt/internal/steps"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/policy"
)

// Engine is what a save needs of the container engine: what Recover needs,
// and more. internal/engine's Docker adapter implements it, and
// internal/engine/fake for tests.
type Engine interface {
	RecoverEngine
	// Running lists the running containers that match opts' filters.
	Running(ctx context.Context, opts container.ListOptions) ([]container.InspectResponse, error)
	// System is the engine's system information.
	System() system.Info
	// ClientVersion is the API version spoken.
	ClientVersion() string
	// DumpMemory estimates the bytes CRIU dumps for container id (0 if
	// unknown).
	DumpMemory(ctx context.Context, id string) int64
	ContainerPause(ctx context.Context, id string) error
	ContainerStop(ctx context.Context, id string, opts container.StopOptions) error
	// CheckpointCreate checkpoints container id; with opts.Exit the engine
	// may see it stopped only later (WaitStopped).
	CheckpointCreate(ctx context.Context, id string, opts checkpoint.CreateOptions) error
	// WaitStopped returns once the engine sees container id stopped.
	WaitStopped(ctx context.Context, id string) error
	NetworkInspect(ctx context.Context, name string, opts network.InspectOptions) (network.Inspect, error)
	VolumeInspect(ctx context.Context, name string) (volume.Volume, error)
}

// Options say what to save and how.
type Options struct {
	// Store receives the checkpoints.
	Store *store.Store
	// Engine runs the containers.
	Engine Engine
	// Host is the machine's CRIU and file systems; the zero value is this
	// host.
	Host preflight.Host
	// Containers names the containers to save, by name or id.
	Containers []string
	// All saves every running container; Containers must then be empty.
	All bool
	// Mode is format.ModeHot (memory and data; the default when empty) or
	// format.ModeCold (data only: the container is stopped gracefully and
	// starts fresh on its data when resumed).
	Mode format.Mode
	// LeaveRunning keeps the containers running: each is paused (frozen)
	// while its state is captured, then unpaused.
	LeaveRunning bool
	// Name names the checkpoints; empty means a name made from the time.
	Name string
	// Progress receives a report per phase; nil discards them.
	Progress progress.Reporter
}

// Result is the outcome of saving one container.
type Result struct {
	// Container is the container's name (or the reference given, when it
	// could not be resolved).
	Container string
	// Checkpoint is the checkpoint written, when the save succeeded.
	Checkpoint *store.Checkpoint
	// Took is how long the save took.
	Took time.Duration
	// Err is why the save failed.
	Err error
	// Recovery says how the container was brought back after a failed save
	// that had already stopped or paused it; empty when it was not.
	Recovery string
	// Recovered says what was done about an earlier save that a killed
	// ckpt left in flight (Recover); empty when there was none.
	Recovered string
}

// Save saves each container of opts in turn. It returns one result per
// container and an error when any of them failed.
func Save(ctx context.Context, opts Options) ([]Result, error) {
	refs := opts.Containers
	if opts.All {
		list, err := opts.Engine.Running(ctx, container.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, c := range list {
			refs = append(refs, engine.Name(&c))
		}
		if len(refs) == 0 {
			return nil, hint.New("no running containers to save", "docker ps lists running containers")
		}
	}
	return steps.Each(ctx, refs, func(ref string) Result { return SaveContainer(ctx, opts, ref) },
		func(r Result) (string, error) { return r.Container, r.Err })
}

// saver holds the state of one save.
type saver struct {
	opts    Options
	eng     Engine
	host    preflight.Host
	rep     progress.Reporter
	start   time.Time
	c       *container.InspectResponse
	name    string
	upper   string
	pending *store.Pending
	m       *format.Manifest
	ck      *store.Checkpoint
	// mu serializes the phases' reports and timings: capture runs phases
	// at once.
	mu sync.Mutex
	// holder is the network holder whose namespace the container shares,
	// if it does.
	holder *container.InspectResponse
	// criuVersion is the version of CRIU found by the preflight.
	criuVersion int
	// runcOpts are the CRIU options this checkpoint adds to runc.conf.
	runcOpts []string
	// killAfter is true when the container is checkpointed left running
	// and killed once the checkpoint is committed (see pause).
	killAfter bool
	// paused is true while this save holds the container paused.
	paused bool
	// stopped is true once the save has stopped the container.
	stopped bool
	// checkpointed is true once the checkpoint call succeeded.
	checkpointed bool
	// recovery says how the container was brought back after a failure.
	recovery string
	// early is the capture of the volumes and the writable layer begun
	// while the checkpoint ran (captureWhenFrozen).
	early *early
	// follow takes in the memory pages while CRIU writes them.
	follow *store.Follow
}

// SaveContainer saves one container (a name or an id); opts.Containers and
// opts.All are ignored.
func SaveContainer(ctx context.Context, opts Options, ref string) (res Result) {
	res.Container = ref
	start := time.Now()
	if opts.Mode == "" {
		opts.Mode = format.ModeHot
	}
	s := &saver{opts: opts, eng: opts.Engine, host: opts.Host, rep: progress.Or(opts.Progress), start: start}
	if err := preflight.Engine(s.eng.System()); err != nil {
		res.Err = err
		return res
	}
	c, err := engine.Find(ctx, s.eng, ref)
	if err != nil {
		res.Err = err
		return res
	}
	s.name = engine.Name(c)
	res.Container = s.name
	lock, err := opts.Store.Lock(s.name, "save")
	if err != nil {
		res.Err = err
		return res
	}
	defer lock.Unlock()
	rec, err := Recover(ctx, s.eng, opts.Store, s.name)
	res.Recovered = rec.Message
	if err != nil {
		res.Err = err
		return res
	}
	// Look again under the lock: another save may have just stopped it.
	if s.c, err = engine.Find(ctx, s.eng, c.ID); err != nil {
		res.Err = err
		return res
	}
	res.Err = diskFull(s.run(ctx), opts.Store.Root)
	res.Checkpoint, res.Recovery, res.Took = s.ck, s.recovery, time.Since(start)
	if res.Err != nil {
		res.Checkpoint = nil
	}
	return res
}

// run does the save under the container's lock, as a list of steps each
// with its undo. Whatever fails, the container ends up as it was: running
// (restarted from the new checkpoint if the save had already stopped it),
// unpaused, with its restart policy, and no checkpoint is left that looks
// whole.
func (s *saver) run(ctx context.Context) error {
	return steps.Run(ctx,
		steps.Step{Name: "preflight", Do: s.preflight},
		steps.Step{Name: "begin", Do: s.begin, Undo: s.abort},
		steps.Step{Name: "journal", Do: s.journal, Undo: s.clearJournal},
		steps.Step{Name: "configuration", Do: s.writeConfig},
		steps.Step{Name: "restart policy", Do: s.holdRestartPolicy, Undo: s.putRestartPolicyBack},
		steps.Step{Name: "pause", Do: s.pause, Undo: s.unpause},
		steps.Step{Name: "checkpoint", Do: s.checkpoint, Undo: s.recover},
		steps.Step{Name: "capture", Do: s.capture},
		steps.Step{Name: "commit", Do: s.commit},
		steps.Step{Name: "finish", Do: s.finish},
		steps.Step{Name: "done", Do: s.clearJournal},
	)
}

// hot reports whether this save keeps memory.
func (s *saver) hot() bool { return s.opts.Mode != format.ModeCold }

// preflight refuses, before anything is touched, a save that cannot work:
// a container that is not running, a CRIU that cannot checkpoint here, too
// little room in the store. It also decides how the network namespace is
// saved.
func (s *saver) preflight(ctx context.Context) (err error) {
	if !s.c.State.Running {
		return hint.New(fmt.Sprintf("container %s is not running (%s)", s.name, s.c.State.Status),
			"ckpt save checkpoints running containers; start it first")
	}
	// The engine's estimate of the memory to dump comes while CRIU is
	// asked its version (each about 10 ms, one after the other before).
	memory := make(chan int64, 1)
	if s.hot() {
		go func() { memory <- s.eng.DumpMemory(ctx, s.c.ID) }()
		if s.criuVersion, err = s.host.Memory(); err != nil {
			return err
		}
	} else {
		memory <- 0
	}
	if s.upper, err = engine.UpperDir(s.c); err != nil {
		return err
	}
	need, err := s.host.Need(s.c, s.upper, <-memory)
	if err != nil {
		return err
	}
	if err := s.host.Space(s.opts.Store.Root, s.name, need); err != nil {
		return err
	}
	return s.opts.Store.RemoveIncomplete(s.name)
}

// begin starts the checkpoint in the store, under a temporary name.
func (s *saver) begin(ctx context.Context) (err error) {
	name := s.opts.Name
	if name == "" {
		name = s.opts.Store.NewName(s.name, s.start)
	}
	// The store's key signs the manifest at the commit, so that the
	// checkpoint, exported or pushed, is trusted where this store is.
	id, err := s.opts.Store.Identity()
	if err != nil {
		return err
	}
	if s.pending, err = s.opts.Store.Begin(s.name, name); err != nil {
		return err
	}
	s.pending.Signer = id
	s.m = s.manifest()
	if s.hot() {
		s.runcOpts, err = s.netns(ctx)
	}
	return err
}

// abort removes the unfinished checkpoint.
func (s *saver) abort(context.Context) error {
	if s.pending == nil || s.ck != nil {
		return nil
	}
	return s.pending.Abort()
}

// journal records the save in the store before it changes anything in the
// engine, so that Recover can put things back if ckpt is killed.
func (s *saver) journal(ctx context.Context) error {
	return s.opts.Store.WriteJournal(s.name, &store.Journal{
		Op: store.JournalSave, ContainerID: s.c.ID, Checkpoint: s.pending.Name,
		RestartPolicy: s.m.RestartPolicy, Stops: !s.m.LeftRunning, Hot: s.hot(),
	})
}

func (s *saver) clearJournal(context.Context) error { return s.opts.Store.ClearJournal(s.name) }

// holdRestartPolicy turns the restart policy off while the container is
// checkpointed: the engine restarts a checkpointed container with restart
// policy always or unless-stopped at once, and again when it starts.
// Resume puts it back.
func (s *saver) holdRestartPolicy(ctx context.Context) error {
	if s.m.LeftRunning || !s.m.RestartPolicy.Restarts() {
		return nil
	}
	if err := s.eng.SetRestartPolicy(ctx, s.c.ID, format.RestartPolicy{Name: string(container.RestartPolicyDisabled)}); err != nil {
		return fmt.Errorf("cannot hold the restart policy off: %w", err)
	}
	return nil
}

func (s *saver) putRestartPolicyBack(ctx context.Context) error {
	if s.m == nil || s.m.LeftRunning || !s.m.RestartPolicy.Restarts() {
		return nil
	}
	return s.eng.SetRestartPolicy(ctx, s.c.ID, s.m.RestartPolicy)
}

// pause freezes the container for a save that leaves it running. On an
// engine that cannot restore a container in its own network namespace, a
// save that fails after the checkpoint could not start the container again
// from it: there the container is paused and checkpointed left running, as
// with --leave-running, and killed only once the checkpoint is committed.
// A failed or interrupted save then only unpauses it.
func (s *saver) pause(ctx context.Context) error {
	s.killAfter = s.hot() && !s.m.LeftRunning && engine.RestoreBrokenIn(s.eng.System().ServerVersion) != nil
	if !(s.m.LeftRunning || s.killAfter) || s.c.State.Paused {
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := s.eng.ContainerPause(ctx, s.c.ID)
		if err == nil {
			break
		}
		// The cgroup freezer cannot freeze a thread in uninterruptible
		// sleep either: wait for the disk as for a checkpoint.
		if attempt == checkpointAttempts || ctx.Err() != nil || len(criu.Blocked(s.c.State.Pid)) == 0 {
			return fmt.Errorf("cannot pause %s: %w", s.name, err)
		}
		s.rep.Report(progress.Event{Container: s.name, Phase: "pause", Warning: true,
			Message: fmt.Sprintf("could not pause: a thread is waiting for the disk; trying again once it is done (attempt %d of %d)",
				attempt+1, checkpointAttempts)})
		criu.WaitUnblocked(ctx, s.c.State.Pid, diskWait)
	}
	s.paused = true
	return nil
}

func (s *saver) unpause(ctx context.Context) error {
	if !s.paused {
		return nil
	}
	if err := s.eng.ContainerUnpause(ctx, s.c.ID); err != nil {
		return fmt.Errorf("%s stays paused: %w", s.name, err)
	}
	s.paused = false
	if s.killAfter {
		s.recovery = "kept running: it was only paused for the save (memory kept)"
	}
	return nil
}

// checkpoint has the engine write the CRIU images straight into the
// pending checkpoint (a hot save), or stops the container (a cold one).
// Neither call is cancelled midway: the engine would go on regardless.
func (s *saver) checkpoint(cancelled context.Context) error {
	ctx := context.WithoutCancel(cancelled)
	exit := !s.m.LeftRunning && !s.killAfter
	began := time.Now()
	if !s.hot() {
		s.rep.Report(progress.Event{Container: s.name, Phase: "stop"})
		s.stopped = true
		if err := s.eng.ContainerStop(ctx, s.c.ID, container.StopOptions{}); err != nil {
			return fmt.Errorf("cannot stop %s: %w", s.name, err)
		}
		s.done("stop", began, 0)
		return nil
	}
	s.rep.Report(progress.Event{Container: s.name, Phase: "checkpoint"})
	s.stopped = exit
	opts := append(slices.Clip(s.runcOpts), criu.FreezeTimeoutOption())
	for attempt := 1; ; attempt++ {
		s.early = s.captureWhenFrozen(cancelled, began)
		s.follow = s.pending.Follow(format.ImagesDir)
		err := s.host.WithOptions(opts, func() error {
			return s.eng.CheckpointCreate(ctx, s.c.ID, checkpoint.CreateOptions{
				CheckpointID:  format.ImagesDir,
				CheckpointDir: s.pending.Dir(),
				Exit:          exit,
			})
		})
		if err == nil {
			s.checkpointed = true
			s.early.checkpointed()
			break
		}
		// The processes may run again: what was captured meanwhile is not
		// theirs at the checkpoint.
		s.follow.Stop()
		s.follow = nil
		if derr := s.discardEarly(); derr != nil {
			return errors.Join(fmt.Errorf("the engine could not checkpoint %s: %w", s.name, err), derr)
		}
		err = criu.Explain(err, nil)
		if attempt == checkpointAttempts || !criu.Transient(err) || cancelled.Err() != nil || !s.stillRunning(ctx) {
			return fmt.Errorf("the engine could not checkpoint %s: %w", s.name, err)
		}
		// CRIU could not freeze a thread busy in the kernel in time and let
		// the container go on: let it run until its threads are out of the
		// disk wait, then try again from a clean directory.
		s.rep.Report(progress.Event{Container: s.name, Phase: "checkpoint", Warning: true,
			Message: fmt.Sprintf("CRIU could not freeze a thread waiting for the disk within %v; trying again once it is done (attempt %d of %d)",
				criu.FreezeTimeout, attempt+1, checkpointAttempts)})
		if err := s.settle(cancelled); err != nil {
			return err
		}
		if err := os.RemoveAll(s.pending.Path(format.ImagesDir)); err != nil {
			return err
		}
	}
	s.done("checkpoint", began, 0)
	return nil
}

// checkpointAttempts is how many times a checkpoint that CRIU could not
// freeze in time (criu.Transient), or a pause the freezer could not
// finish, is tried; diskWait is how long a container may then run until
// no thread of it waits for the disk, before the next attempt.
const (
	checkpointAttempts = 3
	diskWait           = 10 * time.Second
)

// settle lets a container whose checkpoint CRIU could not freeze run
// until no thread of it waits for the disk (at most diskWait), unpausing it
// when this save paused it and pausing it again after.
func (s *saver) settle(ctx context.Context) error {
	if s.paused {
		if err := s.eng.ContainerUnpause(context.WithoutCancel(ctx), s.c.ID); err != nil {
			return fmt.Errorf("%s stays paused: %w", s.name, err)
		}
		s.paused = false
	}
	criu.WaitUnblocked(ctx, s.c.State.Pid, diskWait)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return s.pause(ctx)
}

// stillRunning reports whether the container runs, unpaused or paused by
// this save, after a checkpoint that failed.
func (s *saver) stillRunning(ctx context.Context) bool {
	c, err := s.eng.Lookup(ctx, s.c.ID)
	return err == nil && c != nil && c.State.Running
}

// recover starts a container that a failed save had stopped: from the
// checkpoint just taken when possible, normally otherwise. A container the
// save did not stop, or that runs (the checkpoint call failed before it
// stopped), is left alone.
func (s *saver) recover(ctx context.Context) error {
	s.early.stop()
	s.follow.Stop()
	if !s.stopped || s.ck != nil {
		return nil
	}
	if s.checkpointed && s.hot() {
		// The engine may not have seen the checkpoint stop it yet.
		s.eng.WaitStopped(ctx, s.c.ID)
	}
	if c, err := s.eng.Lookup(ctx, s.c.ID); err == nil && c != nil && c.State.Running {
		return nil
	}
	if s.hot() {
		if _, err := s.eng.StartFromCheckpoint(ctx, s.c.ID, s.pending.Path(format.ImagesDir)); err == nil {
			s.recovery = "started again from its checkpoint (memory kept)"
			return nil
		}
	}
	if err := s.eng.ContainerStart(ctx, s.c.ID, container.StartOptions{}); err != nil {
		s.recovery = fmt.Sprintf("could NOT be started again: %v (start it with docker start %s)", err, s.name)
		return fmt.Errorf("cannot start %s again: %w", s.name, err)
	}
	if s.hot() {
		s.recovery = "started again normally (memory lost: it could not be restored from the checkpoint)"
	} else {
		s.recovery = "started again (it had been stopped for a cold save; its data is untouched)"
	}
	return nil
}

// capture takes the CRIU images into the checkpoint's file list, and
// archives the volumes and the writable layer, all at once: the container's
// processes can no longer change any of them (the checkpoint stopped them,
// or they stay frozen until the commit). Each phase's timing is its own;
// they overlap.
func (s *saver) capture(ctx context.Context) error {
	fns := []func(context.Context) error{s.adoptImages, s.waitStopped}
	if s.early.started() {
		fns = append(fns, s.early.wait)
	} else {
		fns = append(fns, s.captureMounts, s.captureLayer)
	}
	return steps.Together(ctx, fns...)
}

// waitStopped waits, after a checkpoint that stopped the container, until
// the engine sees it stopped (it learns it in its own time: 1 s for 2 GiB
// of memory here), while the images are taken in.
func (s *saver) waitStopped(ctx context.Context) error {
	if !s.hot() || !s.stopped {
		return nil
	}
	return s.eng.WaitStopped(ctx, s.c.ID)
}

// early is a capture of the volumes and the writable layer begun during an
// attempt at the checkpoint, once the container's processes were frozen.
type early struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	ended  bool // the attempt returned: no capture begins after that
	began  bool
	err    error
	exited bool // the capture ended its goroutine (runtime.Goexit, see steps.Together)
}

// freezePoll is how often captureWhenFrozen looks at the container's
// freezer.
const freezePoll = 2 * time.Millisecond

// captureWhenFrozen starts the capture of the volumes and the writable
// layer as soon as the container's processes are frozen, while the
// checkpoint (begun at began) goes on: at once when this save paused it,
// else once CRIU's freeze shows in its cgroup (criu.FreezeProbe; when the
// cgroup cannot be found, the capture step does it all after the
// checkpoint, as before). A save of 64 MiB of memory and a 256 MiB volume
// spent 0.4 s of its 1.1 s in the checkpoint after the freeze.
func (s *saver) captureWhenFrozen(ctx context.Context, began time.Time) *early {
	ctx, cancel := context.WithCancel(ctx)
	e := &early{cancel: cancel, done: make(chan struct{})}
	var probe func() bool
	if s.paused {
		// Frozen already: the capture begins now.
		e.began = true
	} else if probe = criu.FreezeProbe(s.c.State.Pid); probe == nil {
		e.ended = true
		close(e.done)
		return e
	}
	go func() {
		returned := false
		defer func() {
			e.mu.Lock()
			e.exited = !returned
			e.mu.Unlock()
			close(e.done)
		}()
		if probe != nil && !e.whenFrozen(ctx, probe) {
			returned = true
			return
		}
		s.timing(format.PhaseFrozen, time.Since(began))
		e.err = steps.Together(ctx, s.captureMounts, s.captureLayer)
		returned = true
	}()
	return e
}

// whenFrozen waits until probe says the processes are frozen, and reports
// whether the capture is to begin: not when the attempt ended first.
func (e *early) whenFrozen(ctx context.Context, probe func() bool) bool {
	tick := time.NewTicker(freezePoll)
	defer tick.Stop()
	for !probe() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.began = !e.ended
	return e.began
}

// checkpointed says the attempt succeeded: a capture not begun yet is the
// capture step's.
func (e *early) checkpointed() {
	e.mu.Lock()
	e.ended = true
	began := e.began
	e.mu.Unlock()
	if !began {
		e.stop()
	}
}

// started reports whether the capture began during the checkpoint.
func (e *early) started() bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.began
}

// stop ends the capture and waits for it. A capture that ended its
// goroutine ends the caller's too.
func (e *early) stop() {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.ended = true
	e.mu.Unlock()
	e.cancel()
	<-e.done
	if e.exited {
		runtime.Goexit()
	}
}

// wait waits for the capture, as a phase of the capture step.
func (e *early) wait(ctx context.Context) error {
	select {
	case <-e.done:
	case <-ctx.Done():
		e.stop()
		return ctx.Err()
	}
	if e.exited {
		runtime.Goexit()
	}
	return e.err
}

// discardEarly stops a capture begun during an attempt at the checkpoint
// that failed, and forgets what it captured: the next attempt captures
// again.
func (s *saver) discardEarly() error {
	e := s.early
	if e == nil {
		return nil
	}
	e.stop()
	s.early = nil
	if !e.began {
		return nil
	}
	rels := []string{format.LayerFile}
	for _, mnt := range s.c.Mounts {
		if mnt.Type == "volume" {
			rels = append(rels, volumeArchive(mnt.Name))
		}
	}
	s.mu.Lock()
	s.m.Binds, s.m.Volumes, s.m.Skipped, s.m.Layer = []format.Bind{}, []format.Volume{}, nil, format.Layer{}
	s.m.Timings = slices.DeleteFunc(s.m.Timings, func(t format.Timing) bool {
		return t.Phase == format.PhaseFrozen || t.Phase == "layer" || strings.HasPrefix(t.Phase, "volume ")
	})
	s.mu.Unlock()
	return s.pending.Forget(rels...)
}

// adoptImages takes the images the engine wrote into the checkpoint's file
// list, hashing them.
func (s *saver) adoptImages(ctx context.Context) error {
	if !s.hot() {
		return nil
	}
	began := time.Now()
	files, err := s.pending.Adopt(format.ImagesDir, s.follow)
	if err != nil {
		return err
	}
	for _, f := range files {
		if base := f.Path[strings.LastIndexByte(f.Path, '/')+1:]; strings.HasPrefix(base, "pages-") {
			s.m.MemoryBytes += f.Size
		}
	}
	s.done("images", began, s.m.MemoryBytes)
	return nil
}

// captureLayer archives the writable layer.
func (s *saver) captureLayer(ctx context.Context) error {
	began := time.Now()
	stats, err := s.writeArchive(ctx, format.LayerFile, s.upper, archive.Overlay)
	if err != nil {
		return fmt.Errorf("writable layer: %w", err)
	}
	s.m.Layer = format.Layer{Archive: format.LayerFile, Entries: stats.Entries, Bytes: stats.Bytes, Deleted: stats.Deleted}
	s.done("layer", began, stats.Bytes)
	return nil
}

// commit makes the checkpoint whole and durable under its final name.
func (s *saver) commit(ctx context.Context) error {
	s.m.Timings = append(s.m.Timings, format.Timing{Phase: format.PhaseTotal, Millis: time.Since(s.start).Milliseconds()})
	raw, err := s.pending.Manifest(s.m)
	if err != nil {
		return err
	}
	s.ck, err = s.pending.Commit(raw)
	return err
}

// finish lets the container go on after a save that leaves it running, and
// kills one that was only paused so that it could be (killAfter): frozen,
// nothing runs after the checkpoint. The checkpoint is complete either way.
func (s *saver) finish(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	if s.killAfter {
		// Every process gets SIGKILL while still frozen. The engine
		// signals only the container's first process and thaws the
		// cgroup: the others ran on until the kernel killed them after
		// it (criu.KillFrozen).
		criu.KillFrozen(s.c.State.Pid, s.c.ID)
		if err := s.eng.ContainerKill(ctx, s.c.ID, "KILL"); err != nil {
			return fmt.Errorf("the checkpoint is complete, but %s could not be stopped (it runs on): %w", s.name, err)
		}
		s.paused = false
		return nil
	}
	if s.paused {
		if err := s.eng.ContainerUnpause(ctx, s.c.ID); err != nil {
			return fmt.Errorf("the checkpoint is complete, but %s could not be unpaused: %w", s.name, err)
		}
		s.paused = false
	}
	return nil
}

// manifest starts the manifest of this save.
func (s *saver) manifest() *format.Manifest {
	hostname, _ := os.Hostname()
	facts := s.host.Here()
	info := s.eng.System()
	rp := s.c.HostConfig.RestartPolicy
	return &format.Manifest{
		Created:       s.start.UTC(),
		Mode:          s.opts.Mode,
		Container:     format.Container{Name: s.name, ID: s.c.ID, Image: s.c.Config.Image, ImageID: s.c.Image, Project: s.c.Config.Labels[policy.LabelProject]},
		LeftRunning:   s.opts.LeaveRunning && s.hot(),
		RestartPolicy: format.RestartPolicy{Name: string(rp.Name), MaximumRetryCount: rp.MaximumRetryCount},
		Host: format.Host{
			Hostname:      hostname,
			CPUFlags:      facts.CPUFlags,
			Kernel:        facts.Kernel,
			Arch:          facts.Arch,
			EngineVersion: info.ServerVersion,
			APIVersion:    s.eng.ClientVersion(),
			CRIUVersion:   s.criuVersion,
			StorageDriver: info.Driver,
			CgroupVersion: info.CgroupVersion,
		},
		Binds:   []format.Bind{},
		Volumes: []format.Volume{},
	}
}

// netns decides how the container's network namespace is saved, and returns
// the CRIU options that takes.
//
// A container that shares the namespace of its network holder (a resume on
// an engine that cannot restore, by ckpt before its runtime,
// docs/engines.md) has it saved as external by runc itself, and resumes
// inside the holder again. Every other container is saved as the engine
// expects, its namespace left to be made anew at restore: on an engine that
// cannot restore by itself (Docker 26.0.0, 28 and later) ckpt's runtime
// restores it (internal/shim), made ready here. Only where that runtime
// cannot be had, or the container needs a runtime of its own, is the
// namespace marked external ("external net[<inode>]:extRootNetNS"), so that
// its processes can resume inside a holder.
func (s *saver) netns(ctx context.Context) ([]string, error) {
	mode := s.c.HostConfig.NetworkMode
	if mode.IsContainer() {
		h, err := s.eng.Lookup(ctx, mode.ConnectedContainer())
		if err != nil {
			return nil, err
		}
		if h != nil && h.Config != nil && h.Config.Labels[engine.HolderLabel] != "" {
			s.holder = h
			s.m.Container.NetNS = format.NetNSHolder
		}
		return nil, nil
	}
	version := s.eng.System().ServerVersion
	if mode.IsHost() || engine.RestoreBrokenIn(version) == nil {
		return nil, nil
	}
	rtErr := fmt.Errorf("it runs on runtime %s", s.c.HostConfig.Runtime)
	switch s.c.HostConfig.Runtime {
	case "", "runc", "io.containerd.runc.v2", shim.Runtime:
		_, rtErr = s.host.RestoreRuntime()
	}
	if rtErr == nil {
		return nil, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", s.c.State.Pid), &st); err != nil {
		return nil, fmt.Errorf("cannot find the network namespace of %s: %w", s.name, err)
	}
	s.m.Container.NetNS = format.NetNSHolder
	s.rep.Report(progress.Event{Container: s.name, Phase: "check",
		Message: "Docker " + version + " cannot restore a container in its own network namespace, and ckpt's runtime cannot restore this one (" + rtErr.Error() + "): saving it to resume inside a network holder (" + hint.Doc("engines.md") + ")"})
	return []string{fmt.Sprintf("external net[%d]:extRootNetNS", st.Ino)}, nil
}

// writeConfig records the container's and its user-defined networks'
// configuration (and its network holder's, when it shares one's namespace),
// for resume to recreate them.
func (s *saver) writeConfig(ctx context.Context) error {
	if err := s.pending.WriteJSON(format.ContainerFile, s.c); err != nil {
		return err
	}
	// The networks are the holder's when the container shares its namespace.
	netSrc := s.c
	if s.holder != nil {
		if err := s.pending.WriteJSON(format.HolderFile, s.holder); err != nil {
			return err
		}
		netSrc = s.holder
	}
	nets := []network.Inspect{}
	if netSrc.NetworkSettings != nil {
		for name := range netSrc.NetworkSettings.Networks {
			if !container.NetworkMode(name).IsUserDefined() {
				continue
			}
			n, err := s.eng.NetworkInspect(ctx, name, network.InspectOptions{})
			if err != nil {
				return fmt.Errorf("network %s: %w", name, err)
			}
			n.Containers = nil
			nets = append(nets, n)
		}
	}
	return s.pending.WriteJSON(format.NetworksFile, nets)
}

// captureMounts archives every named volume of the local driver and records
// bind mounts.
func (s *saver) captureMounts(ctx context.Context) error {
	named := map[string]bool{}
	for _, b := range s.c.HostConfig.Binds {
		named[strings.SplitN(b, ":", 2)[0]] = true
	}
	for _, m := range s.c.HostConfig.Mounts {
		named[m.Source] = true
	}
	for _, mnt := range s.c.Mounts {
		switch mnt.Type {
		case "bind":
			s.m.Binds = append(s.m.Binds, format.Bind{Source: mnt.Source, Destination: mnt.Destination, ReadWrite: mnt.RW})
		case "volume":
			if !preflight.Captured(mnt) {
				s.m.Skipped = append(s.m.Skipped, fmt.Sprintf("volume %s at %s: driver %s, contents not captured", mnt.Name, mnt.Destination, mnt.Driver))
				continue
			}
			vol, err := s.eng.VolumeInspect(ctx, mnt.Name)
			if err != nil {
				return fmt.Errorf("volume %s: %w", mnt.Name, err)
			}
			rel := volumeArchive(mnt.Name)
			began := time.Now()
			stats, err := s.writeArchive(ctx, rel, mnt.Source, archive.Plain)
			if err != nil {
				return fmt.Errorf("volume %s: %w", mnt.Name, err)
			}
			s.m.Volumes = append(s.m.Volumes, format.Volume{
				Name: mnt.Name, Driver: vol.Driver, DriverOpts: vol.Options, Labels: vol.Labels,
				Destination: mnt.Destination, Anonymous: !named[mnt.Name],
				Archive: rel, Bytes: stats.Bytes, Entries: stats.Entries,
			})
			s.done("volume "+mnt.Name, began, stats.Bytes)
		case "tmpfs":
			// CRIU saves the contents of tmpfs mounts with the process images.
		default:
			s.m.Skipped = append(s.m.Skipped, fmt.Sprintf("%s mount at %s: not captured", mnt.Type, mnt.Destination))
		}
	}
	return nil
}

// volumeArchive is the checkpoint file of the archive of volume name.
func volumeArchive(name string) string { return format.VolumesDir + "/" + name + ".tar" }

// writeArchive streams the tree at root into the checkpoint file rel, in
// the store's chunks.
func (s *saver) writeArchive(ctx context.Context, rel, root string, kind archive.Kind) (archive.Stats, error) {
	f, err := s.pending.CreateChunked(rel)
	if err != nil {
		return archive.Stats{}, err
	}
	// No buffer between: the file reads the archived files' data itself
	// (store.File.ReadFrom), and buffers the headers' few bytes.
	stats, err := archive.Write(ctx, f, root, kind)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return stats, err
}

// done records the end of a phase begun at began in the manifest and
// reports it.
func (s *saver) done(phase string, began time.Time, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := time.Since(began)
	s.m.Timings = append(s.m.Timings, format.Timing{Phase: phase, Millis: d.Milliseconds()})
	s.rep.Report(progress.Event{Container: s.name, Phase: phase, Elapsed: d, Bytes: bytes})
}

// timing records in the manifest that phase took d, without a report.
func (s *saver) timing(phase string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.Timings = append(s.m.Timings, format.Timing{Phase: phase, Millis: d.Milliseconds()})
}

// diskFull gives a full-disk error a message and a hint.
func diskFull(err error, root string) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("the store's file system (%s) is full, and the partial checkpoint was removed: %w", root, err)
	}
	return err
}
