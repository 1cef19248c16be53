// Package retention removes the checkpoints that a policy's retention does not
// keep. policy decides (without I/O); this package lists the store, applies
// the decision under each container's lock and says what happened, for the
// ckpt prune command and the shutdown hook alike.
package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/policy"
)

// Plan is what retention decided for the complete checkpoints of a store.
type Plan struct {
	// Verdicts has one verdict per complete checkpoint, in the order of
	// store.List: grouped by container.
	Verdicts []policy.Verdict
}

// NewPlan lists the complete checkpoints of container (of every container
// when it is "") and applies r to them at time now. Incomplete and damaged
// checkpoints are never part of a plan: ckpt rm is for those. With a
// container, r's MaxBytes applies to its checkpoints' total.
func NewPlan(st *store.Store, r policy.Retention, container string, now time.Time) (*Plan, error) {
	ents, err := st.List(container)
	if err != nil {
		return nil, err
	}
	var items []policy.Item
	for _, e := range ents {
		if e.State != store.StateComplete {
			continue
		}
		ck := e.Checkpoint
		items = append(items, policy.Item{Container: ck.Container, Name: ck.Name, Created: ck.Manifest.Created, Size: ck.Size(), Untrusted: !ck.Trust.Trusted()})
	}
	return &Plan{Verdicts: policy.ApplyRetention(items, r, now)}, nil
}

// Action is what became of one checkpoint of a plan.
type Action int

// Actions.
const (
	// Kept: retention keeps it.
	Kept Action = iota + 1
	// Removed: retention does not keep it and it was removed (in a dry
	// run: it would be).
	Removed
	// Failed: retention does not keep it, but it is still there; the
	// outcome's Err says why (its container was busy or changed, or the
	// removal failed).
	Failed
	// Unsettled: retention keeps it, but one of the checkpoints its
	// container keeps was gone when prune held the lock, so none of that
	// container's checkpoints were touched; the outcome's Err says so.
	Unsettled
)

func (a Action) String() string {
	switch a {
	case Kept:
		return "kept"
	case Removed:
		return "removed"
	case Failed:
		return "failed"
	case Unsettled:
		return "unsettled"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Outcome is what became of one checkpoint.
type Outcome struct {
	policy.Verdict
	Action Action
	// Err is why, for Failed and Unsettled; nil otherwise.
	Err error
}

// Failure is one thing that went wrong. Name is "" when the failure is the
// whole container's (it was busy, or changed during prune).
type Failure struct {
	Container, Name string
	Err             error
}

// Result says what Execute did.
type Result struct {
	DryRun bool
	// Outcomes has one outcome per verdict of the plan, in its order (up
	// to the interruption, when the context was cancelled).
	Outcomes []Outcome
	// Failures lists each failure once, in the order they happened.
	Failures []Failure
	// Removed counts the checkpoints removed (in a dry run: that would
	// be), Freed their bytes.
	Removed int
	Freed   int64
	// Chunks counts the store's chunks that the removals left unused and
	// that were removed, ChunksFreed their bytes (a chunk shared with a
	// kept checkpoint stays).
	Chunks      int
	ChunksFreed int64
}

// Failed reports whether anything went wrong.
func (r *Result) Failed() bool { return len(r.Failures) > 0 }

// Options tune Execute.
type Options struct {
	// DryRun removes nothing and takes no lock: Execute only says what
	// would go.
	DryRun bool
	// OnOutcome and OnFailure, when not nil, are called as the work goes,
	// with each outcome and each failure as it is added to the result, so
	// that a caller can print progress.
	OnOutcome func(Outcome)
	OnFailure func(Failure)
}

// Execute removes from st the checkpoints p does not keep, holding each
// container's lock while it removes that container's. A container it cannot
// lock, or a checkpoint it cannot remove, is a failure in the result, and
// the others go on. Before removing anything of a container it checks that
// the checkpoints retention keeps are still there, so that a concurrent ckpt
// rm cannot leave the container without any. When ctx is cancelled it
// stops, releases the lock, and returns the result so far with ctx's error.
func (p *Plan) Execute(ctx context.Context, st *store.Store, opts Options) (*Result, error) {
	res := &Result{DryRun: opts.DryRun}
	outcome := func(v policy.Verdict, a Action, err error) {
		o := Outcome{Verdict: v, Action: a, Err: err}
		res.Outcomes = append(res.Outcomes, o)
		if a == Removed {
			res.Removed++
			res.Freed += v.Size
		}
		if opts.OnOutcome != nil {
			opts.OnOutcome(o)
		}
	}
	failure := func(container, name string, err error) {
		f := Failure{Container: container, Name: name, Err: err}
		res.Failures = append(res.Failures, f)
		if opts.OnFailure != nil {
			opts.OnFailure(f)
		}
	}

	// The verdicts are grouped by container: one group, one lock.
	for start := 0; start < len(p.Verdicts); {
		end := start + 1
		for end < len(p.Verdicts) && p.Verdicts[end].Container == p.Verdicts[start].Container {
			end++
		}
		group := p.Verdicts[start:end]
		start = end

		if opts.DryRun || !anyToRemove(group) {
			for _, v := range group {
				if v.Keep {
					outcome(v, Kept, nil)
				} else {
					outcome(v, Removed, nil)
				}
			}
			continue
		}
		c := group[0].Container
		lock, err := st.Lock(c, "prune")
		if err != nil {
			failure(c, "", err)
			for _, v := range group {
				if v.Keep {
					outcome(v, Kept, nil)
				} else {
					outcome(v, Failed, err)
				}
			}
			continue
		}
		if err := keptStillThere(st, group); err != nil {
			lock.Unlock()
			failure(c, "", err)
			for _, v := range group {
				if v.Keep {
					outcome(v, Unsettled, err)
				} else {
					outcome(v, Failed, err)
				}
			}
			continue
		}
		for _, v := range group {
			if v.Keep {
				outcome(v, Kept, nil)
				continue
			}
			if err := ctx.Err(); err != nil {
				lock.Unlock()
				return res, err
			}
			if err := st.Remove(v.Container, v.Name); err != nil {
				failure(v.Container, v.Name, err)
				outcome(v, Failed, err)
				continue
			}
			outcome(v, Removed, nil)
		}
		lock.Unlock()
	}
	if !opts.DryRun && res.Removed > 0 {
		n, freed, _, err := st.CollectChunks()
		if err != nil {
			failure("", "", fmt.Errorf("unused chunks: %w", err))
		}
		res.Chunks, res.ChunksFreed = n, freed
	}
	return res, nil
}

func anyToRemove(vs []policy.Verdict) bool {
	for _, v := range vs {
		if !v.Keep {
			return true
		}
	}
	return false
}

// keptStillThere checks, under the container's lock, that the checkpoints
// retention keeps are still complete.
func keptStillThere(st *store.Store, group []policy.Verdict) error {
	for _, v := range group {
		if !v.Keep {
			continue
		}
		if _, err := st.Load(v.Container, v.Name); err != nil {
			return hint.Wrap(fmt.Errorf("checkpoints of %s changed during prune; none removed: %w", v.Container, err),
				"run ckpt prune again")
		}
	}
	return nil
}
