package integration

import (
	"strings"
	"testing"
)

// inspect decodes the test app's process from its CRIU images: its command
// line, its memory, the file it holds open and its listening socket.
func TestInspect(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol})
	e.waitCounter(name, 12)
	e.mustCkpt("save", name)

	type report struct {
		Container string
		Mode      string
		Host      struct{ Kernel, Arch string }
		Processes []struct {
			Pid         int
			Comm        string
			Command     []string
			MemoryBytes int64
			Files       []struct {
				Fd     int
				Type   string
				Path   string
				Socket *struct{ State, Local string }
			}
		}
		Volumes []struct{ Name string }
	}
	out := e.mustCkpt("inspect", "--json", name).stdout
	lines := jsonOf[struct{ Report report }](t, out, "result")
	if len(lines) != 1 {
		t.Fatalf("inspect --json: %d result lines\n%s", len(lines), out)
	}
	rep := lines[0].Report
	if rep.Container != name || rep.Mode != "hot" || rep.Host.Arch == "" || len(rep.Processes) == 0 {
		t.Fatalf("report: %+v", rep)
	}
	p := rep.Processes[0]
	if p.Comm != "app" || strings.Join(p.Command, " ") != "/app" || p.MemoryBytes <= 0 {
		t.Fatalf("process: %+v", p)
	}
	var held, listening bool
	for _, f := range p.Files {
		held = held || f.Path == "/tmp/held.txt"
		listening = listening || f.Socket != nil && f.Socket.State == "listening" && strings.HasSuffix(f.Socket.Local, ":8080")
	}
	if !held || !listening {
		t.Fatalf("open files (held %v, listening %v): %+v", held, listening, p.Files)
	}
	if len(rep.Volumes) != 1 || rep.Volumes[0].Name != vol {
		t.Fatalf("volumes: %+v", rep.Volumes)
	}
	text := e.mustCkpt("inspect", name).stdout
	for _, want := range []string{"/tmp/held.txt", "listening", ":8080", vol} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect does not show %q:\n%s", want, text)
		}
	}
}

// doctor on this machine, whose engine and CRIU the suite just used: no
// check fails.
func TestDoctor(t *testing.T) {
	e := newEnv(t)
	r := e.ckpt("doctor", "--json")
	checks := jsonOf[struct{ Check, Status, Finding, Fix string }](t, r.stdout, "item")
	summary := jsonOf[struct{ OK bool }](t, r.stdout, "summary")
	if r.code != 0 || len(checks) < 8 || len(summary) != 1 || !summary[0].OK {
		t.Fatalf("exit %d: %+v", r.code, checks)
	}
	for _, c := range checks {
		if c.Status == "fail" {
			t.Errorf("%s: %s (fix: %s)", c.Check, c.Finding, c.Fix)
		}
	}
}
