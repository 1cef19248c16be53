package app

import (
	"bytes"
	"context"
	"encoding/json"
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

var pruneNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const pruneDay = 24 * time.Hour

// pruneCheckpoint writes a complete checkpoint of container created age
// before pruneNow whose one file holds size bytes.
func pruneCheckpoint(t *testing.T, st *store.Store, container, name string, age time.Duration, size int) {
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
	manifest, err := p.Manifest(&format.Manifest{Created: pruneNow.Add(-age), Mode: format.ModeCold})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(manifest); err != nil {
		t.Fatal(err)
	}
}

// The removals themselves are tested in internal/retention; these tests
// check what prune prints.

// pruneStore returns a store holding, besides an incomplete checkpoint of web
// and a damaged old one of db that prune must never touch:
//
//	db:d1   512 KiB  20 days old
//	db:d2   512 KiB   1 day
//	web:w1    1 MiB  30 days
//	web:w2    1 MiB  10 days
//	web:w3    1 MiB   2 days
//	web:w4    1 MiB   1 hour
func pruneStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	pruneCheckpoint(t, st, "db", "d1", 20*pruneDay, 512<<10)
	pruneCheckpoint(t, st, "db", "d2", pruneDay, 512<<10)
	pruneCheckpoint(t, st, "db", "d0", 90*pruneDay, 1<<20)
	if err := os.WriteFile(filepath.Join(pruneCkptDir(st, "db", "d0"), format.ManifestSumFile), []byte("0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pruneCheckpoint(t, st, "web", "w2", 10*pruneDay, 1<<20)
	pruneCheckpoint(t, st, "web", "w1", 30*pruneDay, 1<<20)
	pruneCheckpoint(t, st, "web", "w4", time.Hour, 1<<20)
	pruneCheckpoint(t, st, "web", "w3", 2*pruneDay, 1<<20)
	if _, err := st.Begin("web", "pending"); err != nil {
		t.Fatal(err)
	}
	return st
}

func pruneCkptDir(st *store.Store, container, name string) string {
	return filepath.Join(st.Root, format.ContainersDir, container, format.CheckpointsDir, name)
}

func runPrune(t *testing.T, ctx context.Context, st *store.Store, r policy.Retention, container string, dryRun bool) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = prune(ctx, &out, &errOut, st, &policy.Policy{Retention: r}, container, dryRun, pruneNow)
	return out.String(), errOut.String(), err
}

func TestPrune(t *testing.T) {
	st := pruneStore(t)
	r := policy.Retention{KeepLast: 3, MaxAge: 7 * pruneDay}

	stdout, stderr, err := runPrune(t, context.Background(), st, r, "", true)
	if err != nil || stderr != "" {
		t.Fatalf("prune --dry-run: %v, stderr %q", err, stderr)
	}
	want := `would remove db:d1   512.0 KiB  (older than max_age 7d)
keep         db:d2   512.0 KiB  (newest of db)
would remove web:w1    1.0 MiB  (beyond keep_last 3)
would remove web:w2    1.0 MiB  (older than max_age 7d)
keep         web:w3    1.0 MiB  (within retention)
keep         web:w4    1.0 MiB  (newest of web)
would remove 3 checkpoints, freeing 2.5 MiB
`
	if stdout != want {
		t.Errorf("prune --dry-run stdout:\n%s\nwant:\n%s", stdout, want)
	}

	// One container: the others are not even listed.
	stdout, stderr, err = runPrune(t, context.Background(), st, r, "web", true)
	want = `would remove web:w1  1.0 MiB  (beyond keep_last 3)
would remove web:w2  1.0 MiB  (older than max_age 7d)
keep         web:w3  1.0 MiB  (within retention)
keep         web:w4  1.0 MiB  (newest of web)
would remove 2 checkpoints, freeing 2.0 MiB
`
	if err != nil || stderr != "" || stdout != want {
		t.Errorf("prune --dry-run web = %v, stderr %q, stdout:\n%s\nwant:\n%s", err, stderr, stdout, want)
	}

	stdout, stderr, err = runPrune(t, context.Background(), st, r, "", false)
	if err != nil || stderr != "" {
		t.Fatalf("prune: %v, stderr %q", err, stderr)
	}
	want = `remove db:d1   512.0 KiB  (older than max_age 7d)
keep   db:d2   512.0 KiB  (newest of db)
remove web:w1    1.0 MiB  (beyond keep_last 3)
remove web:w2    1.0 MiB  (older than max_age 7d)
keep   web:w3    1.0 MiB  (within retention)
keep   web:w4    1.0 MiB  (newest of web)
removed 3 checkpoints, freed 2.5 MiB
`
	if stdout != want {
		t.Errorf("prune stdout:\n%s\nwant:\n%s", stdout, want)
	}

	// Again: nothing left to remove.
	stdout, stderr, err = runPrune(t, context.Background(), st, r, "", false)
	want = `keep   db:d2   512.0 KiB  (newest of db)
keep   web:w3    1.0 MiB  (within retention)
keep   web:w4    1.0 MiB  (newest of web)
removed 0 checkpoints, freed 0 B
`
	if err != nil || stderr != "" || stdout != want {
		t.Errorf("second prune = %v, stderr %q, stdout:\n%s\nwant:\n%s", err, stderr, stdout, want)
	}
}

func TestPruneMaxBytes(t *testing.T) {
	st := pruneStore(t)
	// 5 MiB in all; the newest ones make 1.5 MiB.
	stdout, stderr, err := runPrune(t, context.Background(), st, policy.Retention{MaxBytes: 2 << 20}, "", false)
	want := `remove db:d1   512.0 KiB  (over max_bytes 2.0 MiB)
keep   db:d2   512.0 KiB  (newest of db)
remove web:w1    1.0 MiB  (over max_bytes 2.0 MiB)
remove web:w2    1.0 MiB  (over max_bytes 2.0 MiB)
remove web:w3    1.0 MiB  (over max_bytes 2.0 MiB)
keep   web:w4    1.0 MiB  (newest of web)
removed 4 checkpoints, freed 3.5 MiB
`
	if err != nil || stderr != "" || stdout != want {
		t.Errorf("prune = %v, stderr %q, stdout:\n%s\nwant:\n%s", err, stderr, stdout, want)
	}
}

func TestPruneOneCheckpoint(t *testing.T) {
	st := pruneStore(t)
	stdout, stderr, err := runPrune(t, context.Background(), st, policy.Retention{KeepLast: 1}, "db", false)
	want := `remove db:d1  512.0 KiB  (beyond keep_last 1)
keep   db:d2  512.0 KiB  (newest of db)
removed 1 checkpoint, freed 512.0 KiB
`
	if err != nil || stderr != "" || stdout != want {
		t.Errorf("prune db = %v, stderr %q, stdout:\n%s\nwant:\n%s", err, stderr, stdout, want)
	}
}

func TestPruneEmpty(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, container := range []string{"", "web"} {
		stdout, stderr, err := runPrune(t, context.Background(), st, policy.Retention{KeepLast: 1}, container, false)
		if err != nil || stderr != "" || stdout != "removed 0 checkpoints, freed 0 B\n" {
			t.Errorf("prune %q of an empty store = %v, %q, %q", container, err, stdout, stderr)
		}
	}
}

func TestPruneBusy(t *testing.T) {
	st := pruneStore(t)
	l, err := st.Lock("web", "save")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	stdout, stderr, err := runPrune(t, context.Background(), st, policy.Retention{KeepLast: 3, MaxAge: 7 * pruneDay}, "", false)
	if !errors.Is(err, errReported) {
		t.Errorf("prune with web busy returned %v, want errReported", err)
	}
	// web's removals are skipped, db's are done.
	want := `remove db:d1   512.0 KiB  (older than max_age 7d)
keep   db:d2   512.0 KiB  (newest of db)
keep   web:w3    1.0 MiB  (within retention)
keep   web:w4    1.0 MiB  (newest of web)
removed 1 checkpoint, freed 512.0 KiB
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	wantPrefix := fmt.Sprintf("ckpt: error: container web is busy: ckpt save (pid %d) since ", os.Getpid())
	if !strings.HasPrefix(stderr, wantPrefix) || !strings.HasSuffix(stderr, "\nckpt: hint: wait until it finishes and try again\n") ||
		strings.Count(stderr, "\n") != 2 {
		t.Errorf("stderr %q", stderr)
	}
	if code := report(new(bytes.Buffer), err); code != exitError {
		t.Errorf("exit code %d, want %d", code, exitError)
	}
}

func TestPruneInterrupted(t *testing.T) {
	st := pruneStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, stderr, err := runPrune(t, ctx, st, policy.Retention{KeepLast: 1}, "", false)
	if !errors.Is(err, context.Canceled) || stderr != "" {
		t.Errorf("prune after cancel = %v, stderr %q", err, stderr)
	}
}

func TestPruneCommand(t *testing.T) {
	tmp := t.TempDir()
	writePolicy := func(name, text string) string {
		path := filepath.Join(tmp, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	empty := writePolicy("empty.yaml", "parallel: 3\n")
	keep1 := writePolicy("keep1.yaml", "retention:\n  keep_last: 1\n")
	bad := writePolicy("bad.yaml", "retention:\n  keep_last: -1\n")
	dir := filepath.Join(tmp, "store")

	t.Run("usage", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"a", "b"}, "prune takes at most one container name"},
			{[]string{"../x"}, `invalid container name "../x"`},
			{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		} {
			code, stdout, stderr := run(t, append([]string{"--store", dir, "prune", "--policy", keep1}, tc.args...)...)
			if code != exitUsage || stdout != "" || stderr != usage("prune", tc.want) {
				t.Errorf("prune %v = %d, %q, %q", tc.args, code, stdout, stderr)
			}
		}
	})

	t.Run("no retention", func(t *testing.T) {
		code, stdout, stderr := run(t, "--store", dir, "prune", "--policy", empty)
		if code != exitOK || stderr != "" || stdout != "the policy keeps every checkpoint (no retention set in "+empty+")\n" {
			t.Errorf("prune = %d, %q, %q", code, stdout, stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("prune with no retention opened the store: %v", err)
		}
	})

	t.Run("bad policy", func(t *testing.T) {
		for _, path := range []string{bad, filepath.Join(tmp, "missing.yaml")} {
			code, stdout, stderr := run(t, "--store", dir, "prune", "--policy", path)
			if code != exitError || stdout != "" || !strings.HasPrefix(stderr, "ckpt: error: ") || !strings.Contains(stderr, path) {
				t.Errorf("prune --policy %s = %d, %q, %q", path, code, stdout, stderr)
			}
		}
	})

	t.Run("help", func(t *testing.T) {
		code, stdout, _ := run(t, "prune", "--help")
		for _, w := range []string{"ckpt prune [command options] [CONTAINER]", "--dry-run", "--policy FILE", policy.DefaultFile} {
			if code != exitOK || !strings.Contains(stdout, w) {
				t.Errorf("prune --help = %d, lacks %q:\n%s", code, w, stdout)
			}
		}
	})

	t.Run("prune", func(t *testing.T) {
		st, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		// Created times are relative to the real clock here.
		now := time.Now()
		for i, name := range []string{"old", "mid", "new"} {
			pruneCheckpoint(t, st, "web", name, pruneNow.Sub(now)+time.Duration(3-i)*time.Hour, 100)
		}
		code, stdout, stderr := run(t, "--store", dir, "prune", "--dry-run", "--policy", keep1, "web")
		want := `would remove web:old  100 B  (beyond keep_last 1)
would remove web:mid  100 B  (beyond keep_last 1)
keep         web:new  100 B  (newest of web)
would remove 2 checkpoints, freeing 200 B
`
		if code != exitOK || stderr != "" || stdout != want {
			t.Errorf("prune --dry-run = %d, stderr %q, stdout:\n%s\nwant:\n%s", code, stderr, stdout, want)
		}
		code, stdout, stderr = run(t, "--store", dir, "prune", "--policy", keep1)
		want = `remove web:old  100 B  (beyond keep_last 1)
remove web:mid  100 B  (beyond keep_last 1)
keep   web:new  100 B  (newest of web)
removed 2 checkpoints, freed 200 B
`
		if code != exitOK || stderr != "" || stdout != want {
			t.Errorf("prune = %d, stderr %q, stdout:\n%s\nwant:\n%s", code, stderr, stdout, want)
		}
		code, stdout, stderr = run(t, "--store", dir, "prune", "--json", "--policy", keep1)
		lines := jsonLines(t, stdout)
		if code != exitOK || stderr != "" || len(lines) != 2 || lines[0]["action"] != "keep" || lines[0]["ref"] != "web:new" ||
			lines[1]["type"] != "summary" || lines[1]["removed"] != json.Number("0") || lines[1]["kept"] != json.Number("1") {
			t.Errorf("prune --json = %d, %q, %q", code, stdout, stderr)
		}
		ents, err := st.List("web")
		if err != nil || len(ents) != 1 || ents[0].Name != "new" {
			t.Errorf("after prune: %v, %+v", err, ents)
		}
	})
}
