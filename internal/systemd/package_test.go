package systemd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The package's units are the units Install writes, but for their first
// lines: what docs/hooks.md shows of the units holds for them too, and
// hook install and uninstall leave them alone.
func TestPackagedUnits(t *testing.T) {
	o := typical()
	o.Binary = "/usr/bin/ckpt"
	units, packaged := Units(o), PackagedUnits(o)
	if len(packaged) != len(units) {
		t.Fatalf("%d packaged units, want %d", len(packaged), len(units))
	}
	dir := t.TempDir()
	for name, u := range units {
		p := packaged[name]
		if first, _, _ := strings.Cut(p, "\n"); first != PackageMarker {
			t.Errorf("%s starts with %q", name, first)
		}
		if strings.Contains(p, Marker) {
			t.Errorf("packaged %s holds %q", name, Marker)
		}
		if !strings.HasSuffix(p, strings.TrimPrefix(u, Marker+"\n")) {
			t.Errorf("packaged %s is not %s after its first lines:\n%s", name, name, p)
		}
		if !slices.Equal(lines(p), lines(u)) {
			t.Errorf("packaged %s has other settings than Install writes", name)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		if ours, err := IsOurs(path); err != nil || ours {
			t.Errorf("IsOurs(packaged %s) = %v, %v", name, ours, err)
		}
	}
	if removed, err := Uninstall(dir); err != nil || len(removed) > 0 {
		t.Errorf("Uninstall removed the package's units: %q, %v", removed, err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "hooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	if header := PackageMarker + "\n" + packageNote; !strings.Contains(string(doc), "```ini\n"+header+"```\n") || !strings.Contains(string(doc), PackageDir) {
		t.Errorf("docs/hooks.md does not show the first lines of the package's units, and where they are:\n%s", header)
	}
}

func TestDisarm(t *testing.T) {
	run := t.TempDir()
	if p, err := Rearm(run); err != nil || p != "" {
		t.Errorf("Rearm with nothing to remove: %q, %v", p, err)
	}
	p, err := Disarm(run)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(run, ShutdownUnit+".d", "ckpt-hook-uninstall.conf"); p != want {
		t.Errorf("Disarm wrote %s, want %s", p, want)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(string(data)); !slices.Equal(got, []string{"[Service]", "ExecStop="}) {
		t.Errorf("the drop-in sets %q", got)
	}
	if again, err := Disarm(run); err != nil || again != p {
		t.Errorf("Disarm again: %q, %v", again, err)
	}
	if got, err := Rearm(run); err != nil || got != p {
		t.Errorf("Rearm: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Dir(p)); !os.IsNotExist(err) {
		t.Errorf("Rearm left the drop-in directory: %v", err)
	}

	// Someone else's drop-in stays, and so does the directory.
	if _, err := Disarm(run); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(filepath.Dir(p), "other.conf")
	if err := os.WriteFile(other, []byte("[Service]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Rearm(run); err != nil || got != p {
		t.Errorf("Rearm: %q, %v", got, err)
	}
	if got := files(t, filepath.Dir(p)); !slices.Equal(got, []string{"other.conf"}) {
		t.Errorf("left %q", got)
	}
}
