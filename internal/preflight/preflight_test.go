package preflight

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/system"

	"github.com/ckpt-dev/ckpt/internal/criu"
)

func TestEngine(t *testing.T) {
	for _, tt := range []struct {
		info    system.Info
		wantErr string
	}{
		{system.Info{ExperimentalBuild: true, Driver: "overlay2"}, ""},
		{system.Info{ExperimentalBuild: false, Driver: "overlay2"}, "experimental features off"},
		{system.Info{ExperimentalBuild: true, Driver: "btrfs"}, "uses the btrfs storage driver"},
		{system.Info{ExperimentalBuild: true}, "uses the (none) storage driver"},
	} {
		err := Engine(tt.info)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v: err = %v, want %q", tt.info, err, tt.wantErr)
		}
	}
}

func TestMemory(t *testing.T) {
	tooOld := errors.New("too old")
	readOnly := errors.New("read-only")
	for _, tt := range []struct {
		criuErr, confErr, want error
		confCalled             bool
	}{
		{nil, nil, nil, true},
		{tooOld, nil, tooOld, false},
		{nil, readOnly, readOnly, true},
	} {
		called := false
		h := Host{
			CRIU:     func() (int, error) { return 40201, tt.criuErr },
			RuncConf: func() error { called = true; return tt.confErr },
		}
		v, err := h.Memory()
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) || v != 40201 || called != tt.confCalled {
			t.Errorf("criu %v, runc.conf %v: version %d, err %v, runc.conf kept %v", tt.criuErr, tt.confErr, v, err, called)
		}
	}
}

// TestNeed: the estimate counts memory, the writable layer and exactly the
// volumes a save captures.
func TestNeed(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	c := &container.InspectResponse{Mounts: []container.MountPoint{
		{Type: "volume", Driver: "local", Source: write("local", 1000)},
		{Type: "volume", Driver: "", Source: write("nodriver", 100000)},
		{Type: "volume", Driver: "nfs", Source: write("nfs", 100000)},
		{Type: "bind", Source: write("bind", 100000)},
	}}
	need, err := Host{}.Need(c, write("upper", 10), 5)
	if err != nil {
		t.Fatal(err)
	}
	if need != 2*5+1000+10 {
		t.Errorf("need %d, want memory 5 twice + local volume 1000 + layer 10", need)
	}
	if _, err := (Host{}).Need(c, filepath.Join(dir, "missing"), 0); err == nil {
		t.Error("a layer that cannot be measured is not an error")
	}
}

func TestSpace(t *testing.T) {
	h := Host{Free: func(string) (int64, error) { return 100 << 20, nil }}
	if err := h.Space("/store", "web", 50<<20); err != nil {
		t.Errorf("50 MiB in 100 MiB: %v", err)
	}
	err := h.Space("/store", "web", 90<<20)
	if err == nil || !strings.Contains(err.Error(), "not enough space in /store to save web: about 90.0 MiB needed, 100.0 MiB free") {
		t.Errorf("90 MiB in 100 MiB (with the margin): %v", err)
	}
	bad := Host{Free: func(string) (int64, error) { return 0, errors.New("no such file") }}
	if err := bad.Space("/x", "web", 1); err == nil {
		t.Error("unmeasurable free space is not an error")
	}
	if _, err := Free(t.TempDir()); err != nil {
		t.Errorf("Free: %v", err)
	}
}

func TestFits(t *testing.T) {
	for _, tt := range []struct {
		need, free int64
		want       bool
	}{
		{0, 16 << 20, true},
		{0, 16<<20 - 1, false},
		{100 << 20, 105<<20 + 16<<20, true},
		{100 << 20, 105<<20 + 16<<20 - 1, false},
		// need+need/20+16 MiB wraps around to a negative number: it
		// fitted in any free space.
		{math.MaxInt64 - 1<<20, 1 << 30, false},
		{math.MaxInt64, math.MaxInt64, false},
		{math.MaxInt64 / 2, math.MaxInt64, true},
		{-1, 1 << 30, false},
	} {
		if got := Fits(tt.need, tt.free); got != tt.want {
			t.Errorf("Fits(%d, %d) = %v", tt.need, tt.free, got)
		}
	}
}

// TestSpaceLarge: a need whose margin wraps around is refused; so is a
// negative one.
func TestSpaceLarge(t *testing.T) {
	h := Host{Free: func(string) (int64, error) { return 1 << 40, nil }}
	for _, need := range []int64{math.MaxInt64, math.MaxInt64 - 16<<20, -1} {
		if err := h.Space("/store", "web", need); err == nil {
			t.Errorf("Space(%d) fits in 1 TiB", need)
		}
	}
}

func TestSumSizes(t *testing.T) {
	for _, tt := range []struct {
		sizes   []int64
		want    int64
		wantErr string
	}{
		{nil, 0, ""},
		{[]int64{1, 2, 3}, 6, ""},
		{[]int64{math.MaxInt64}, math.MaxInt64, ""},
		{[]int64{math.MaxInt64 - 1, 1}, math.MaxInt64, ""},
		{[]int64{math.MaxInt64, 1}, 0, "more than 8 EiB"},
		// Four sizes of 4 EiB wrap around to 0 without a check.
		{[]int64{1 << 62, 1 << 62, 1 << 62, 1 << 62}, 0, "more than 8 EiB"},
		{[]int64{math.MaxInt64, math.MaxInt64, 2}, 0, "more than 8 EiB"},
		{[]int64{5, -1}, 0, "a size is negative (-1)"},
		{[]int64{math.MinInt64, math.MinInt64}, 0, "negative"},
	} {
		got, err := SumSizes(tt.sizes...)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) || got != tt.want {
			t.Errorf("SumSizes(%v) = %d, %v; want %d, %q", tt.sizes, got, err, tt.want, tt.wantErr)
		}
		if strings.Contains(tt.wantErr, "8 EiB") && !errors.Is(err, ErrTooLarge) {
			t.Errorf("SumSizes(%v): %v is not ErrTooLarge", tt.sizes, err)
		}
	}
}

func TestBlocksBytes(t *testing.T) {
	for _, tt := range []struct {
		n    uint64
		size int64
		want int64
	}{
		{0, 4096, 0},
		{10, 4096, 40960},
		{10, 0, 0},
		{math.MaxUint64, 4096, math.MaxInt64},
		{1 << 52, 4096, math.MaxInt64},
		{1<<51 - 1, 4096, (1<<51 - 1) * 4096},
	} {
		if got := blocksBytes(tt.n, tt.size); got != tt.want {
			t.Errorf("blocksBytes(%d, %d) = %d, want %d", tt.n, tt.size, got, tt.want)
		}
	}
}

func TestCompatibleAndOptions(t *testing.T) {
	h := Host{Facts: func() criu.Facts { return criu.Facts{Arch: "amd64"} }}
	if err := h.Compatible(criu.Facts{Arch: "arm64"}); err == nil {
		t.Error("arm64 to amd64 is compatible")
	}
	var got []string
	h.WithRuncOptions = func(extra []string, fn func() error) error { got = extra; return fn() }
	ran := 0
	if err := h.WithOptions(nil, func() error { ran++; return nil }); err != nil || got != nil {
		t.Errorf("no options: err %v, runc.conf touched with %q", err, got)
	}
	if err := h.WithOptions([]string{"cgroup-root /x"}, func() error { ran++; return nil }); err != nil || len(got) != 1 || ran != 2 {
		t.Errorf("options: err %v, got %q, ran %d", err, got, ran)
	}
}

// TestZeroHost: the zero Host is this host, with nothing left nil.
func TestZeroHost(t *testing.T) {
	var h Host
	if f := h.Here(); f.Arch != runtime.GOARCH || f.Kernel == "" {
		t.Errorf("Here() = %+v", f)
	}
	if err := h.Compatible(h.Here()); err != nil {
		t.Errorf("this host is not compatible with itself: %v", err)
	}
	if err := h.Space(t.TempDir(), "web", 0); err != nil {
		t.Errorf("Space: %v", err)
	}
	d := h.withDefaults()
	if d.CRIU == nil || d.RuncConf == nil || d.WithRuncOptions == nil || d.Facts == nil || d.Free == nil || d.Size == nil {
		t.Errorf("defaults left a function nil: %+v", d)
	}
}
