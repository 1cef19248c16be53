// Package restore brings saved containers back: it verifies a checkpoint,
// recreates what is missing (networks, volumes and their contents, the
// container and its writable layer) and starts the container from its CRIU
// images, or, when memory cannot be restored, normally on the restored data.
package restore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/archive"
	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/fault"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/progress"
	"github.com/ckpt-dev/ckpt/internal/shim"
	"github.com/ckpt-dev/ckpt/internal/steps"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// Engine is what a resume needs of the container engine: what
// checkpoint.Recover needs, and more. internal/engine's Docker adapter
// implements it, and internal/engine/fake for tests.
type Engine interface {
	checkpoint.RecoverEngine
	// System is the engine's system information.
	System() system.Info
	// Create creates container name and returns its id.
	Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (string, error)
	NetworkConnect(ctx context.Context, net, id string, ep *network.EndpointSettings) error
	NetworkInspect(ctx context.Context, name string, opts network.InspectOptions) (network.Inspect, error)
	NetworkCreate(ctx context.Context, name string, opts network.CreateOptions) (network.CreateResponse, error)
	VolumeInspect(ctx context.Context, name string) (volume.Volume, error)
	VolumeCreate(ctx context.Context, opts volume.CreateOptions) (volume.Volume, error)
	// ImageID returns the id of the image ref names.
	ImageID(ctx context.Context, ref string) (string, error)
	// HolderImage returns the image network holders run.
	HolderImage(ctx context.Context) (string, error)
}

// Options say what to resume and how.
type Options struct {
	// Store holds the checkpoints.
	Store *store.Store
	// Engine runs the containers.
	Engine Engine
	// Host is the machine's CRIU; the zero value is this host.
	Host preflight.Host
	// Containers names the containers to resume.
	Containers []string
	// All resumes every container that has a checkpoint and is not running.
	All bool
	// From names the checkpoint to resume; empty means the newest complete one.
	From string
	// Trust resumes a checkpoint that is not trusted (store.Trust: neither
	// made here nor signed by a key the store trusts) whole: its memory,
	// and its container with all it asks for. Without it such a checkpoint
	// comes back as data only, in a plain container (recreateSpec).
	Trust bool
	// Force resumes a container that ran after the checkpoint was taken:
	// its processes come back from the checkpoint over files that are
	// newer than their memory.
	Force bool
	// NoFallback makes a resume fail, undoing what it created, when memory
	// cannot be restored, instead of starting the container normally.
	NoFallback bool
	// Progress receives a report per phase; nil discards them.
	Progress progress.Reporter
}

// Result is the outcome of resuming one container.
type Result struct {
	// Container is the container's name.
	Container string
	// Checkpoint is the checkpoint's name, once chosen.
	Checkpoint string
	// Recreated is true when the container had to be created anew.
	Recreated bool
	// MemoryRestored is true when the processes continue from the checkpoint.
	MemoryRestored bool
	// Cold is true for a checkpoint of data only: the container started
	// fresh on its saved data, as intended.
	Cold bool
	// Fallback says why memory was not restored, when the container was
	// started normally instead.
	Fallback error
	// Trust is the checkpoint's trust, once chosen.
	Trust store.Trust
	// Untrusted is true when the checkpoint was not trusted and came back
	// as data only, in a plain container.
	Untrusted bool
	// Dropped names what the saved configuration had and the recreated
	// container did not get (recreateSpec).
	Dropped []string
	// Notes are things the user should know (volumes kept as they were, ...).
	Notes []string
	// Err is why the resume failed.
	Err error
}

// Resume resumes each container of opts in turn. It returns one result per
// container and an error when any of them failed.
func Resume(ctx context.Context, opts Options) ([]Result, error) {
	names := opts.Containers
	if opts.All {
		var err error
		if names, err = resumable(ctx, opts); err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, hint.New("no stopped container has a checkpoint in "+opts.Store.Root, "ckpt ls lists checkpoints")
		}
	}
	return steps.Each(ctx, names, func(ref string) Result { return ResumeContainer(ctx, opts, ref) },
		func(r Result) (string, error) { return r.Container, r.Err })
}

// resumable lists the containers with a complete checkpoint that are not
// running.
func resumable(ctx context.Context, opts Options) ([]string, error) {
	ents, err := opts.Store.List("")
	if err != nil {
		return nil, err
	}
	var names []string
	seen := map[string]bool{}
	for _, e := range ents {
		if e.State != store.StateComplete || seen[e.Container] {
			continue
		}
		seen[e.Container] = true
		c, err := opts.Engine.Lookup(ctx, e.Container)
		if err != nil {
			return nil, err
		}
		if c == nil || !c.State.Running {
			names = append(names, e.Container)
		}
	}
	return names, nil
}

// resumer holds the state of one resume.
type resumer struct {
	opts Options
	eng  Engine
	rep  progress.Reporter
	name string
	ck   *store.Checkpoint
	cfg  container.InspectResponse
	res  *Result
	// c is the container to start: the saved one, still there, or the
	// one created anew.
	c *container.InspectResponse
	// memErr says why memory cannot be restored here; nil when it can.
	memErr error
	// useHolder is true when the processes resume inside the container's
	// network holder.
	useHolder bool
	// useRuntime is true when the container is restored by ckpt's runtime
	// (internal/shim), on an engine that cannot restore by itself.
	useRuntime bool
	// replace is true when the existing container must be replaced by one
	// inside its network holder.
	replace bool
	// image is what a recreated container is created from.
	image string
	// trusted is true when the checkpoint comes back whole (store.Trust,
	// or Options.Trust).
	trusted bool
	// tag marks the volumes and networks a resume of an untrusted
	// checkpoint creates (restoredLabel): the checkpoint and its
	// manifest's sha256.
	tag string
	// own are the volumes and networks an untrusted checkpoint may use.
	own brought
	// What this resume created, for its undo.
	networks, volumes, containers []string
}

// ResumeContainer resumes one container by name; opts.Containers and
// opts.All are ignored.
func ResumeContainer(ctx context.Context, opts Options, name string) (res Result) {
	res.Container = name
	if err := preflight.Engine(opts.Engine.System()); err != nil {
		res.Err = err
		return res
	}
	if c, err := opts.Engine.Lookup(ctx, name); err != nil {
		res.Err = err
		return res
	} else if c != nil {
		name = engine.Name(c) // an id or a prefix was given
		res.Container = name
	}
	lock, err := opts.Store.Lock(name, "resume")
	if err != nil {
		res.Err = err
		return res
	}
	defer lock.Unlock()
	// A save that a killed ckpt left in flight is finished or undone first;
	// when that brought the container back, that is the resume.
	rec, err := checkpoint.Recover(ctx, opts.Engine, opts.Store, name)
	if rec.Message != "" {
		res.Notes = append(res.Notes, rec.Message)
	}
	if err != nil || rec.Started {
		res.Err, res.MemoryRestored = err, rec.MemoryKept
		return res
	}
	r := &resumer{opts: opts, eng: opts.Engine, rep: progress.Or(opts.Progress), res: &res, name: name}
	res.Err = r.run(ctx)
	return res
}

// run does the resume under the container's lock, as a list of steps each
// with its undo: when one fails, what the resume created is removed again,
// and the checkpoint is left as it was.
func (r *resumer) run(ctx context.Context) error {
	return steps.Run(ctx,
		steps.Step{Name: "checkpoint", Do: r.find},
		steps.Step{Name: "container", Do: r.existing},
		steps.Step{Name: "preflight", Do: r.preflight},
		steps.Step{Name: "journal", Do: r.journal, Undo: r.clearJournal},
		steps.Step{Name: "image", Do: r.pickImage},
		steps.Step{Name: "networks", Do: r.recreateNetworks, Undo: r.removeNetworks},
		steps.Step{Name: "volumes", Do: r.ensureVolumes, Undo: r.removeVolumes},
		steps.Step{Name: "replace", Do: r.replaceContainer},
		steps.Step{Name: "recreate", Do: r.ensureContainer, Undo: r.removeContainers},
		steps.Step{Name: "start", Do: r.start},
		steps.Step{Name: "restart policy", Do: r.putRestartPolicyBack},
		steps.Step{Name: "done", Do: r.clearJournal},
	)
}

// journal records the resume in the store before it changes anything in
// the engine, and again each time it creates something (created), so that
// checkpoint.Recover can remove what a killed resume left half made.
func (r *resumer) journal(context.Context) error {
	return r.opts.Store.WriteJournal(r.name, &store.Journal{Op: store.JournalResume, Checkpoint: r.ck.Name,
		RestartPolicy: r.ck.Manifest.RestartPolicy, Containers: r.containers, Networks: r.networks, Volumes: r.volumes,
		MemoryRestored: r.res.MemoryRestored})
}

func (r *resumer) clearJournal(context.Context) error { return r.opts.Store.ClearJournal(r.name) }

// created records in the journal what was just created.
func (r *resumer) created() error { return r.journal(context.Background()) }

// find picks the checkpoint, verifies every byte of it and reads the saved
// configuration.
func (r *resumer) find(ctx context.Context) (err error) {
	if r.ck, err = r.opts.Store.Find(r.name, r.opts.From); err != nil {
		return err
	}
	r.res.Checkpoint = r.ck.Name
	r.res.Cold = r.ck.Manifest.Mode == format.ModeCold
	r.rep.Report(progress.Event{Container: r.name, Phase: "verify"})
	if err := r.ck.Verify(ctx); err != nil {
		return err
	}
	r.rep.Report(progress.Event{Container: r.name, Phase: "verify", Message: "checksums match", Bytes: r.ck.Size()})
	damaged := func(err error) error {
		return &store.DamagedError{Container: r.ck.Container, Name: r.ck.Name, Files: true, Err: err}
	}
	if err := r.ck.Manifest.CheckResumable(); err != nil {
		return damaged(err)
	}
	if err := r.ck.ReadJSON(format.ContainerFile, &r.cfg); err != nil {
		return damaged(err)
	}
	if r.cfg.ContainerJSONBase == nil || r.cfg.Config == nil || r.cfg.HostConfig == nil {
		return damaged(fmt.Errorf("%s lacks the container's configuration", format.ContainerFile))
	}
	r.res.Trust = r.ck.Trust
	r.trusted = r.ck.Trust.Trusted() || r.opts.Trust
	r.own = brought{volumes: map[string]bool{}, networks: map[string]bool{}}
	raw, err := r.ck.RawManifest()
	if err != nil {
		return damaged(err)
	}
	sum := sha256.Sum256(raw)
	r.tag = fmt.Sprintf("%s:%s@sha256:%x", r.ck.Container, r.ck.Name, sum)
	return nil
}

// existing looks at the container that has the saved one's name, if any:
// a running one, or another container, is refused.
func (r *resumer) existing(ctx context.Context) (err error) {
	if r.c, err = r.eng.Lookup(ctx, r.name); err != nil || r.c == nil {
		return err
	}
	if !r.trusted {
		// Its memory and its data never go into a container it did not
		// make, whose configuration someone else chose.
		return hint.New(fmt.Sprintf("container %s exists, and checkpoint %s:%s is not trusted (%s)", r.name, r.ck.Container, r.ck.Name, r.ck.Trust.Reason),
			"nothing was changed; a checkpoint that is not trusted comes back only in a container it creates: remove "+r.name+" (docker rm "+r.name+"), or trust its signer (ckpt trust add)")
	}
	if r.c.State.Running {
		return hint.New(fmt.Sprintf("container %s is running", r.name),
			"ckpt resume brings back a stopped container; to go back to the checkpoint, docker stop "+r.name+" first (its current state is lost)")
	}
	if id := r.ck.Manifest.Container.ID; r.c.ID != id {
		return hint.New(fmt.Sprintf("container %s (id %.12s) is not the container that was saved (id %.12s)", r.name, r.c.ID, id),
			"remove it (docker rm "+r.name+") and ckpt resume recreates the saved one")
	}
	if ran := ranAfter(r.c.State, r.ck.Manifest); ran != "" && !r.res.Cold && !r.opts.Force {
		return &RanAfterError{Container: r.name, Checkpoint: r.ck.Name, Why: ran}
	}
	return nil
}

// ranAfter says how container state s shows that the container ran after
// checkpoint m was taken ("" when it did not): it was started after the
// save began (the engine sets the start time only when a start succeeds),
// or it was saved with --leave-running, went on, and has stopped since.
func ranAfter(s *container.State, m *format.Manifest) string {
	if s == nil {
		return ""
	}
	started, _ := time.Parse(time.RFC3339Nano, s.StartedAt)
	finished, _ := time.Parse(time.RFC3339Nano, s.FinishedAt)
	switch {
	case started.After(m.Created):
		return "it was started again at " + started.UTC().Format(time.RFC3339)
	case m.LeftRunning && finished.After(m.Created):
		return "it was saved with --leave-running, went on, and stopped at " + finished.UTC().Format(time.RFC3339)
	}
	return ""
}

// RanAfterError is the error of a resume of a container that ran after
// its checkpoint was taken: its volumes and writable layer are newer than
// the memory the checkpoint holds, and CRIU checks no more than the sizes of
// the files the processes had open. Nothing was changed.
type RanAfterError struct {
	Container, Checkpoint string
	// Why says how it shows.
	Why string
}

func (e *RanAfterError) Error() string {
	return fmt.Sprintf("container %s ran after checkpoint %s was taken (%s): its files are newer than the memory the checkpoint holds",
		e.Container, e.Checkpoint, e.Why)
}

// preflight decides, before anything is touched, whether memory can be
// restored here (and refuses when it cannot and NoFallback is set), and
// whether the processes resume inside a network holder.
func (r *resumer) preflight(ctx context.Context) error {
	m := r.ck.Manifest
	host := r.opts.Host
	r.res.Untrusted = !r.trusted
	if r.res.Untrusted && !r.res.Cold {
		r.memErr = &UntrustedError{Checkpoint: r.ck.Container + ":" + r.ck.Name, Trust: r.ck.Trust}
	} else if !r.res.Cold {
		if err := host.Compatible(criu.Facts{Kernel: m.Host.Kernel, Arch: m.Host.Arch, CPUFlags: m.Host.CPUFlags}); err != nil {
			r.memErr = err
		} else if err := engine.RestoreBrokenIn(r.eng.System().ServerVersion); err != nil && m.Container.NetNS != format.NetNSHolder {
			// ckpt's runtime restores it at create, where the engine
			// expects a process (internal/shim).
			r.memErr = r.runtimeFor(err)
		}
		if r.memErr == nil {
			if _, err := host.Memory(); err != nil {
				r.memErr = err
			}
		}
	}
	if r.memErr != nil && r.opts.NoFallback {
		return &NoFallbackError{Err: r.memErr}
	}
	if r.res.Untrusted {
		what := "its data only"
		if r.res.Cold {
			what = "it" // a cold checkpoint holds no memory anyway
		}
		r.rep.Report(progress.Event{Container: r.name, Phase: "check", Warning: true,
			Message: fmt.Sprintf("checkpoint %s:%s is not trusted (%s): resuming %s, in a plain container",
				r.ck.Container, r.ck.Name, r.ck.Trust.Reason, what)})
	} else if r.memErr != nil {
		r.rep.Report(progress.Event{Container: r.name, Phase: "check", Warning: true,
			Message: "memory cannot be restored here (" + r.memErr.Error() + "); resuming its data only"})
	}
	// A checkpoint whose network namespace was saved as external resumes
	// inside the container's network holder: a container with a namespace
	// of its own is recreated to share the holder's (docs/engines.md).
	r.useHolder = m.Container.NetNS == format.NetNSHolder && r.memErr == nil
	if r.useHolder && r.c != nil {
		h, err := r.eng.Lookup(ctx, engine.HolderName(r.name))
		if err != nil {
			return err
		}
		hid := ""
		if h != nil {
			hid = h.ID
		}
		r.replace = !engine.InHolder(r.c, engine.HolderName(r.name), hid)
	}
	// A container of another runtime is recreated with ckpt's.
	r.useRuntime = r.useRuntime && r.memErr == nil
	if r.useRuntime && r.c != nil {
		r.replace = r.c.HostConfig.Runtime != shim.Runtime
	}
	return r.checkRoom(ctx)
}

// runtimeFor decides whether ckpt's runtime restores the container on an
// engine that cannot (broken says why), and returns why memory cannot be
// restored when it cannot either: the container needs a runtime of its
// own, or containerd cannot be given ckpt's.
func (r *resumer) runtimeFor(broken error) error {
	switch rt := r.cfg.HostConfig.Runtime; rt {
	case "", "runc", "io.containerd.runc.v2", shim.Runtime:
	default:
		return fmt.Errorf("%w; ckpt restores there through its own runtime, and this container runs on runtime %s", broken, rt)
	}
	if _, err := r.opts.Host.RestoreRuntime(); err != nil {
		return fmt.Errorf("%w; ckpt restores there through its own runtime (%s), which cannot be installed: %w", broken, shim.Runtime, err)
	}
	r.useRuntime = true
	return nil
}

// checkRoom refuses, before anything is created, a resume that would not
// fit: the memory images put together in the store, and the volumes it
// fills and the writable layer it unpacks in the engine's directory, in
// bytes and files as the checkpoint declares them, added up with checked
// arithmetic (a checkpoint from elsewhere declares what it likes; the
// unpacking stops where its declarations end, archive.ExtractLimited).
func (r *resumer) checkRoom(ctx context.Context) error {
	m := r.ck.Manifest
	var pages []int64
	if r.memErr == nil && !r.res.Cold {
		for _, f := range m.Files {
			if f.Chunks != nil && strings.HasPrefix(f.Path, format.ImagesDir+"/") {
				pages = append(pages, f.Size)
			}
		}
	}
	var bytes, files []int64
	if r.recreating() {
		bytes, files = append(bytes, m.Layer.Bytes), append(files, m.Layer.Entries)
	}
	for _, v := range m.Volumes {
		fill, err := r.fillsVolume(ctx, v)
		if err != nil {
			return err
		}
		if fill {
			bytes, files = append(bytes, v.Bytes), append(files, v.Entries)
		}
	}
	sum := func(sizes []int64) (int64, error) {
		n, err := preflight.SumSizes(sizes...)
		if err != nil {
			return 0, &store.DamagedError{Container: r.ck.Container, Name: r.ck.Name, Files: true, Err: fmt.Errorf("%s declares: %w", format.ManifestFile, err)}
		}
		return n, nil
	}
	need := map[string][2]int64{}
	add := func(dir string, b, f int64) error {
		old := need[dir]
		nb, err := sum([]int64{old[0], b})
		if err != nil {
			return err
		}
		nf, err := sum([]int64{old[1], f})
		need[dir] = [2]int64{nb, nf}
		return err
	}
	placed, err := sum(pages)
	if err != nil {
		return err
	}
	if err := add(r.opts.Store.Root, placed, int64(len(pages))); err != nil {
		return err
	}
	b, err := sum(bytes)
	if err != nil {
		return err
	}
	f, err := sum(files)
	if err != nil {
		return err
	}
	if root := r.eng.System().DockerRootDir; root != "" && (b > 0 || f > 0) {
		if err := add(root, b, f); err != nil {
			return err
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(need)) {
		if err := r.opts.Host.Room(dir, r.name, need[dir][0], need[dir][1]); err != nil {
			return err
		}
	}
	return nil
}

// fillsVolume reports whether the resume fills volume v (ensureVolume):
// missing, empty, or left partly filled by a resume that did not finish.
func (r *resumer) fillsVolume(ctx context.Context, v format.Volume) (bool, error) {
	vol, err := r.eng.VolumeInspect(ctx, v.Name)
	switch {
	case cerrdefs.IsNotFound(err):
		return r.trusted || ((v.Driver == "" || v.Driver == "local") && len(v.DriverOpts) == 0), nil
	case err != nil:
		return false, err
	case !r.trusted && vol.Labels[restoredLabel] != r.tag:
		return false, nil
	case r.opts.Store.PartlyFilled(r.name, v.Name, vol.CreatedAt):
		return true, nil
	}
	return archive.IsEmpty(vol.Mountpoint)
}

// NoFallbackError is the error of a resume that could not restore memory
// and was told not to start the container on its data alone
// (Options.NoFallback). What the resume created is removed again.
type NoFallbackError struct {
	// Err says why memory could not be restored.
	Err error
	// Tried is true when the restore was tried and failed, false when it
	// was ruled out before anything was touched.
	Tried bool
}

func (e *NoFallbackError) Error() string {
	if e.Tried {
		return "memory could not be restored, and a start on the saved data only was ruled out: " + e.Err.Error()
	}
	return "memory cannot be restored here, and a start on the saved data only was ruled out: " + e.Err.Error()
}

func (e *NoFallbackError) Unwrap() error { return e.Err }

// recreating reports whether the container is created anew.
func (r *resumer) recreating() bool { return r.c == nil || r.replace }

// pickImage finds the image to recreate the container from, before
// anything is created: a missing image fails the resume first.
func (r *resumer) pickImage(ctx context.Context) (err error) {
	if !r.recreating() {
		return nil
	}
	r.image, err = r.imageRef(ctx)
	return err
}

// ensureVolumes recreates or fills the saved volumes.
func (r *resumer) ensureVolumes(ctx context.Context) error {
	for _, v := range r.ck.Manifest.Volumes {
		if err := r.ensureVolume(ctx, v); err != nil {
			return err
		}
	}
	return nil
}

// replaceContainer removes a stopped container that must come back inside
// its network holder, or with ckpt's runtime. It is saved whole in the
// checkpoint: its writable layer comes back with the new container, its
// volumes stay.
func (r *resumer) replaceContainer(ctx context.Context) error {
	if !r.replace {
		return nil
	}
	how := "inside its network holder " + engine.HolderName(r.name) + " (this engine cannot restore a container in its own network namespace)"
	if r.useRuntime {
		how = "with ckpt's runtime " + shim.Runtime + ", which restores it on this engine (" + hint.Doc("engines.md") + ")"
	}
	if err := r.eng.ContainerRemove(ctx, r.c.ID, container.RemoveOptions{}); err != nil {
		return fmt.Errorf("cannot recreate %s %s: %w", r.name, how, err)
	}
	r.res.Notes = append(r.res.Notes, "recreated "+how)
	r.c = nil
	return nil
}

// ensureContainer recreates a missing container, or makes sure the network
// holder of an existing one runs.
func (r *resumer) ensureContainer(ctx context.Context) (err error) {
	if r.c == nil {
		if r.c, err = r.recreate(ctx); err != nil {
			return err
		}
		r.res.Recreated = true
		return nil
	}
	if r.useHolder {
		_, err = r.ensureHolder(ctx)
	}
	return err
}

// removeNetworks, removeVolumes and removeContainers undo what the steps
// that created them did, newest first.
func (r *resumer) removeNetworks(ctx context.Context) error {
	return undoAll(r.networks, func(id string) error { return r.eng.NetworkRemove(ctx, id) })
}

func (r *resumer) removeVolumes(ctx context.Context) error {
	return undoAll(r.volumes, func(name string) error {
		if err := r.eng.VolumeRemove(ctx, name, true); err != nil {
			return err
		}
		return r.opts.Store.EndFill(r.name, name)
	})
}

func (r *resumer) removeContainers(ctx context.Context) error {
	return undoAll(r.containers, func(id string) error {
		return r.eng.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	})
}

// undoAll calls undo on every item, newest first, and joins the errors.
func undoAll(items []string, undo func(string) error) error {
	var errs []error
	for i := len(items) - 1; i >= 0; i-- {
		if err := undo(items[i]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", items[i], err))
		}
	}
	return errors.Join(errs...)
}

// start starts the container: from its checkpoint when memory can be
// restored, else normally on the restored data, unless NoFallback forbids
// it. A cold checkpoint simply starts.
func (r *resumer) start(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	id := r.c.ID
	r.rep.Report(progress.Event{Container: r.name, Phase: "start"})
	if r.res.Cold {
		if err := r.eng.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return fmt.Errorf("cannot start %s: %w", r.name, err)
		}
		return nil
	}
	memErr := r.memErr
	if memErr == nil {
		var log []byte
		images, done, err := r.ck.Place(ctx, format.ImagesDir)
		switch {
		case err != nil:
			err = fmt.Errorf("cannot put the memory images together from the store's chunks: %w", err)
		case r.useRuntime:
			log, err = r.startThroughRuntime(ctx, id, images)
			done()
		default:
			err = r.opts.Host.WithOptions(r.criuOptions(id), func() (err error) {
				log, err = r.eng.StartFromCheckpoint(ctx, id, images)
				return err
			})
			done()
		}
		if err == nil {
			r.res.MemoryRestored = true
			// A recovery after a kill from here on says so.
			if err := r.created(); err != nil {
				r.res.Notes = append(r.res.Notes, "cannot record that memory was restored: "+err.Error())
			}
			return nil
		}
		if sp := (*startedPlainError)(nil); errors.As(err, &sp) {
			if r.opts.NoFallback {
				r.eng.ContainerKill(ctx, id, "KILL")
				return &NoFallbackError{Err: sp.err, Tried: true}
			}
			r.res.Fallback = sp.err
			return nil
		}
		memErr = criu.Explain(err, log)
	}
	if r.opts.NoFallback {
		return &NoFallbackError{Err: memErr, Tried: true}
	}
	if err := r.eng.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("memory could not be restored (%v), and a normal start failed too: %w", memErr, err)
	}
	r.res.Fallback = memErr
	if !r.res.Untrusted { // said so already
		r.rep.Report(progress.Event{Container: r.name, Phase: "start", Warning: true, Message: "memory was NOT restored; started normally on the restored data"})
	}
	return nil
}

// startThroughRuntime starts container id, of ckpt's runtime, through the
// engine as any start, having asked ckpt's runc to restore it from images at
// create (shim.Ask): the engine then attaches the network of the restored
// processes as of any container's, and its start resumes them. CRIU's work
// directory, with its log, is beside the images.
func (r *resumer) startThroughRuntime(ctx context.Context, id, images string) ([]byte, error) {
	work := filepath.Join(filepath.Dir(images), "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, err
	}
	// Its own CRIU options go with the request, in a file of its own:
	// nothing is added to runc.conf, and resumes run side by side.
	withdraw, err := shim.Ask(id, images, work, r.criuOptions(id))
	if err != nil {
		return nil, err
	}
	fault.Point("runtime:asked")
	err = r.eng.ContainerStart(ctx, id, container.StartOptions{})
	taken := withdraw()
	if err == nil && !taken {
		// Started, but not restored: the runc the runtime ran was not
		// ckpt's. It runs on its restored data, as a fallback would.
		return nil, &startedPlainError{fmt.Errorf("the engine started %s without restoring it: the %s containerd runs is not ckpt's (ckpt doctor)", r.name, shim.Binary)}
	}
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "restore.log"))
		return log, err
	}
	return nil, nil
}

// startedPlainError is a start meant to restore that started the container
// normally instead.
type startedPlainError struct{ err error }

func (e *startedPlainError) Error() string { return e.err.Error() }

// putRestartPolicyBack gives the container the restart policy the save
// held off. The container runs by now: a failure is a note, not a failed
// resume.
func (r *resumer) putRestartPolicyBack(ctx context.Context) error {
	p := r.ck.Manifest.RestartPolicy
	if !p.Restarts() {
		return nil
	}
	if err := r.eng.SetRestartPolicy(context.WithoutCancel(ctx), r.c.ID, p); err != nil {
		r.res.Notes = append(r.res.Notes, fmt.Sprintf("could not put restart policy %s back: %v", p.Name, err))
	}
	return nil
}

// criuOptions returns the CRIU options the restore of checkpoint r.ck into
// container id needs beyond runc.conf's usual block.
//
// On cgroup v2 runc gives CRIU no cgroup root, so CRIU puts the processes of
// a recreated container back into the cgroup of the container that was saved
// (system.slice/docker-<old id>.scope), which the engine does not know: the
// next checkpoint then fails ("freezer not supported: ... cgroup.freeze: no
// such file or directory") and limits do not apply. A cgroup-root naming the
// new container's cgroup puts them where runc made it. It is worked out from
// the new container's own configuration and the engine's cgroup driver
// (containerCgroup), never from the checkpoint's images: no value a
// checkpoint holds reaches CRIU's configuration. cgroup v1 needs nothing:
// runc passes a root per controller there.
func (r *resumer) criuOptions(id string) []string {
	old := r.ck.Manifest.Container.ID
	info := r.eng.System()
	if !r.res.Recreated || old == "" || old == id || info.CgroupVersion != "2" {
		return nil
	}
	root, err := containerCgroup(info.CgroupDriver, r.c.HostConfig.CgroupParent, id)
	if err != nil {
		r.res.Notes = append(r.res.Notes, "cannot tell the new container's cgroup ("+err.Error()+"): its processes keep the saved container's")
		return nil
	}
	return []string{"cgroup-root " + root}
}

// containerCgroup returns the cgroup (v2) runc makes for container id, as
// the engine asks for it (moby's daemon/oci_linux.go): with the systemd
// driver the scope docker-<id>.scope in the parent slice (system.slice by
// default), else <parent>/<id> (/docker by default).
func containerCgroup(driver, parent, id string) (string, error) {
	if !validID.MatchString(id) {
		return "", fmt.Errorf("container id %q", id)
	}
	if driver == "systemd" {
		if parent == "" {
			parent = "system.slice"
		}
		slice, err := expandSlice(parent)
		if err != nil {
			return "", err
		}
		return strings.TrimSuffix(slice, "/") + "/docker-" + id + ".scope", nil
	}
	if parent == "" {
		parent = "/docker"
	}
	if !validCgroup.MatchString(parent) || slices.Contains(strings.Split(parent, "/"), "..") {
		return "", fmt.Errorf("cgroup parent %q", parent)
	}
	return "/" + strings.Trim(parent, "/") + "/" + id, nil
}

var (
	validID     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	validCgroup = regexp.MustCompile(`^/?[A-Za-z0-9_.@:-]+(/[A-Za-z0-9_.@:-]+)*/?$`)
	validSlice  = regexp.MustCompile(`^[A-Za-z0-9_.@:]+(-[A-Za-z0-9_.@:]+)*\.slice$`)
)

// expandSlice turns a systemd slice name into its path, as systemd does:
// a-b-c.slice is /a.slice/a-b.slice/a-b-c.slice, -.slice is /.
func expandSlice(slice string) (string, error) {
	if slice == "-.slice" {
		return "/", nil
	}
	if !validSlice.MatchString(slice) {
		return "", fmt.Errorf("cgroup parent %q is not a systemd slice", slice)
	}
	parts := strings.Split(strings.TrimSuffix(slice, ".slice"), "-")
	path := ""
	for i := range parts {
		path += "/" + strings.Join(parts[:i+1], "-") + ".slice"
	}
	return path, nil
}

// recreate creates the container anew from its saved configuration and
// image, and puts its writable layer back before it starts.
func (r *resumer) recreate(ctx context.Context) (*container.InspectResponse, error) {
	m := r.ck.Manifest
	name := m.Container.Name

	sp := recreateSpec(r.cfg, r.trusted, r.own, engine.HolderName(name), r.engineDefaults())
	r.res.Dropped = sp.dropped
	cfg, hc := *sp.cfg, *sp.hc
	cfg.Image = r.image
	hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	// ckpt's runtime where it restores the container, the engine's default
	// where the engine does.
	if hc.Runtime == shim.Runtime {
		hc.Runtime = ""
	}
	if r.useRuntime {
		hc.Runtime = shim.Runtime
	}
	primary, others := r.endpoints(r.cfg)
	if r.useHolder {
		holder, err := r.ensureHolder(ctx)
		if err != nil {
			return nil, err
		}
		// The holder has the addresses, ports, host name and DNS settings;
		// the engine refuses them beside a container: network mode.
		hc.NetworkMode = container.NetworkMode("container:" + holder)
		hc.PortBindings, hc.PublishAllPorts, hc.Links = nil, false, nil
		hc.DNS, hc.DNSOptions, hc.DNSSearch, hc.ExtraHosts = nil, nil, nil, nil
		cfg.Hostname, cfg.Domainname, cfg.ExposedPorts, cfg.MacAddress = "", "", nil, "" //nolint:staticcheck // MacAddress is deprecated but still sent by older engines
		primary, others = nil, nil
	}
	hc.Mounts = append([]mount.Mount(nil), hc.Mounts...)
	// Re-attach anonymous volumes by name; the engine would make new ones.
	for _, v := range m.Volumes {
		if !v.Anonymous || (!r.trusted && !r.own.volumes[v.Name]) {
			continue
		}
		named := false
		for i, mt := range hc.Mounts {
			if mt.Type == mount.TypeVolume && mt.Source == "" && mt.Target == v.Destination {
				hc.Mounts[i].Source, named = v.Name, true
			}
		}
		if !named {
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: v.Name, Target: v.Destination})
		}
	}
	id, err := r.eng.Create(ctx, name, &cfg, &hc, primary)
	if err != nil {
		return nil, fmt.Errorf("cannot recreate container %s: %w", name, err)
	}
	r.containers = append(r.containers, id)
	if err := r.created(); err != nil {
		return nil, err
	}
	for net, ep := range others {
		if err := r.eng.NetworkConnect(ctx, net, id, ep); err != nil {
			return nil, fmt.Errorf("cannot connect %s to network %s: %w", name, net, err)
		}
	}
	c, err := engine.Find(ctx, r.eng, id)
	if err != nil {
		return nil, err
	}
	upper, err := engine.UpperDir(c)
	if err != nil {
		return nil, err
	}
	stats, err := r.extract(ctx, m.Layer.Archive, upper, archive.Overlay, archive.Limits{Entries: m.Layer.Entries, Bytes: m.Layer.Bytes})
	if err != nil {
		return nil, fmt.Errorf("writable layer: %w", err)
	}
	r.rep.Report(progress.Event{Container: name, Phase: "layer", Bytes: stats.Bytes, Message: fmt.Sprintf("recreated container, %d entries, %d deleted paths", stats.Entries, stats.Deleted)})
	return c, nil
}

// ensureHolder makes sure the container's network holder exists and runs,
// and returns its name. A missing holder is created with the network the
// saved container had (or, when it shared a holder already, that holder's):
// its networks and aliases, published ports, host name and DNS settings,
// and the container's name as an alias on user-defined networks, so that
// other containers reach it by name as before. Its restart policy is
// unless-stopped: it comes back with the engine, as the container's
// addresses must.
func (r *resumer) ensureHolder(ctx context.Context) (string, error) {
	name := engine.HolderName(r.ck.Manifest.Container.Name)
	h, err := r.eng.Lookup(ctx, name)
	if err != nil {
		return "", err
	}
	if h != nil {
		if h.Config == nil || h.Config.Labels[engine.HolderLabel] != r.ck.Manifest.Container.Name {
			return "", hint.New(fmt.Sprintf("container %s is not the network holder of %s (it lacks the label %s=%s)", name, r.ck.Manifest.Container.Name, engine.HolderLabel, r.ck.Manifest.Container.Name),
				"ckpt made no such container: rename or remove it (docker rename, docker rm), then resume again")
		}
		if !h.State.Running {
			if err := r.eng.ContainerStart(ctx, h.ID, container.StartOptions{}); err != nil {
				return "", fmt.Errorf("cannot start the network holder %s: %w", name, err)
			}
		}
		return name, nil
	}
	src := r.cfg
	var saved container.InspectResponse
	if err := r.ck.ReadJSON(format.HolderFile, &saved); err == nil && saved.ContainerJSONBase != nil && saved.Config != nil && saved.HostConfig != nil {
		src = saved
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	img, err := r.eng.HolderImage(ctx)
	if err != nil {
		return "", err
	}
	cfg := &container.Config{
		Image: img, Hostname: src.Config.Hostname, Domainname: src.Config.Domainname,
		ExposedPorts: src.Config.ExposedPorts,
		Labels:       map[string]string{engine.HolderLabel: r.ck.Manifest.Container.Name},
	}
	hc := &container.HostConfig{
		NetworkMode: src.HostConfig.NetworkMode, PortBindings: src.HostConfig.PortBindings, PublishAllPorts: src.HostConfig.PublishAllPorts,
		DNS: src.HostConfig.DNS, DNSOptions: src.HostConfig.DNSOptions, DNSSearch: src.HostConfig.DNSSearch, ExtraHosts: src.HostConfig.ExtraHosts,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	}
	primary, others := r.endpoints(src)
	alias := func(net string, ep *network.EndpointSettings) {
		if container.NetworkMode(net).IsUserDefined() && !slices.Contains(ep.Aliases, r.ck.Manifest.Container.Name) {
			ep.Aliases = append(ep.Aliases, r.ck.Manifest.Container.Name)
		}
	}
	if primary != nil {
		for net, ep := range primary.EndpointsConfig {
			alias(net, ep)
		}
	}
	for net, ep := range others {
		alias(net, ep)
	}
	id, err := r.eng.Create(ctx, name, cfg, hc, primary)
	if err != nil {
		return "", fmt.Errorf("cannot create the network holder %s: %w", name, err)
	}
	r.containers = append(r.containers, id)
	if err := r.created(); err != nil {
		return "", err
	}
	for net, ep := range others {
		if err := r.eng.NetworkConnect(ctx, net, id, ep); err != nil {
			return "", fmt.Errorf("cannot connect the network holder %s to network %s: %w", name, net, err)
		}
	}
	if err := r.eng.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return "", fmt.Errorf("cannot start the network holder %s: %w", name, err)
	}
	r.res.Notes = append(r.res.Notes, "created the network holder "+name+": it has the container's addresses and published ports ("+hint.Doc("engines.md")+")")
	return name, nil
}

// imageRef returns the reference to create the container from: the saved
// reference when it still names the saved image, else the saved image id.
func (r *resumer) imageRef(ctx context.Context) (string, error) {
	ref, id := r.ck.Manifest.Container.Image, r.ck.Manifest.Container.ImageID
	if got, err := r.eng.ImageID(ctx, ref); err == nil && got == id {
		return ref, nil
	}
	if _, err := r.eng.ImageID(ctx, id); err == nil {
		r.res.Notes = append(r.res.Notes, fmt.Sprintf("image %s now names another image; using the saved one, %.19s", ref, id))
		return id, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", err
	}
	return "", hint.New(fmt.Sprintf("image %s (%.19s) is not on this host", ref, id),
		"load or pull it (docker load, docker pull "+ref+"), then resume again")
}

// endpoints splits the network attachments of src (the container, or its
// holder) into the one it is created with and the ones it is connected to
// afterwards (engines before API 1.44 take one network at creation). A
// checkpoint that is not trusted gets the default bridge and the networks
// it brought (r.own), with addresses the engine chooses, and no links or
// driver options; the others are named in Result.Dropped.
func (r *resumer) endpoints(src container.InspectResponse) (*network.NetworkingConfig, map[string]*network.EndpointSettings) {
	if src.NetworkSettings == nil || len(src.NetworkSettings.Networks) == 0 {
		return nil, nil
	}
	mode := string(src.HostConfig.NetworkMode)
	shortID := src.ID
	if len(shortID) > 12 {
		shortID = shortID[:12]
	}
	primary := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	others := map[string]*network.EndpointSettings{}
	for _, name := range slices.Sorted(maps.Keys(src.NetworkSettings.Networks)) {
		saved := src.NetworkSettings.Networks[name]
		ep := &network.EndpointSettings{IPAMConfig: saved.IPAMConfig, Links: saved.Links, DriverOpts: saved.DriverOpts}
		if !r.trusted {
			if name != network.NetworkBridge && !r.own.networks[name] {
				r.drop("network " + name + ": not one this resume made from the checkpoint")
				continue
			}
			ep = &network.EndpointSettings{}
		}
		for _, a := range saved.Aliases {
			if a != shortID {
				ep.Aliases = append(ep.Aliases, a)
			}
		}
		if name == mode || (mode == "default" && name == "bridge") || len(src.NetworkSettings.Networks) == 1 {
			primary.EndpointsConfig[name] = ep
		} else {
			others[name] = ep
		}
	}
	if len(primary.EndpointsConfig) == 0 {
		primary = nil
	}
	return primary, others
}

// drop names what the recreated container does not get, once.
func (r *resumer) drop(what string) {
	if !slices.Contains(r.res.Dropped, what) {
		r.res.Dropped = append(r.res.Dropped, what)
	}
}

// restoredLabel marks the volumes and networks that a resume of a
// checkpoint that is not trusted created; its value names the checkpoint
// and its manifest's sha256 (resumer.tag). Such a checkpoint uses no
// volume or network of the host but those: a later resume of the same
// checkpoint finds its own again.
const restoredLabel = "io.ckpt.restored-from"

// engineDefaults returns what the engine gives a container that does not
// say otherwise.
func (r *resumer) engineDefaults() engineDefaults {
	info := r.eng.System()
	return engineDefaults{LogDriver: info.LoggingDriver, HostCgroupns: info.CgroupVersion != "2"}
}

// recreateNetworks creates the saved user-defined networks that are
// missing, for a container that is created anew.
func (r *resumer) recreateNetworks(ctx context.Context) error {
	if !r.recreating() {
		return nil
	}
	var nets []network.Inspect
	if err := r.ck.ReadJSON(format.NetworksFile, &nets); err != nil {
		return err
	}
	for _, n := range nets {
		if have, err := r.eng.NetworkInspect(ctx, n.Name, network.InspectOptions{}); err == nil {
			if !r.trusted && have.Labels[restoredLabel] == r.tag {
				r.own.networks[n.Name] = true // made by an earlier resume of this checkpoint
			} else if !r.trusted {
				r.res.Notes = append(r.res.Notes, "network "+n.Name+" exists on this host and was not made from this checkpoint: not joined (the checkpoint is not trusted)")
			}
			continue
		} else if !cerrdefs.IsNotFound(err) {
			return err
		}
		ipam := n.IPAM
		opts := network.CreateOptions{
			Driver: n.Driver, Scope: n.Scope, EnableIPv6: &n.EnableIPv6, IPAM: &ipam,
			Internal: n.Internal, Attachable: n.Attachable, Options: n.Options, Labels: n.Labels,
		}
		if !r.trusted {
			if n.Driver != "" && n.Driver != network.NetworkBridge {
				r.drop("network " + n.Name + " of driver " + n.Driver)
				continue
			}
			// A plain bridge: the engine picks its subnet; no options.
			labels := maps.Clone(n.Labels)
			if labels == nil {
				labels = map[string]string{}
			}
			labels[restoredLabel] = r.tag
			noIPv6 := false
			opts = network.CreateOptions{Driver: network.NetworkBridge, Internal: n.Internal, EnableIPv6: &noIPv6, Labels: labels}
		}
		resp, err := r.eng.NetworkCreate(ctx, n.Name, opts)
		if err != nil {
			return fmt.Errorf("cannot recreate network %s: %w", n.Name, err)
		}
		r.networks = append(r.networks, resp.ID)
		if err := r.created(); err != nil {
			return err
		}
		r.own.networks[n.Name] = true
		r.res.Notes = append(r.res.Notes, "recreated network "+n.Name)
	}
	return nil
}

// ensureVolume recreates a missing volume and fills it, and fills an
// existing empty one. A volume that exists with contents is left alone:
// that is live data, and ckpt never throws data away; unless a resume that
// did not finish left it partly filled (store.BeginFill), when it is emptied
// and filled again. The fill is recorded before it starts and cleared once
// it is whole. A checkpoint that is not trusted gets a volume of the local
// driver without options, marked as made from it (restoredLabel), and
// never one that was there before.
func (r *resumer) ensureVolume(ctx context.Context, v format.Volume) error {
	vol, err := r.eng.VolumeInspect(ctx, v.Name)
	created := false
	switch {
	case cerrdefs.IsNotFound(err):
		created = true
		opts := volume.CreateOptions{Name: v.Name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: v.Labels}
		if !r.trusted {
			if (v.Driver != "" && v.Driver != "local") || len(v.DriverOpts) > 0 {
				r.drop(fmt.Sprintf("volume %s of driver %s%s", v.Name, v.Driver, optionText(v.DriverOpts)))
				return nil
			}
			opts.Driver, opts.DriverOpts = "local", nil
			opts.Labels = maps.Clone(v.Labels)
			if opts.Labels == nil {
				opts.Labels = map[string]string{}
			}
			opts.Labels[restoredLabel] = r.tag
		}
		vol, err = r.eng.VolumeCreate(ctx, opts)
		if err != nil {
			return fmt.Errorf("cannot recreate volume %s: %w", v.Name, err)
		}
		r.volumes = append(r.volumes, v.Name)
		if err := r.created(); err != nil {
			return err
		}
	case err != nil:
		return err
	case !r.trusted && vol.Labels[restoredLabel] != r.tag:
		r.res.Notes = append(r.res.Notes, "volume "+v.Name+" exists on this host and was not made from this checkpoint: not mounted, and its saved contents not restored (the checkpoint is not trusted)")
		return nil
	}
	if !r.trusted {
		r.own.volumes[v.Name] = true // made by this resume, or an earlier one of this checkpoint
	}
	switch {
	case created: // empty
	case r.opts.Store.PartlyFilled(r.name, v.Name, vol.CreatedAt):
		if err := archive.Clear(vol.Mountpoint); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		r.res.Notes = append(r.res.Notes, "volume "+v.Name+" was left partly filled by a resume that did not finish: emptied and filled again")
	default:
		empty, err := archive.IsEmpty(vol.Mountpoint)
		if err != nil {
			return err
		}
		if !empty {
			r.res.Notes = append(r.res.Notes, "volume "+v.Name+" exists and is not empty: kept its current contents")
			return nil
		}
	}
	if err := r.opts.Store.BeginFill(r.name, v.Name, vol.CreatedAt); err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	stats, err := r.extract(ctx, v.Archive, vol.Mountpoint, archive.Plain, archive.Limits{Entries: v.Entries, Bytes: v.Bytes})
	if err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	if err := r.opts.Store.EndFill(r.name, v.Name); err != nil {
		return fmt.Errorf("volume %s: %w", v.Name, err)
	}
	r.res.Notes = append(r.res.Notes, fmt.Sprintf("restored volume %s (%d entries)", v.Name, stats.Entries))
	r.rep.Report(progress.Event{Container: r.ck.Container, Phase: "volume " + v.Name, Bytes: stats.Bytes})
	return nil
}

// extract unpacks checkpoint archive rel into dst, no more of it than the
// manifest declares (lim).
func (r *resumer) extract(ctx context.Context, rel, dst string, kind archive.Kind, lim archive.Limits) (archive.Stats, error) {
	f, err := r.ck.Open(rel)
	if err != nil {
		return archive.Stats{}, err
	}
	defer f.Close()
	return archive.ExtractLimited(ctx, bufio.NewReaderSize(f, 1<<20), dst, kind, lim)
}
