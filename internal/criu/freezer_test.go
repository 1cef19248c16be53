package criu

import (
	"os"
	"path/filepath"
	"slices"
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
	// Thawed again, every thread held by CRIU (in the cgroup and in one
	// below it): nothing runs. One thread not traced, or traced by
	// another tracer, runs.
	for _, tt := range []struct {
		name, list, dir, state string
	}{
		{"v1", "tasks", "freezer" + id, "freezer.state"},
		{"v2", "cgroup.threads", "system.slice/docker-5aa0c238ce2c.scope", "cgroup.events"},
	} {
		t.Run(tt.name+", held by CRIU", func(t *testing.T) {
			proc, fs := t.TempDir(), t.TempDir()
			cg := "6:freezer:" + id + "\n0::" + id + "\n"
			if tt.name == "v2" {
				cg = "0::/system.slice/docker-5aa0c238ce2c.scope\n"
			}
			write(filepath.Join(proc, "42", "cgroup"), cg)
			write(filepath.Join(fs, tt.dir, tt.state), "THAWED\npopulated 1\nfrozen 0\n")
			write(filepath.Join(fs, tt.dir, tt.list), "42\n43\n")
			write(filepath.Join(fs, tt.dir, "sub", tt.list), "44\n")
			write(filepath.Join(proc, "7", "comm"), "criu\n")
			write(filepath.Join(proc, "8", "comm"), "gdb\n")
			tracer := func(tid, by string) {
				write(filepath.Join(proc, tid, "status"), "Name:\tapp\nState:\tt (tracing stop)\nTracerPid:\t"+by+"\n")
			}
			tracer("42", "7")
			tracer("43", "7")
			tracer("44", "0")
			probe := freezeProbe(proc, fs, 42)
			if probe == nil {
				t.Fatal("no probe")
			}
			if probe() {
				t.Error("held while a thread below is not traced")
			}
			tracer("44", "8")
			if probe() {
				t.Error("held while a thread is traced by gdb")
			}
			tracer("44", "7")
			if !probe() {
				t.Error("not held with every thread traced by criu")
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

// TestKillFrozen signals every process of a frozen container's cgroup and
// of the cgroups below it, and none when the cgroup is thawed, is not the
// container's, or cannot be found.
func TestKillFrozen(t *testing.T) {
	write := func(path, s string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte(s), 0o644))
	}
	const id = "5aa0c238ce2c"
	for _, tt := range []struct {
		name, cgroup, dir, state, thawed, frozen string
	}{
		{"v1", "6:freezer:/docker/" + id + "\n0::/docker/" + id + "\n", "freezer/docker/" + id, "freezer.state", "THAWED\n", "FROZEN\n"},
		{"v2", "0::/system.slice/docker-" + id + ".scope\n", "system.slice/docker-" + id + ".scope", "cgroup.events", "populated 1\nfrozen 0\n", "populated 1\nfrozen 1\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proc, fs := t.TempDir(), t.TempDir()
			write(filepath.Join(proc, "42", "cgroup"), tt.cgroup)
			write(filepath.Join(fs, tt.dir, tt.state), tt.thawed)
			write(filepath.Join(fs, tt.dir, "cgroup.procs"), "42\n43\n")
			write(filepath.Join(fs, tt.dir, "sub", "cgroup.procs"), "44\n")
			var killed []int
			kill := func(p int) error { killed = append(killed, p); return nil }
			if n, err := killFrozen(proc, fs, 42, id, kill); n != 0 || err != nil || killed != nil {
				t.Fatalf("thawed: %d, %v, killed %v", n, err, killed)
			}
			write(filepath.Join(fs, tt.dir, tt.state), tt.frozen)
			if n, err := killFrozen(proc, fs, 42, "0123456789ab", kill); n != 0 || err != nil || killed != nil {
				t.Fatalf("another container's id: %d, %v, killed %v", n, err, killed)
			}
			n, err := killFrozen(proc, fs, 42, id, kill)
			must(t, err)
			if n != 3 || !slices.Equal(killed, []int{42, 43, 44}) {
				t.Fatalf("frozen: %d signalled, killed %v", n, killed)
			}
			if n, err := killFrozen(proc, fs, 7, id, kill); n != 0 || err != nil {
				t.Fatalf("no such process: %d, %v", n, err)
			}
		})
	}
}
