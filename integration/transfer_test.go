package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

// export moves a container to "another host": a second, empty store, after
// the container and its volume are gone; resume brings back the same memory.
func TestExportImportRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		export  []string
		importF []string
	}{
		{"zstd", nil, nil},
		{"none", []string{"--compress", "none"}, nil},
		{"age", []string{"--recipient", "KEY.pub"}, []string{"--identity", "KEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			name, vol := e.name("app"), e.name("data")
			e.startApp(name, appOpts{volume: vol})
			before := e.waitCounter(name, 12)
			history, _ := e.call(name, "GET", "/read?path=/data/history.log")
			e.mustCkpt("save", name)

			dir := t.TempDir()
			key := filepath.Join(dir, "key")
			if tc.name == "age" {
				if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
					t.Fatalf("ssh-keygen: %v %s", err, out)
				}
			}
			subst := func(args []string) []string {
				out := make([]string, len(args))
				for i, a := range args {
					out[i] = strings.ReplaceAll(a, "KEY", key)
				}
				return out
			}
			archive := filepath.Join(dir, name+".ckpt")
			e.mustCkpt(append([]string{"export", name, "-o", archive}, subst(tc.export)...)...)
			if st, err := os.Stat(archive); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("archive: %v %v", st, err)
			}

			removeContainer(t, name)
			if err := docker.VolumeRemove(context.Background(), vol, false); err != nil {
				t.Fatal(err)
			}
			e.store = t.TempDir() // the other host's store
			if tc.name == "age" {
				r := e.ckpt("import", archive)
				if r.code != 1 || !strings.Contains(r.stderr, "the archive is encrypted") {
					t.Fatalf("import without a key: exit %d %s", r.code, r.stderr)
				}
				other := filepath.Join(dir, "other")
				exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).Run()
				r = e.ckpt("import", "--identity", other, archive)
				if r.code != 1 || !strings.Contains(r.stderr, "cannot decrypt the archive") {
					t.Fatalf("import with the wrong key: exit %d %s", r.code, r.stderr)
				}
				if ls := e.mustCkpt("ls").stdout; strings.Contains(ls, name) {
					t.Fatalf("a refused import left something:\n%s", ls)
				}
			}
			e.mustCkpt(append(append([]string{"import"}, subst(tc.importF)...), archive)...)
			e.mustCkpt("resume", name)
			e.assertContinues(name, before)
			if got, _ := e.call(name, "GET", "/read?path=/data/history.log"); !strings.HasPrefix(got, history) {
				t.Fatal("the volume's history did not move")
			}
		})
	}
}

// An archive with one flipped byte, or cut short, is refused and nothing is
// written to the store.
func TestImportDamagedArchive(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	e.waitCounter(name, 2)
	e.mustCkpt("save", name)
	archive := filepath.Join(t.TempDir(), "a.ckpt")
	e.mustCkpt("export", "--compress", "none", "-o", archive, name)
	good, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	e.store = t.TempDir()
	for _, tc := range []struct {
		what string
		data []byte
		want string
	}{
		{"flipped byte", func() []byte { b := append([]byte(nil), good...); b[len(b)/2] ^= 0x40; return b }(), "the archive is "},
		{"truncated", good[:len(good)*2/3], "the archive is truncated"},
	} {
		path := filepath.Join(t.TempDir(), "bad.ckpt")
		os.WriteFile(path, tc.data, 0o600)
		r := e.ckpt("import", path)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d %q", tc.what, r.code, r.stderr)
		}
		if ents, _ := filepath.Glob(filepath.Join(e.store, "containers", "*", "checkpoints", "*")); len(ents) > 0 {
			t.Errorf("%s: the store holds %v", tc.what, ents)
		}
	}
}

// An imported checkpoint whose container asks for more than a plain one
// (here an added capability and a bind mount of a host directory) is listed
// at import and refused by resume, which creates nothing, until --trust.
func TestImportUntrusted(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	hostDir := t.TempDir()
	e.startApp(name, appOpts{host: func(hc *container.HostConfig) {
		hc.CapAdd = []string{"NET_ADMIN"}
		hc.Binds = append(hc.Binds, hostDir+":/hostdir")
	}})
	before := e.waitCounter(name, 3)
	e.mustCkpt("save", name)
	archive := filepath.Join(t.TempDir(), "a.ckpt")
	e.mustCkpt("export", "-o", archive, name)
	removeContainer(t, name)

	e.store = t.TempDir() // the other host's store
	r := e.mustCkpt("import", archive)
	for _, want := range []string{"resume it with: ckpt resume --trust " + name, "  capability CAP_NET_ADMIN\n", "  bind mount " + hostDir + ":/hostdir\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("import output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = e.ckpt("resume", name)
	want := fmt.Sprintf("ckpt: error: checkpoint %s:", name)
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "was imported, and it asks for more than a plain container: capability CAP_NET_ADMIN; bind mount "+hostDir+":/hostdir") ||
		!strings.Contains(r.stderr, "resume with --trust") {
		t.Fatalf("untrusted resume: exit %d\n%s", r.code, r.stderr)
	}
	if e.inspect(name) != nil {
		t.Fatal("the refused resume created the container")
	}
	if r := e.mustCkpt("inspect", name); !strings.Contains(r.stdout, "imported; asks for more than a plain container") {
		t.Errorf("inspect:\n%s", r.stdout)
	}
	e.mustCkpt("resume", "--trust", name)
	e.assertContinues(name, before)
	if c := e.inspect(name); len(c.HostConfig.CapAdd) != 1 {
		t.Errorf("trusted resume: capabilities %v", c.HostConfig.CapAdd)
	}
}
