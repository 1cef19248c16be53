package hook

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/policy"
)

// DryRunShutdown says what Shutdown would do now, and changes nothing: for
// every running container, whether it would be saved hot, cold or not at
// all and why, in the order Shutdown would save them, with the deadline and
// how many at a time. It asks the engine for the running containers only,
// and reads the store's shutdown record when o.Store is set. The outcome
// counts what the saves would be if each went as planned; like Shutdown, it
// returns an error when a container would fail or the order has a cycle.
func DryRunShutdown(ctx context.Context, o Options) (Outcome, error) {
	p := &printer{out: o.Out}
	pol := o.Policy
	var out Outcome
	p.linef("shutdown hook, dry run: nothing is saved, recorded or changed")
	if o.Store != nil {
		previous(o.Store, p)
	}
	running, targets, err := choose(ctx, o.Engine, pol,
		func(name, why string) {
			out.Skipped++
			p.linef("%s: would skip (%s)", name, why)
			o.event(Event{Container: name, Action: "would skip", Mode: policy.Skip, Reason: why, DryRun: true})
		},
		func(name string, err error) {
			out.Failed++
			p.linef("%s: would fail: %v (left running)", name, err)
			o.event(Event{Container: name, Action: "would fail", Err: err, Reason: "left running", DryRun: true})
		})
	if err != nil {
		return out, err
	}
	p.linef("deadline %s, %d saves at a time, dependents first: %d of %d running containers to save",
		pol.Deadline, pol.Parallel, len(targets), running)
	levels, orderErr := saveOrder(targets)
	if orderErr != nil {
		p.linef("policy error: %v: would save in name order", orderErr)
	}
	byName := map[string]target{}
	for _, t := range targets {
		byName[t.name] = t
	}
	for i, level := range levels {
		for _, name := range level {
			mode, line := planSave(byName[name].decision, pol.Deadline)
			out.count(true, mode)
			p.linef("%s: step %d of %d: %s", name, i+1, len(levels), line)
			o.event(Event{Container: name, Action: "would save", Mode: mode, Reason: line, DryRun: true})
		}
	}
	p.linef("shutdown hook, dry run: %s", out)
	if out.Failed > 0 {
		return out, fmt.Errorf("%d of %d containers would fail", out.Failed, running)
	}
	return out, orderErr
}

// planSave says how the shutdown hook would save a container it decided d
// for, with the policy's deadline: the mode its save would start in, and a
// line that says so and why. The hook decides when each save starts: a
// hot save starts only while its timeout fits in what is left of the
// deadline.
func planSave(d policy.Decision, deadline time.Duration) (policy.Mode, string) {
	if d.Mode != policy.Hot {
		return d.Mode, fmt.Sprintf("would save %s (%s); timeout %s", d.Mode, d.Why, d.Timeout)
	}
	// The hook starts a little after its deadline is set: a timeout equal
	// to the deadline does not fit.
	if d.Timeout >= deadline {
		return policy.Cold, fmt.Sprintf("would save cold (%s, but its timeout %s does not fit in the deadline %s)",
			d.Why, d.Timeout, deadline)
	}
	onFailure := "a failed hot save is redone cold"
	if d.OnFailure == policy.Fail {
		onFailure = "a failed hot save leaves it running"
	}
	return policy.Hot, fmt.Sprintf("would save hot (%s); timeout %s: hot if its save starts within %s of the hook's start, cold after; %s",
		d.Why, d.Timeout, deadline-d.Timeout, onFailure)
}

// previous says what the record of an earlier shutdown, which no boot has
// used yet, holds: Shutdown keeps it.
func previous(st *store.Store, p *printer) {
	rec, err := st.ReadShutdownRecord()
	switch {
	case err != nil:
		p.linef("the previous shutdown record cannot be read (%v): it would be kept aside", err)
	case rec != nil && len(rec.Saved) > 0:
		p.linef("the record of an earlier shutdown, not yet resumed, holds %d containers: they stay in it unless saved again", len(rec.Saved))
	}
}

// DryRunBoot says what Boot would do now, and changes nothing: the
// interrupted saves and resumes it would finish or undo first, and the
// containers it would resume, dependencies first, each hot or cold, or
// leave alone because they run (counted as skipped). It reads the store
// (which need not exist) and asks the engine about each container to
// resume.
func DryRunBoot(ctx context.Context, o Options) (Outcome, error) {
	p := &printer{out: o.Out}
	var out Outcome
	p.linef("boot hook, dry run: nothing is resumed, recovered or changed")
	names, err := o.Store.Containers()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return out, err
	}
	interrupted := map[string]bool{}
	for _, name := range names {
		j, err := o.Store.ReadJournal(name)
		switch {
		case err != nil:
			p.linef("%s: %v", name, err)
		case j != nil:
			interrupted[name] = true
			p.linef("%s: an interrupted %s: would be finished or undone first (and %s resumed if its checkpoint was committed)", name, j.Op, name)
		}
	}
	rec, err := o.Store.ReadShutdownRecord()
	if err != nil {
		return out, fmt.Errorf("cannot read the shutdown record: %w", err)
	}
	if rec == nil {
		msg := fmt.Sprintf("boot hook, dry run: nothing recorded to resume (no shutdown record in %s)", o.Store.Root)
		if len(interrupted) > 0 {
			msg = fmt.Sprintf("boot hook, dry run: no shutdown record in %s; only what the recovery above commits is resumed", o.Store.Root)
		}
		p.linef("%s", msg)
		return out, nil
	}
	var targets []target
	byName := map[string]format.SavedContainer{}
	for _, s := range rec.Saved {
		targets = append(targets, target{name: s.Name, after: s.After})
		byName[s.Name] = s
	}
	p.linef("%d containers saved at %s, %d resumes at a time, dependencies first",
		len(rec.Saved), rec.Time.Local().Format(time.DateTime), o.Policy.Parallel)
	levels, orderErr := order(targets)
	if orderErr != nil {
		p.linef("ordering error: %v: would resume in name order", orderErr)
	}
	for i, level := range levels {
		for _, name := range level {
			s := byName[name]
			step := fmt.Sprintf("%s: step %d of %d: ", name, i+1, len(levels))
			c, err := o.Engine.Lookup(ctx, name)
			e := Event{Container: name, Mode: s.Mode, Checkpoint: s.Checkpoint, DryRun: true}
			switch {
			case err != nil:
				out.Failed++
				p.linef("%swould fail: %v", step, err)
				e.Action, e.Err = "would fail", err
			case c != nil && c.State.Running:
				out.Skipped++
				p.linef("%salready running: would be left alone", step)
				e.Action, e.Reason, e.Mode, e.Checkpoint = "would leave", "already running", "", ""
			case s.Mode == policy.Hot:
				out.Hot++
				p.linef("%swould resume hot from %s (on its data alone if its memory cannot be restored)", step, s.Checkpoint)
				e.Action = "would resume"
			default:
				out.Cold++
				p.linef("%swould resume cold from %s (started fresh on its saved data)", step, s.Checkpoint)
				e.Action = "would resume"
			}
			o.event(e)
		}
	}
	p.linef("boot hook, dry run: %s", out)
	if out.Failed > 0 {
		return out, fmt.Errorf("%d of %d containers would fail", out.Failed, len(rec.Saved))
	}
	return out, orderErr
}
