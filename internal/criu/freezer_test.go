package criu

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFreezeProbe finds the freezer of a process in cgroup v1 and v2
// layouts, reads its state, and gives up where there is none.
func TestFreezeProbe(t *testing.T) {
	write := func(path, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const id = "/docker/5aa0c238ce2c"
	for _, tt := range []struct {
		name, cgroup, file, thawed, frozen string
	}{
		{"v1", "6:freezer:" + id + "\n4:memory:" + id + "\n0::" + id + "\n",
			"freezer" + id + "/freezer.state", "THAWED\n", "FROZEN\n"},
		{"v1, freezing", "3:cpu,freezer:" + id + "\n",
			"freezer" + id + "/freezer.state", "FREEZING\n", "FROZEN\n"},
		{"v2", "0::/system.slice/docker-5aa0c238ce2c.scope\n",
			"system.slice/docker-5aa0c238ce2c.scope/cgroup.events", "populated 1\nfrozen 0\n", "populated 1\nfrozen 1\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proc, fs := t.TempDir(), t.TempDir()
			write(filepath.Join(proc, "42", "cgroup"), tt.cgroup)
			write(filepath.Join(fs, tt.file), tt.thawed)
			probe := freezeProbe(proc, fs, 42)
			if probe == nil {
				t.Fatal("no probe")
			}
			if probe() {
				t.Error("frozen before the freeze")
			}
			write(filepath.Join(fs, tt.file), tt.frozen)
			if !probe() {
				t.Error("not frozen after the freeze")
			}
			must(t, os.Remove(filepath.Join(fs, tt.file)))
			if probe() {
				t.Error("frozen once the cgroup is gone")
			}
		})
	}
	t.Run("no freezer here", func(t *testing.T) {
		proc, fs := t.TempDir(), t.TempDir()
		write(filepath.Join(proc, "42", "cgroup"), "6:freezer:"+id+"\n0::"+id+"\n")
		if freezeProbe(proc, fs, 42) != nil {
			t.Error("a probe for a cgroup file system without the cgroup")
		}
		if freezeProbe(proc, fs, 43) != nil {
			t.Error("a probe for no process")
		}
	})
}
