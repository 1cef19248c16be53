package integration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// A second save of a container whose memory changed a little shares the
// chunks of everything that did not change with the first; removing the
// first keeps what the second needs (it resumes with its memory into a
// removed container), and removing both leaves no chunk behind.
func TestSecondSaveSharesChunks(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol, allocMB: 64})
	e.waitCounter(name, 2)
	first := e.mustCkpt("save", "--leave-running", name+":first")
	t.Logf("first save: %s", first.stdout)
	if _, code := e.call(name, "POST", "/touch?pct=10"); code != 200 {
		t.Fatalf("POST /touch: %d", code)
	}
	before := e.waitCounter(name, e.waitState(name).Counter)
	e.mustCkpt("save", name+":second")

	st, err := store.Open(e.store)
	if err != nil {
		t.Fatal(err)
	}
	chunks := func(ckName string) (map[string]bool, int) {
		ck, err := st.Load(name, ckName)
		if err != nil {
			t.Fatal(err)
		}
		// The volume and the layer were captured while CRIU dumped: the
		// first save paused the app, the second saw CRIU freeze it
		// (criu.FreezeProbe found its cgroup). The resume below shows the
		// volume matches the memory.
		if !slices.ContainsFunc(ck.Manifest.Timings, func(t format.Timing) bool { return t.Phase == format.PhaseFrozen }) {
			t.Errorf("%s: the capture did not begin during the checkpoint (timings %+v)", ckName, ck.Manifest.Timings)
		}
		set, n := map[string]bool{}, 0
		for _, f := range ck.Manifest.Files {
			if strings.HasPrefix(f.Path, format.ImagesDir+"/pages-") {
				if f.Chunks == nil {
					t.Fatalf("%s: %s is not in chunks", ckName, f.Path)
				}
				for _, c := range f.Chunks {
					set[c.SHA256] = true
					n++
				}
			}
		}
		return set, n
	}
	one, _ := chunks("first")
	two, n := chunks("second")
	shared := 0
	for sum := range two {
		if one[sum] {
			shared++
		}
	}
	t.Logf("the second save's memory: %d chunks, %d of them shared with the first", n, shared)
	// 10% of the app's ballast was rewritten, and the Go runtime's own
	// pages move a little: most chunks must be the first's.
	if shared*2 < len(two) {
		t.Fatalf("only %d of the second save's %d memory chunks are the first's", shared, len(two))
	}

	rm := e.mustCkpt("rm", name+":first")
	if !strings.Contains(rm.stdout, "unused chunks") {
		t.Errorf("ckpt rm of the first checkpoint removed no chunk:\n%s", rm.stdout)
	}
	removeContainer(t, name)
	if err := docker.VolumeRemove(context.Background(), vol, false); err != nil {
		t.Fatal(err)
	}
	e.mustCkpt("resume", name)
	after := e.assertContinues(name, before)
	// Two lines of history past the resume: the volume was captured with
	// the memory, neither before nor after it.
	e.waitCounter(name, after.Counter+20)
	e.assertHistoryWhole(name, before.ID)

	e.mustCkpt("rm", "--all", name)
	if _, err := os.Lstat(filepath.Join(e.store, format.ChunksDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("chunks are left with no checkpoint: %v", err)
	}
}

// assertHistoryWhole checks the test app's /data/history.log: a line every
// 10 ticks of the counter, all of the app's run id, none missing, none
// twice. A volume captured before the processes were frozen misses lines
// the memory remembers writing; one captured after they ran on has lines
// the memory writes again.
func (e *env) assertHistoryWhole(name, id string) {
	e.t.Helper()
	history, code := e.call(name, "GET", "/read?path=/data/history.log")
	if code != 200 {
		e.t.Fatalf("GET history.log: %d", code)
	}
	var last int64
	for i, line := range strings.Split(strings.TrimSpace(history), "\n") {
		var lineID string
		var n int64
		if _, err := fmt.Sscanf(line, "%s %d", &lineID, &n); err != nil || lineID != id || (i > 0 && n != last+10) {
			e.t.Fatalf("history.log line %d is %q after counter %d (run %s):\n%s", i+1, line, last, id, history)
		}
		last = n
	}
}
