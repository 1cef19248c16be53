package retention

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/policy"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// checkpoint writes a complete checkpoint of container created age before
// now whose one file holds size bytes.
func checkpoint(t *testing.T, st *store.Store, container, name string, age time.Duration, size int) {
	t.Helper()
	p, err := st.Begin(container, name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := p.Create("data")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := p.Manifest(&format.Manifest{Created: now.Add(-age), Mode: format.ModeCold})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(raw); err != nil {
		t.Fatal(err)
	}
}

// testStore returns a store holding, besides an incomplete checkpoint of web
// and a damaged old one of db that retention must never touch:
//
//	db:d1   512 KiB  20 days old
//	db:d2   512 KiB   1 day
//	web:w1    1 MiB  30 days
//	web:w2    1 MiB  10 days
//	web:w3    1 MiB   2 days
//	web:w4    1 MiB   1 hour
func testStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	checkpoint(t, st, "db", "d1", 20*day, 512<<10)
	checkpoint(t, st, "db", "d2", day, 512<<10)
	checkpoint(t, st, "db", "d0", 90*day, 1<<20)
	if err := os.WriteFile(filepath.Join(ckptDir(st, "db", "d0"), format.ManifestSumFile), []byte("0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkpoint(t, st, "web", "w2", 10*day, 1<<20)
	checkpoint(t, st, "web", "w1", 30*day, 1<<20)
	checkpoint(t, st, "web", "w4", time.Hour, 1<<20)
	checkpoint(t, st, "web", "w3", 2*day, 1<<20)
	if _, err := st.Begin("web", "pending"); err != nil {
		t.Fatal(err)
	}
	return st
}

func ckptDir(st *store.Store, container, name string) string {
	return filepath.Join(st.Root, format.ContainersDir, container, format.CheckpointsDir, name)
}

// wantDirs fails unless exactly the checkpoint directories of want (as
// "container:dir") exist in the store.
func wantDirs(t *testing.T, st *store.Store, want ...string) {
	t.Helper()
	var got []string
	for _, c := range []string{"db", "web"} {
		ents, err := os.ReadDir(filepath.Join(st.Root, format.ContainersDir, c, format.CheckpointsDir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			got = append(got, c+":"+e.Name())
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("checkpoint directories:\n got %v\nwant %v", got, want)
	}
}

var allDirs = []string{"db:d0", "db:d1", "db:d2", "web:.tmp-pending", "web:w1", "web:w2", "web:w3", "web:w4"}

// run plans and executes r, checking that the callbacks saw what the result
// holds, and returns the result's outcomes as "container:name action".
func run(t *testing.T, ctx context.Context, st *store.Store, r policy.Retention, container string, dryRun bool) (*Result, []string, error) {
	t.Helper()
	plan, err := NewPlan(st, r, container, now)
	if err != nil {
		t.Fatal(err)
	}
	var seen []Outcome
	var failed []Failure
	res, err := plan.Execute(ctx, st, Options{
		DryRun:    dryRun,
		OnOutcome: func(o Outcome) { seen = append(seen, o) },
		OnFailure: func(f Failure) { failed = append(failed, f) },
	})
	if res.DryRun != dryRun || fmt.Sprint(seen) != fmt.Sprint(res.Outcomes) || fmt.Sprint(failed) != fmt.Sprint(res.Failures) {
		t.Errorf("callbacks saw %v and %v; result %+v", seen, failed, res)
	}
	var got []string
	for _, o := range res.Outcomes {
		got = append(got, fmt.Sprintf("%s:%s %s", o.Container, o.Name, o.Action))
	}
	return res, got, err
}

func TestExecute(t *testing.T) {
	st := testStore(t)
	r := policy.Retention{KeepLast: 3, MaxAge: 7 * day}
	want := []string{"db:d1 removed", "db:d2 kept", "web:w1 removed", "web:w2 removed", "web:w3 kept", "web:w4 kept"}

	res, got, err := run(t, context.Background(), st, r, "", true)
	if err != nil || res.Failed() || fmt.Sprint(got) != fmt.Sprint(want) || res.Removed != 3 || res.Freed != 5<<19 {
		t.Errorf("dry run = %v, %+v, %v", err, res, got)
	}
	wantDirs(t, st, allDirs...)

	// One container: the others are not even listed.
	res, got, err = run(t, context.Background(), st, r, "web", true)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want[2:]) || res.Removed != 2 || res.Freed != 2<<20 {
		t.Errorf("dry run of web = %v, %+v, %v", err, res, got)
	}
	wantDirs(t, st, allDirs...)

	res, got, err = run(t, context.Background(), st, r, "", false)
	if err != nil || res.Failed() || fmt.Sprint(got) != fmt.Sprint(want) || res.Removed != 3 || res.Freed != 5<<19 {
		t.Errorf("run = %v, %+v, %v", err, res, got)
	}
	// The damaged and the incomplete checkpoints are still there.
	wantDirs(t, st, "db:d0", "db:d2", "web:.tmp-pending", "web:w3", "web:w4")
	for _, c := range []string{"db", "web"} {
		if _, err := os.Stat(filepath.Join(st.Root, format.ContainersDir, c, format.LockFile)); err != nil {
			t.Errorf("lock file of %s: %v", c, err)
		}
	}

	// Again: nothing left to remove.
	res, got, err = run(t, context.Background(), st, r, "", false)
	if err != nil || res.Failed() || fmt.Sprint(got) != "[db:d2 kept web:w3 kept web:w4 kept]" || res.Removed != 0 || res.Freed != 0 {
		t.Errorf("second run = %v, %+v, %v", err, res, got)
	}
	wantDirs(t, st, "db:d0", "db:d2", "web:.tmp-pending", "web:w3", "web:w4")
}

func TestExecuteMaxBytes(t *testing.T) {
	st := testStore(t)
	// 5 MiB in all; the newest ones make 1.5 MiB.
	res, got, err := run(t, context.Background(), st, policy.Retention{MaxBytes: 2 << 20}, "", false)
	want := "[db:d1 removed db:d2 kept web:w1 removed web:w2 removed web:w3 removed web:w4 kept]"
	if err != nil || res.Failed() || fmt.Sprint(got) != want || res.Removed != 4 || res.Freed != 7<<19 {
		t.Errorf("run = %v, %+v, %v", err, res, got)
	}
	if o := res.Outcomes[0]; o.Reason != "over max_bytes 2.0 MiB" || o.Size != 512<<10 {
		t.Errorf("outcome %+v", o)
	}
	wantDirs(t, st, "db:d0", "db:d2", "web:.tmp-pending", "web:w4")
}

func TestExecuteEmpty(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, container := range []string{"", "web"} {
		res, got, err := run(t, context.Background(), st, policy.Retention{KeepLast: 1}, container, false)
		if err != nil || res.Failed() || got != nil || res.Removed != 0 {
			t.Errorf("run %q on an empty store = %v, %+v", container, err, res)
		}
	}
}

func TestExecuteBusy(t *testing.T) {
	st := testStore(t)
	l, err := st.Lock("web", "save")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	res, got, err := run(t, context.Background(), st, policy.Retention{KeepLast: 3, MaxAge: 7 * day}, "", false)
	// web's removals are skipped, db's are done.
	want := "[db:d1 removed db:d2 kept web:w1 failed web:w2 failed web:w3 kept web:w4 kept]"
	if err != nil || fmt.Sprint(got) != want || res.Removed != 1 || res.Freed != 512<<10 {
		t.Errorf("run with web busy = %v, %+v, %v", err, res, got)
	}
	if len(res.Failures) != 1 || res.Failures[0].Container != "web" || res.Failures[0].Name != "" ||
		!strings.Contains(res.Failures[0].Err.Error(), "container web is busy") || !errors.Is(res.Outcomes[2].Err, res.Failures[0].Err) {
		t.Errorf("failures %+v, outcomes %+v", res.Failures, res.Outcomes)
	}
	wantDirs(t, st, "db:d0", "db:d2", "web:.tmp-pending", "web:w1", "web:w2", "web:w3", "web:w4")
}

func TestExecuteInterrupted(t *testing.T) {
	st := testStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, _, err := run(t, ctx, st, policy.Retention{KeepLast: 1}, "", false)
	if !errors.Is(err, context.Canceled) || res.Failed() || res.Removed != 0 {
		t.Errorf("run after cancel = %v, %+v", err, res)
	}
	wantDirs(t, st, allDirs...)
	// The lock was released.
	l, err := st.Lock("db", "test")
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
}

func TestExecuteChanged(t *testing.T) {
	st := testStore(t)
	plan, err := NewPlan(st, policy.Retention{KeepLast: 2}, "", now)
	if err != nil {
		t.Fatal(err)
	}
	// A concurrent ckpt rm takes w3, which the plan keeps: removing w1 and
	// w2 too would leave web only w4, fewer than retention wants.
	l, err := st.Lock("web", "rm")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Remove("web", "w3"); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	res, err := plan.Execute(context.Background(), st, Options{})
	var got []string
	for _, o := range res.Outcomes {
		got = append(got, fmt.Sprintf("%s:%s %s", o.Container, o.Name, o.Action))
	}
	want := "[db:d1 kept db:d2 kept web:w1 failed web:w2 failed web:w3 unsettled web:w4 unsettled]"
	if err != nil || fmt.Sprint(got) != want || res.Removed != 0 || len(res.Failures) != 1 ||
		res.Failures[0].Container != "web" || !strings.Contains(res.Failures[0].Err.Error(), "checkpoints of web changed during prune; none removed") {
		t.Errorf("Execute = %v, %+v, %v", err, res, got)
	}
	wantDirs(t, st, "db:d0", "db:d1", "db:d2", "web:.tmp-pending", "web:w1", "web:w2", "web:w4")
}
