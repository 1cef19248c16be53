// Package checkpoint saves Docker containers whole: process state through
// the engine's checkpoint API (CRIU underneath), named volumes, the writable
// layer and the container's configuration, as one verified unit in the
// store.
package checkpoint

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/archive"
	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/progress"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// Options say what to save and how.
type Options struct {
	// Store receives the checkpoints.
	Store *store.Store
	// Engine runs the containers.
	Engine *engine.Engine
	// Containers names the containers to save, by name or id.
	Containers []string
	// All saves every running container; Containers must then be empty.
	All bool
	// Mode is format.ModeHot (memory and data; the default when empty) or
	// format.ModeCold (data only: the container is stopped gracefully and
	// starts fresh on its data when resumed).
	Mode string
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
	// Err is why the save failed.
	Err error
	// Recovery says how the container was brought back after a failed save
	// that had already stopped it; empty when it was not stopped.
	Recovery string
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
	var results []Result
	var errs []error
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		r := SaveContainer(ctx, opts, ref)
		results = append(results, r)
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Container, r.Err))
		}
	}
	if len(errs) == 1 {
		return results, errs[0]
	}
	return results, errors.Join(errs...)
}

// saver holds the state of one save.
type saver struct {
	opts    Options
	eng     *engine.Engine
	rep     progress.Reporter
	c       *container.InspectResponse
	name    string
	pending *store.Pending
	m       *format.Manifest
	phase   time.Time
	// holder is the network holder whose namespace the container shares,
	// if it does.
	holder *container.InspectResponse
}

// SaveContainer saves one container (a name or an id); opts.Containers and
// opts.All are ignored.
func SaveContainer(ctx context.Context, opts Options, ref string) (res Result) {
	res.Container = ref
	start := time.Now()
	s := &saver{opts: opts, eng: opts.Engine, rep: progress.Or(opts.Progress), phase: start}
	c, err := s.eng.Inspect(ctx, ref)
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
	// Look again under the lock: another save may have just stopped it.
	if s.c, err = s.eng.Inspect(ctx, c.ID); err != nil {
		res.Err = err
		return res
	}
	if !s.c.State.Running {
		res.Err = hint.New(fmt.Sprintf("container %s is not running (%s)", s.name, s.c.State.Status),
			"ckpt save checkpoints running containers; start it first")
		return res
	}
	if err := opts.Store.RemoveIncomplete(s.name); err != nil {
		res.Err = err
		return res
	}
	ck, recovery, err := s.run(ctx, start)
	res.Checkpoint, res.Recovery, res.Err = ck, recovery, diskFull(err, opts.Store.Root)
	return res
}

// run does the save under the container's lock. Whatever fails, the
// container ends up as it was: running (restarted from the new checkpoint if
// the save had already stopped it), unpaused, with its restart policy.
func (s *saver) run(ctx context.Context, start time.Time) (ck *store.Checkpoint, recovery string, err error) {
	// Cleanup must run even when ctx was cancelled by a signal.
	cleanupCtx := context.WithoutCancel(ctx)
	var criuVersion int
	if s.hot() {
		if criuVersion, err = criu.Check(); err != nil {
			return nil, "", err
		}
		if _, err := criu.EnsureRuncConf(criu.RuncConf); err != nil {
			return nil, "", hint.Wrap(err, "run ckpt as root: it keeps "+criu.RuncOptions()+" in "+criu.RuncConf)
		}
	}
	upper, err := engine.UpperDir(s.c)
	if err != nil {
		return nil, "", err
	}
	if err := s.checkSpace(ctx, upper); err != nil {
		return nil, "", err
	}
	name := s.opts.Name
	if name == "" {
		name = s.opts.Store.NewName(s.name, start)
	}
	if s.pending, err = s.opts.Store.Begin(s.name, name); err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			s.pending.Abort()
		}
	}()
	s.m = s.manifest(start, criuVersion)
	var runcOpts []string
	if s.hot() {
		if runcOpts, err = s.netns(ctx); err != nil {
			return nil, "", err
		}
	}
	if err := s.writeConfig(ctx); err != nil {
		return nil, "", err
	}

	// The engine restarts a checkpointed container with restart policy
	// always or unless-stopped at once, and again when it starts: hold the
	// policy off until resume puts it back.
	if !s.m.LeftRunning && s.m.RestartPolicy.Restarts() {
		if err := s.eng.SetRestartPolicy(ctx, s.c.ID, format.RestartPolicy{Name: string(container.RestartPolicyDisabled)}); err != nil {
			return nil, "", fmt.Errorf("cannot hold the restart policy off: %w", err)
		}
		defer func() {
			if err != nil {
				s.eng.SetRestartPolicy(cleanupCtx, s.c.ID, s.m.RestartPolicy)
			}
		}()
	}
	// On an engine that cannot restore a container in its own network
	// namespace, a save that fails after the checkpoint could not start the
	// container again from it: there the container is paused and
	// checkpointed left running, as with --leave-running, and killed only
	// once the checkpoint is committed. A failed or interrupted save then
	// only unpauses it.
	killAfter := s.hot() && !s.m.LeftRunning && s.eng.RestoreBroken() != nil
	pausedHere := false
	if (s.m.LeftRunning || killAfter) && !s.c.State.Paused {
		if err := s.eng.ContainerPause(ctx, s.c.ID); err != nil {
			return nil, "", fmt.Errorf("cannot pause %s: %w", s.name, err)
		}
		pausedHere = true
	}
	defer func() {
		if killAfter && err == nil {
			// Killed while frozen: nothing runs after the checkpoint.
			kerr := s.eng.ContainerKill(cleanupCtx, s.c.ID, "KILL")
			if kerr == nil {
				return
			}
			err = fmt.Errorf("the checkpoint is complete, but %s could not be stopped (it runs on): %w", s.name, kerr)
		}
		if !pausedHere {
			return
		}
		if uerr := s.eng.ContainerUnpause(cleanupCtx, s.c.ID); uerr != nil && err == nil {
			err = fmt.Errorf("the checkpoint is complete, but %s could not be unpaused: %w", s.name, uerr)
		} else if killAfter && recovery == "" {
			recovery = "kept running: it was only paused for the save (memory kept)"
		}
	}()

	if s.hot() {
		// The engine writes the images straight into the pending checkpoint.
		// The call is not cancelled midway: the engine would go on regardless.
		s.rep.Report(progress.Event{Container: s.name, Phase: "checkpoint"})
		create := func() error {
			return s.eng.CheckpointCreate(cleanupCtx, s.c.ID, checkpoint.CreateOptions{
				CheckpointID:  format.ImagesDir,
				CheckpointDir: s.pending.Dir(),
				Exit:          !s.m.LeftRunning && !killAfter,
			})
		}
		var cerr error
		if len(runcOpts) > 0 {
			cerr = criu.WithRuncOptions(criu.RuncConf, runcOpts, create)
		} else {
			cerr = create()
		}
		if cerr != nil {
			return nil, "", fmt.Errorf("the engine could not checkpoint %s: %w", s.name, criu.Explain(cerr, nil))
		}
	} else {
		s.rep.Report(progress.Event{Container: s.name, Phase: "stop"})
		if serr := s.eng.ContainerStop(cleanupCtx, s.c.ID, container.StopOptions{}); serr != nil {
			return nil, "", fmt.Errorf("cannot stop %s: %w", s.name, serr)
		}
	}
	if !s.m.LeftRunning && !killAfter {
		defer func() {
			if err != nil {
				recovery = s.recover(cleanupCtx)
			}
		}()
	}
	if s.hot() {
		s.done("checkpoint", 0)
		files, err := s.pending.Adopt(format.ImagesDir)
		if err != nil {
			return nil, "", err
		}
		for _, f := range files {
			if base := f.Path[strings.LastIndexByte(f.Path, '/')+1:]; strings.HasPrefix(base, "pages-") {
				s.m.MemoryBytes += f.Size
			}
		}
		s.done("images", s.m.MemoryBytes)
	} else {
		s.done("stop", 0)
	}

	if err := s.captureMounts(ctx); err != nil {
		return nil, "", err
	}
	stats, err := s.writeArchive(ctx, format.LayerFile, upper, archive.Overlay)
	if err != nil {
		return nil, "", fmt.Errorf("writable layer: %w", err)
	}
	s.m.Layer = format.Layer{Archive: format.LayerFile, Entries: stats.Entries, Bytes: stats.Bytes, Deleted: stats.Deleted}
	s.done("layer", stats.Bytes)

	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	s.m.Timings = append(s.m.Timings, format.Timing{Phase: "total", Millis: time.Since(start).Milliseconds()})
	raw, err := s.pending.Manifest(s.m)
	if err != nil {
		return nil, "", err
	}
	if ck, err = s.pending.Commit(raw); err != nil {
		return nil, "", err
	}
	return ck, "", nil
}

// hot reports whether this save keeps memory.
func (s *saver) hot() bool { return s.opts.Mode != format.ModeCold }

// recover starts a container that a failed save had stopped: from the
// checkpoint just taken when possible, normally otherwise.
func (s *saver) recover(ctx context.Context) string {
	if !s.hot() {
		if err := s.eng.ContainerStart(ctx, s.c.ID, container.StartOptions{}); err != nil {
			return fmt.Sprintf("could NOT be started again: %v (start it with docker start %s)", err, s.name)
		}
		return "started again (it had been stopped for a cold save; its data is untouched)"
	}
	if _, err := s.eng.StartFromCheckpoint(ctx, s.c.ID, s.pending.Path(format.ImagesDir)); err == nil {
		return "started again from its checkpoint (memory kept)"
	}
	if err := s.eng.ContainerStart(ctx, s.c.ID, container.StartOptions{}); err != nil {
		return fmt.Sprintf("could NOT be started again: %v (start it with docker start %s)", err, s.name)
	}
	return "started again normally (memory lost: it could not be restored from the checkpoint)"
}

func (s *saver) manifest(start time.Time, criuVersion int) *format.Manifest {
	host, _ := os.Hostname()
	mode := format.ModeHot
	if !s.hot() {
		mode = format.ModeCold
	}
	rp := s.c.HostConfig.RestartPolicy
	return &format.Manifest{
		Created:       start.UTC(),
		Mode:          mode,
		Container:     format.Container{Name: s.name, ID: s.c.ID, Image: s.c.Config.Image, ImageID: s.c.Image, Project: s.c.Config.Labels[composeProject]},
		LeftRunning:   s.opts.LeaveRunning && s.hot(),
		RestartPolicy: format.RestartPolicy{Name: string(rp.Name), MaximumRetryCount: rp.MaximumRetryCount},
		Host: format.Host{
			Hostname:      host,
			CPUFlags:      criu.CPUFlags(),
			Kernel:        criu.Kernel(),
			Arch:          runtime.GOARCH,
			EngineVersion: s.eng.Info.ServerVersion,
			APIVersion:    s.eng.ClientVersion(),
			CRIUVersion:   criuVersion,
			StorageDriver: s.eng.Info.Driver,
			CgroupVersion: s.eng.Info.CgroupVersion,
		},
		Binds:   []format.Bind{},
		Volumes: []format.Volume{},
	}
}

// netns decides how the container's network namespace is saved, and returns
// the CRIU options that takes.
//
// A container that shares the namespace of its network holder (a resume on
// an engine that cannot restore, docs/engines.md) has it saved as external
// by runc itself, and resumes inside the holder again. On such an engine
// (Docker 26.0.0, 28 and later) a container with a namespace of its own has
// it marked external too ("external net[<inode>]:extRootNetNS"), so that its
// processes can resume inside a holder: the only way back with memory there.
// Elsewhere CRIU saves the namespace with the processes, as the engine
// expects.
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
	if mode.IsHost() || s.eng.RestoreBroken() == nil {
		return nil, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", s.c.State.Pid), &st); err != nil {
		return nil, fmt.Errorf("cannot find the network namespace of %s: %w", s.name, err)
	}
	s.m.Container.NetNS = format.NetNSHolder
	s.rep.Report(progress.Event{Container: s.name, Phase: "check",
		Message: "Docker " + s.eng.Info.ServerVersion + " cannot restore a container in its own network namespace: saving it to resume inside a network holder (docs/engines.md)"})
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
			if mnt.Driver != "local" {
				s.m.Skipped = append(s.m.Skipped, fmt.Sprintf("volume %s at %s: driver %s, contents not captured", mnt.Name, mnt.Destination, mnt.Driver))
				continue
			}
			vol, err := s.eng.VolumeInspect(ctx, mnt.Name)
			if err != nil {
				return fmt.Errorf("volume %s: %w", mnt.Name, err)
			}
			rel := format.VolumesDir + "/" + mnt.Name + ".tar"
			stats, err := s.writeArchive(ctx, rel, mnt.Source, archive.Plain)
			if err != nil {
				return fmt.Errorf("volume %s: %w", mnt.Name, err)
			}
			s.m.Volumes = append(s.m.Volumes, format.Volume{
				Name: mnt.Name, Driver: vol.Driver, DriverOpts: vol.Options, Labels: vol.Labels,
				Destination: mnt.Destination, Anonymous: !named[mnt.Name],
				Archive: rel, Bytes: stats.Bytes, Entries: stats.Entries,
			})
			s.done("volume "+mnt.Name, stats.Bytes)
		case "tmpfs":
			// CRIU saves the contents of tmpfs mounts with the process images.
		default:
			s.m.Skipped = append(s.m.Skipped, fmt.Sprintf("%s mount at %s: not captured", mnt.Type, mnt.Destination))
		}
	}
	return nil
}

// writeArchive streams the tree at root into the checkpoint file rel.
func (s *saver) writeArchive(ctx context.Context, rel, root string, kind archive.Kind) (archive.Stats, error) {
	f, err := s.pending.Create(rel)
	if err != nil {
		return archive.Stats{}, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	stats, err := archive.Write(ctx, w, root, kind)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return stats, err
}

// done records the end of a phase in the manifest and reports it.
func (s *saver) done(phase string, bytes int64) {
	now := time.Now()
	d := now.Sub(s.phase)
	s.phase = now
	s.m.Timings = append(s.m.Timings, format.Timing{Phase: phase, Millis: d.Milliseconds()})
	s.rep.Report(progress.Event{Container: s.name, Phase: phase, Elapsed: d, Bytes: bytes})
}

// checkSpace refuses a save that cannot fit in the store, before anything
// is stopped: the estimate is the memory the container uses plus its volumes
// and writable layer.
func (s *saver) checkSpace(ctx context.Context, upper string) error {
	need := s.eng.DumpMemory(ctx, s.c.ID)
	roots := []string{upper}
	for _, mnt := range s.c.Mounts {
		if mnt.Type == "volume" && mnt.Driver == "local" {
			roots = append(roots, mnt.Source)
		}
	}
	for _, r := range roots {
		n, err := archive.Size(r)
		if err != nil {
			return err
		}
		need += n
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(s.opts.Store.Root, &fs); err != nil {
		return err
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	if !Fits(need, free) {
		return hint.New(fmt.Sprintf("not enough space in %s to save %s: about %s needed, %s free", s.opts.Store.Root, s.name, units.Bytes(need), units.Bytes(free)),
			"free space there (ckpt rm removes old checkpoints) or use another --store; nothing was changed")
	}
	return nil
}

// Fits reports whether a save estimated to need need bytes fits in free
// bytes, with a margin of 5% and 16 MiB for what the estimate misses.
func Fits(need, free int64) bool { return need+need/20+16<<20 <= free }

// diskFull gives a full-disk error a message and a hint.
func diskFull(err error, root string) error {
	if errors.Is(err, syscall.ENOSPC) {
		return hint.Wrap(fmt.Errorf("the store's file system is full: %w", err),
			"free space in "+root+" (ckpt rm removes old checkpoints) or use another --store; the partial checkpoint was removed")
	}
	return err
}

// composeProject is the label compose puts on a project's containers.
const composeProject = "com.docker.compose.project"
