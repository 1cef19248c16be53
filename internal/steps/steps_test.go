package steps

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"testing"
)

func TestRun(t *testing.T) {
	boom := errors.New("boom")
	undoFailed := errors.New("undo failed")
	tests := []struct {
		name     string
		failAt   int // index of the failing step, -1 for none
		undoErr  int // index of a failing undo, -1 for none
		cancelAt int // cancel the context before this step, -1 for none
		wantLog  []string
		wantErrs []error
	}{
		{"all pass", -1, -1, -1, []string{"do 0", "do 1", "do 2"}, nil},
		{"first fails", 0, -1, -1, []string{"do 0", "undo 0"}, []error{boom}},
		{"last fails, earlier undone newest first", 2, -1, -1,
			[]string{"do 0", "do 1", "do 2", "undo 2", "undo 1", "undo 0"}, []error{boom}},
		{"an undo fails, the others still run", 2, 1, -1,
			[]string{"do 0", "do 1", "do 2", "undo 2", "undo 1", "undo 0"}, []error{boom, undoFailed}},
		{"cancelled between steps", -1, -1, 2,
			[]string{"do 0", "do 1", "undo 1", "undo 0"}, []error{context.Canceled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var log []string
			var ss []Step
			for i := range 3 {
				ss = append(ss, Step{
					Name: string(rune('a' + i)),
					Do: func(ctx context.Context) error {
						log = append(log, "do "+string(rune('0'+i)))
						if i+1 == tt.cancelAt {
							cancel()
						}
						if i == tt.failAt {
							return boom
						}
						return nil
					},
					Undo: func(ctx context.Context) error {
						if ctx.Err() != nil {
							t.Errorf("undo %d ran with a cancelled context", i)
						}
						log = append(log, "undo "+string(rune('0'+i)))
						if i == tt.undoErr {
							return undoFailed
						}
						return nil
					},
				})
			}
			err := Run(ctx, ss...)
			if !reflect.DeepEqual(log, tt.wantLog) {
				t.Errorf("ran %q, want %q", log, tt.wantLog)
			}
			if tt.wantErrs == nil && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want it to hold %v", err, want)
				}
			}
			if tt.undoErr >= 0 && err != nil && err.Error() != "boom\nundo b: undo failed" {
				t.Errorf("err = %q: the step's error must come first, then each failed undo by name", err)
			}
		})
	}
}

func TestEach(t *testing.T) {
	type result struct {
		name string
		err  error
	}
	boom := errors.New("boom")
	one := func(n string) result {
		if n == "b" || n == "c" {
			return result{n, boom}
		}
		return result{n, nil}
	}
	failed := func(r result) (string, error) { return r.name, r.err }
	rs, err := Each(context.Background(), []string{"a", "b"}, one, failed)
	if len(rs) != 2 || err == nil || err.Error() != "b: boom" || !errors.Is(err, boom) {
		t.Errorf("one failure: %v, %v", rs, err)
	}
	rs, err = Each(context.Background(), []string{"a", "b", "c"}, one, failed)
	if len(rs) != 3 || err == nil || err.Error() != "b: boom\nc: boom" {
		t.Errorf("two failures: %v, %q", rs, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rs, err = Each(ctx, []string{"a"}, one, failed)
	if len(rs) != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, %v", rs, err)
	}
}

// TestTogether: all run at once; the first error is returned and cancels
// the others; a fn that ends its goroutine ends the caller's too.
func TestTogether(t *testing.T) {
	boom := errors.New("boom")
	a, b := make(chan struct{}), make(chan struct{})
	var cancelled bool
	err := Together(context.Background(),
		func(ctx context.Context) error {
			close(a)
			<-b // both run at once
			<-ctx.Done()
			cancelled = true
			return ctx.Err()
		},
		func(ctx context.Context) error {
			close(b)
			<-a
			return boom
		},
	)
	if err != boom || !cancelled {
		t.Errorf("err %v, the other cancelled %v", err, cancelled)
	}
	if err := Together(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Errorf("nothing failed: %v", err)
	}

	returned := make(chan bool)
	go func() {
		defer func() { returned <- false }()
		Together(context.Background(), func(context.Context) error { runtime.Goexit(); return nil })
		returned <- true
	}()
	if <-returned {
		t.Error("Together returned after a fn ended its goroutine")
	}
}
