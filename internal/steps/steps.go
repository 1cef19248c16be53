// Package steps runs an operation that changes things outside the process
// (a container stopped, a volume created) as a list of named steps, each
// with its undo beside it, so that a failure at any point puts back what the
// steps before it changed, in reverse order.
package steps

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/ckpt-dev/ckpt/internal/fault"
)

// Step is one step of an operation.
type Step struct {
	// Name says what the step does, for errors from its undo.
	Name string
	// Do does the step.
	Do func(ctx context.Context) error
	// Undo puts back what Do changed; nil when there is nothing to put back.
	// It runs when this step or a later one fails, so it must cope with a
	// Do that failed halfway, and do nothing when Do changed nothing.
	Undo func(ctx context.Context) error
}

// Run runs the steps in order and stops at the first that fails. It then
// runs the Undo of that step and of every step before it, newest first,
// with a context that is not cancelled (the failure may be a cancelled
// context), and returns the step's error joined with whatever the undos
// returned: the step's error comes first.
func Run(ctx context.Context, steps ...Step) error {
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, undo(ctx, steps[:i]))
		}
		fault.Point("step:" + s.Name)
		if err := s.Do(ctx); err != nil {
			return errors.Join(err, undo(ctx, steps[:i+1]))
		}
	}
	return nil
}

// undo runs the Undo of done, newest first, and joins their errors.
func undo(ctx context.Context, done []Step) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i := len(done) - 1; i >= 0; i-- {
		if done[i].Undo == nil {
			continue
		}
		if err := done[i].Undo(ctx); err != nil {
			errs = append(errs, fmt.Errorf("undo %s: %w", done[i].Name, err))
		}
	}
	return errors.Join(errs...)
}

// Each runs one on every name in turn, until ctx is cancelled, and returns
// the results and an error naming each name whose result failed (failed
// returns the name the result goes by and its error).
func Each[R any](ctx context.Context, names []string, one func(string) R, failed func(R) (string, error)) ([]R, error) {
	var results []R
	var errs []error
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		r := one(n)
		results = append(results, r)
		if name, err := failed(r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(errs) == 1 {
		return results, errs[0]
	}
	return results, errors.Join(errs...)
}

// Together runs fns at the same time and waits for all of them. The first
// to fail cancels the context of the others, and its error is returned. A
// fn that ends its goroutine (runtime.Goexit: how the unit tests kill an
// operation at an engine call, as SIGKILL would) ends the caller's too,
// once the others have returned.
func Together(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu     sync.Mutex
		first  error
		exited bool
		wg     sync.WaitGroup
	)
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			returned := false
			defer func() {
				if !returned {
					mu.Lock()
					exited = true
					mu.Unlock()
					cancel()
				}
			}()
			err := fn(ctx)
			returned = true
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if exited {
		runtime.Goexit()
	}
	return first
}
