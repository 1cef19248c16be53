// Package hook runs the host hooks: at shutdown it saves every running
// container the policy selects — hot, cold or not at all, in dependency
// order, in parallel, within a deadline — and at boot it resumes what the
// shutdown hook saved, dependencies first. Output is one line per container,
// for the journal. DryRunShutdown and DryRunBoot say what the hooks would
// do, and change nothing.
package hook

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/ckpt-dev/ckpt/checkpoint"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/fault"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
	"github.com/ckpt-dev/ckpt/policy"
	"github.com/ckpt-dev/ckpt/restore"
)

// Engine is what the hooks need of the container engine: what save and
// resume need.
type Engine interface {
	checkpoint.Engine
	restore.Engine
}

// Options are what both hooks need.
type Options struct {
	// Store holds the checkpoints and the shutdown record.
	Store *store.Store
	// Engine runs the containers.
	Engine Engine
	// Host is the machine's CRIU and file systems; the zero value is this
	// host.
	Host preflight.Host
	// Policy decides what happens to each container.
	Policy *policy.Policy
	// Out receives one line per container.
	Out io.Writer
	// Events, when set, receives what the hook did (or, in a dry run,
	// would do) with each container, as Out's lines say it: for ckpt
	// hook run --json.
	Events func(Event)
}

// Event is what a hook did, or in a dry run would do, with one container.
type Event struct {
	Container string
	// Action is "saved", "resumed", "skipped", "left" (a container the
	// boot hook found running) or "failed", each after "would " in a dry
	// run.
	Action string
	// Mode is the save's or resume's mode, when there is one.
	Mode policy.Mode
	// Reason says why: the rule, label or default that decided, what
	// changed the mode, why memory was not restored.
	Reason string
	// Checkpoint names the checkpoint saved or resumed.
	Checkpoint string
	// MemoryRestored, for a hot resume, says whether memory came back.
	MemoryRestored *bool
	// Elapsed is how long the save or resume took.
	Elapsed time.Duration
	// Err is why it failed.
	Err error
	// DryRun is true in a dry run.
	DryRun bool
}

// event reports e when the caller asked for events.
func (o Options) event(e Event) {
	if o.Events != nil {
		o.Events(e)
	}
}

// Outcome counts what a hook did.
type Outcome struct {
	Hot, Cold, Skipped, Failed int
}

func (o Outcome) String() string {
	return fmt.Sprintf("%d hot, %d cold, %d skipped, %d failed", o.Hot, o.Cold, o.Skipped, o.Failed)
}

// count adds one container's outcome.
func (o *Outcome) count(ok bool, mode policy.Mode) {
	switch {
	case !ok:
		o.Failed++
	case mode == policy.Hot:
		o.Hot++
	default:
		o.Cold++
	}
}

// printer serialises the lines of parallel workers.
type printer struct {
	mu  sync.Mutex
	out io.Writer
}

func (p *printer) linef(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format+"\n", args...)
}

// target is a container the hook works on.
type target struct {
	name     string
	decision policy.Decision
	after    []string
}

// shutdown holds the state of one run of the shutdown hook.
type shutdown struct {
	o        Options
	p        *printer
	start    time.Time
	deadline time.Time
	running  int
	targets  []target
	out      Outcome
	orderErr error
	// mu guards saved and the record's writes.
	mu sync.Mutex
	// saved is what this run saved; prev what the record held before it,
	// not yet resumed.
	saved, prev []format.SavedContainer
}

// Shutdown saves the running containers as the policy says and records
// what it saved for Boot. It returns an error when any container failed.
func Shutdown(ctx context.Context, o Options) (Outcome, error) {
	start := time.Now()
	h := &shutdown{o: o, p: &printer{out: o.Out}, start: start, deadline: start.Add(o.Policy.Deadline)}
	h.readPrevious()
	if err := h.selectTargets(ctx); err != nil {
		return h.out, err
	}
	if err := h.saveAll(ctx); err != nil {
		return h.out, err
	}
	fault.Point("hook:record")
	h.mu.Lock()
	err := h.record()
	h.mu.Unlock()
	if err != nil {
		return h.out, err
	}
	h.p.linef("shutdown hook: %s in %s", h.out, units.Duration(time.Since(start)))
	if h.out.Failed > 0 {
		return h.out, fmt.Errorf("%d of %d containers failed", h.out.Failed, h.running)
	}
	return h.out, h.orderErr
}

// selectTargets asks the policy about every running container: the ones to
// save become targets.
func (h *shutdown) selectTargets(ctx context.Context) error {
	var err error
	h.running, h.targets, err = choose(ctx, h.o.Engine, h.o.Policy,
		func(name, why string) {
			h.out.Skipped++
			h.p.linef("%s: skipped (%s)", name, why)
			h.o.event(Event{Container: name, Action: "skipped", Mode: policy.Skip, Reason: why})
		},
		func(name string, err error) {
			h.out.Failed++
			h.p.linef("%s: failed: %v (left running)", name, err)
			h.o.event(Event{Container: name, Action: "failed", Err: err, Reason: "left running"})
		})
	return err
}

// choose asks pol about every running container. It returns how many run,
// and the ones to save, with what they must be saved after (compose's
// depends_on, io.ckpt.after); it calls skip for each container the policy
// skips and fail for each it cannot decide about (a bad label), in the
// engine's order.
func choose(ctx context.Context, eng Engine, pol *policy.Policy, skip func(name, why string), fail func(name string, err error)) (int, []target, error) {
	list, err := eng.Running(ctx, container.ListOptions{})
	if err != nil {
		return 0, nil, err
	}
	all := make([]policy.Container, len(list))
	for i, c := range list {
		all[i] = policy.Container{Name: engine.Name(&c), Labels: c.Config.Labels}
	}
	var targets []target
	for _, c := range all {
		d, err := pol.Decide(c)
		switch {
		case err != nil:
			fail(c.Name, err)
		case d.Mode == policy.Skip:
			skip(c.Name, d.Why)
		default:
			targets = append(targets, target{name: c.Name, decision: d, after: append(d.After, policy.ComposeDependencies(c, all)...)})
		}
	}
	return len(list), targets, nil
}

// saveOrder sorts targets into the levels the shutdown hook saves them in:
// dependents first. On a cycle it returns one level in name order and the
// error.
func saveOrder(ts []target) ([][]string, error) {
	levels, err := order(ts)
	slices.Reverse(levels)
	return levels, err
}

// readPrevious reads the record of an earlier shutdown that no boot has
// used yet: the shutdown hook may run twice before a boot (vagrant halt
// runs it, then the guest's own systemd unit at power-off finds nothing
// running). A record that cannot be read is kept aside, and said so.
func (h *shutdown) readPrevious() {
	prev, err := h.o.Store.ReadShutdownRecord()
	if err != nil {
		aside, aerr := h.o.Store.SetAsideShutdownRecord()
		h.p.linef("the previous shutdown record cannot be read (%v): kept as %s (%v)", err, aside, aerr)
		return
	}
	if prev != nil {
		h.prev = prev.Saved
	}
}

// saveAll saves the targets, dependents first, each level in parallel,
// recording each container as soon as it is saved, so that a shutdown cut
// short keeps what it saved. It returns an error when the record cannot be
// written.
func (h *shutdown) saveAll(ctx context.Context) error {
	levels, err := saveOrder(h.targets)
	if err != nil {
		h.orderErr = err
		h.p.linef("policy error: %v: saving in name order", err)
	}
	byName := map[string]target{}
	for _, t := range h.targets {
		byName[t.name] = t
	}
	var recordErr error
	for _, level := range levels {
		parallel(level, h.o.Policy.Parallel, func(name string) {
			sc, ok := h.saveOne(ctx, byName[name])
			h.mu.Lock()
			defer h.mu.Unlock()
			h.out.count(ok, sc.Mode)
			if ok {
				h.saved = append(h.saved, sc)
				if err := h.record(); err != nil && recordErr == nil {
					recordErr = err
				}
				fault.Point("hook:recorded")
			}
		})
	}
	return recordErr
}

// record writes what was saved, and what the previous record held that
// this run did not save again, for the boot hook; h.mu must be held.
func (h *shutdown) record() error {
	saved := slices.Clone(h.saved)
	for _, p := range h.prev {
		if !slices.ContainsFunc(saved, func(s format.SavedContainer) bool { return s.Name == p.Name }) {
			saved = append(saved, p)
		}
	}
	if err := h.o.Store.WriteShutdownRecord(&format.ShutdownRecordDoc{Time: h.start.UTC(), Saved: saved}); err != nil {
		return fmt.Errorf("cannot record what was saved: %w", err)
	}
	return nil
}

// saveOne saves one container: hot, unless the policy says cold or the
// deadline is too near for a hot save; a failed hot save falls back to cold
// unless the policy says fail.
func (h *shutdown) saveOne(ctx context.Context, t target) (format.SavedContainer, bool) {
	d, p := t.decision, h.p
	mode, note := d.Within(time.Until(h.deadline))
	save := func(mode policy.Mode) checkpoint.Result {
		cctx, cancel := context.WithTimeout(ctx, d.Timeout)
		defer cancel()
		return checkpoint.SaveContainer(cctx, checkpoint.Options{Store: h.o.Store, Engine: h.o.Engine, Host: h.o.Host, Mode: mode}, t.name)
	}
	began := time.Now()
	r := save(mode)
	if r.Err != nil && mode == policy.Hot && d.OnFailure == policy.FallbackCold {
		note = "hot save failed: " + hint.FirstLine(r.Err)
		mode = policy.Cold
		r = save(mode)
	}
	elapsed := time.Since(began)
	took := units.Duration(elapsed)
	if r.Err != nil {
		msg := fmt.Sprintf("%s: failed %s save after %s: %s", t.name, mode, took, hint.FirstLine(r.Err))
		reason := note
		if r.Recovery != "" {
			reason = strings.TrimPrefix(reason+"; "+r.Recovery, "; ")
		}
		if note != "" {
			msg += " (" + note + ")"
		}
		if r.Recovery != "" {
			msg += "; " + r.Recovery
		}
		p.linef("%s", msg)
		h.o.event(Event{Container: t.name, Action: "failed", Mode: mode, Reason: reason, Elapsed: elapsed, Err: r.Err})
		return format.SavedContainer{Mode: mode}, false
	}
	msg := fmt.Sprintf("%s: saved %s in %s as %s (%s)", t.name, mode, took, r.Checkpoint.Name, d.Why)
	reason := d.Why
	if note != "" {
		msg += "; " + note
		reason += "; " + note
	}
	p.linef("%s", msg)
	h.o.event(Event{Container: t.name, Action: "saved", Mode: mode, Reason: reason, Checkpoint: r.Checkpoint.Name, Elapsed: elapsed})
	return format.SavedContainer{Name: t.name, Mode: mode, Checkpoint: r.Checkpoint.Name, After: t.after}, true
}

// Boot resumes what the last shutdown hook saved, dependencies first, and
// marks the record done.
func Boot(ctx context.Context, o Options) (Outcome, error) {
	start := time.Now()
	p := &printer{out: o.Out}
	var out Outcome
	committed := recoverInterrupted(ctx, o, p)
	rec, err := o.Store.ReadShutdownRecord()
	if err != nil {
		return out, fmt.Errorf("cannot read the shutdown record: %w", err)
	}
	if rec == nil && len(committed) == 0 {
		p.linef("boot hook: nothing to resume (no shutdown record in %s)", o.Store.Root)
		return out, nil
	}
	recorded := rec != nil
	if !recorded {
		rec = &format.ShutdownRecordDoc{Time: start.UTC()}
	}
	var targets []target
	byName := map[string]format.SavedContainer{}
	for _, s := range rec.Saved {
		targets = append(targets, target{name: s.Name, after: s.After})
		byName[s.Name] = s
	}
	// Saves that committed but were killed before the shutdown hook
	// recorded them are resumed too.
	for _, s := range committed {
		if _, ok := byName[s.Name]; !ok {
			rec.Saved = append(rec.Saved, s)
			targets = append(targets, target{name: s.Name})
			byName[s.Name] = s
		}
	}
	levels, orderErr := order(targets)
	if orderErr != nil {
		p.linef("ordering error: %v: resuming in name order", orderErr)
	}
	var mu sync.Mutex
	var failed []format.SavedContainer
	for _, level := range levels {
		parallel(level, o.Policy.Parallel, func(name string) {
			ok, hot, left := resumeOne(ctx, o, p, byName[name])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !ok:
				out.Failed++
				failed = append(failed, byName[name])
			case left:
				out.Skipped++
			case hot:
				out.Hot++
			default:
				out.Cold++
			}
		})
	}
	// What failed stays in the record, for the next boot to try again.
	if len(failed) > 0 {
		if err := o.Store.WriteShutdownRecord(&format.ShutdownRecordDoc{Time: rec.Time, Saved: failed}); err != nil {
			return out, err
		}
		p.linef("boot hook: %d failed, kept in the shutdown record: the next boot tries them again (ckpt resume CONTAINER tries now)", len(failed))
	} else if recorded {
		if err := o.Store.FinishShutdownRecord(); err != nil {
			return out, err
		}
	}
	p.linef("boot hook: %s in %s", out, units.Duration(time.Since(start)))
	if out.Failed > 0 {
		return out, fmt.Errorf("%d of %d containers failed", out.Failed, len(rec.Saved))
	}
	return out, orderErr
}

// recoverInterrupted finishes or undoes the saves and resumes that a killed
// ckpt left in flight (a power cut during a save, say), whatever container
// they were for, and says what it did. A container another ckpt works on
// is left to it. It returns the containers whose interrupted save had
// committed its checkpoint and left them stopped: those are to be resumed.
func recoverInterrupted(ctx context.Context, o Options, p *printer) (committed []format.SavedContainer) {
	names, err := o.Store.Containers()
	if err != nil {
		p.linef("cannot look for interrupted saves: %v", err)
		return nil
	}
	for _, name := range names {
		if j, err := o.Store.ReadJournal(name); err != nil || j == nil {
			continue
		}
		lock, err := o.Store.Lock(name, "recover")
		if err != nil {
			continue
		}
		rec, err := checkpoint.Recover(ctx, o.Engine, o.Store, name)
		lock.Unlock()
		switch {
		case err != nil:
			p.linef("%s: %v", name, err)
		case rec.Message != "":
			p.linef("%s: %s", name, rec.Message)
		}
		if err == nil && rec.Committed != "" {
			committed = append(committed, format.SavedContainer{Name: name, Mode: rec.Mode, Checkpoint: rec.Committed})
		}
	}
	return committed
}

// resumeOne resumes one saved container; it reports success, whether its
// memory came back, and whether it was left alone, running already.
func resumeOne(ctx context.Context, o Options, p *printer, s format.SavedContainer) (ok, hot, left bool) {
	began := time.Now()
	if c, err := o.Engine.Lookup(ctx, s.Name); err == nil && c != nil && c.State.Running {
		p.linef("%s: already running, left alone", s.Name)
		o.event(Event{Container: s.Name, Action: "left", Reason: "already running"})
		return true, false, true
	}
	r := restore.ResumeContainer(ctx, restore.Options{Store: o.Store, Engine: o.Engine, Host: o.Host, From: s.Checkpoint}, s.Name)
	elapsed := time.Since(began)
	took := units.Duration(elapsed)
	e := Event{Container: s.Name, Action: "resumed", Mode: s.Mode, Checkpoint: r.Checkpoint, Elapsed: elapsed}
	switch {
	case r.Err != nil:
		p.linef("%s: failed to resume after %s: %s", s.Name, took, hint.FirstLine(r.Err))
		e.Action, e.Err = "failed", r.Err
		o.event(e)
		return false, false, false
	case r.Cold:
		p.linef("%s: resumed cold in %s (started fresh on its saved data)", s.Name, took)
		e.Mode = policy.Cold
	case r.MemoryRestored:
		p.linef("%s: resumed hot in %s (memory restored)", s.Name, took)
	default:
		p.linef("%s: resumed in %s, memory NOT restored: %s", s.Name, took, hint.FirstLine(r.Fallback))
		e.Reason = hint.FirstLine(r.Fallback)
	}
	if !r.Cold {
		restored := r.MemoryRestored
		e.MemoryRestored = &restored
	}
	o.event(e)
	return true, r.MemoryRestored, false
}

// order sorts targets into dependency levels; on a cycle it returns one
// level in name order and the error.
func order(ts []target) ([][]string, error) {
	nodes := make([]policy.Node, len(ts))
	for i, t := range ts {
		nodes[i] = policy.Node{Name: t.name, After: t.after}
	}
	levels, err := policy.Order(nodes)
	if err != nil {
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = t.name
		}
		slices.Sort(names)
		return [][]string{names}, err
	}
	return levels, nil
}

// parallel runs f on every name, at most n at a time, and waits.
func parallel(names []string, n int, f func(string)) {
	sem := make(chan struct{}, max(1, n))
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(name)
		}()
	}
	wg.Wait()
}
