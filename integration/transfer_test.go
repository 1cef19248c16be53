package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
			from := e.store
			e.store = t.TempDir() // the other host's store, which trusts the first
			e.trustStore("host1", from)
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
			r := e.mustCkpt(append(append([]string{"import"}, subst(tc.importF)...), archive)...)
			if !strings.Contains(r.stdout, "; signed by host1: it comes back whole; resume it with: ckpt resume "+name+"\n") {
				t.Errorf("import: %s", r.stdout)
			}
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

// A checkpoint exported from one store and imported into another that
// does not trust the first comes back as data only: its volume and
// writable layer, in a plain container without the capability and the
// host directory it had, its memory not restored; the output says so, and
// how to trust its signer. After docker rm, --trust resumes it whole. A
// third store that trusts the first resumes it whole without a flag.
func TestImportTrust(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	hostDir := t.TempDir()
	e.startApp(name, appOpts{volume: vol, host: func(hc *container.HostConfig) {
		hc.CapAdd = []string{"NET_ADMIN"}
		hc.Binds = append(hc.Binds, hostDir+":/hostdir")
	}})
	before := e.waitCounter(name, 3)
	history, _ := e.call(name, "GET", "/read?path=/data/history.log")
	e.mustCkpt("save", name)
	archive := filepath.Join(t.TempDir(), "a.ckpt")
	e.mustCkpt("export", "-o", archive, name)
	removeContainer(t, name)
	if err := docker.VolumeRemove(context.Background(), vol, false); err != nil {
		t.Fatal(err)
	}
	first := e.store
	key := e.storeKey(first)

	e.store = t.TempDir() // another host's store, which does not trust the first
	r := e.mustCkpt("import", archive)
	for _, want := range []string{"not trusted (it is signed by key SHA256:", "it comes back as data only, in a plain container; resume it with: ckpt resume " + name + "\n",
		"  capability CAP_NET_ADMIN\n", "  bind mount " + hostDir + ":/hostdir\n", "then: ckpt trust add NAME 'KEY'; or resume with --trust\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("import output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := e.mustCkpt("ls", name); !strings.Contains(r.stdout, "complete  untrusted") {
		t.Errorf("ls:\n%s", r.stdout)
	}
	if r := e.mustCkpt("inspect", name); !strings.Contains(r.stdout, "imported; not trusted (it is signed by key SHA256:") {
		t.Errorf("inspect:\n%s", r.stdout)
	}
	r = e.resumeNoMemory(name) // data only: exit 3
	if !strings.Contains(r.stdout, "data only, in a plain container: it is not trusted") || !strings.Contains(r.stdout, "  left out: capability CAP_NET_ADMIN\n") ||
		!strings.Contains(r.stdout, "  left out: bind mount "+hostDir+":/hostdir\n") || !strings.Contains(r.stderr, "to resume it whole, check that SHA256:") {
		t.Errorf("untrusted resume:\n%s\n%s", r.stdout, r.stderr)
	}
	after := e.waitState(name)
	if after.ID == before.ID {
		t.Fatal("the memory of a checkpoint that is not trusted was restored")
	}
	if got, _ := e.call(name, "GET", "/read?path=/data/history.log"); !strings.HasPrefix(got, history) {
		t.Error("the volume's data did not come back")
	}
	c := e.inspect(name)
	if len(c.HostConfig.CapAdd) != 0 || slices.ContainsFunc(c.HostConfig.Binds, func(b string) bool { return strings.HasPrefix(b, hostDir) }) {
		t.Errorf("untrusted container: capabilities %v, binds %v", c.HostConfig.CapAdd, c.HostConfig.Binds)
	}

	// Into the container it made, it is never resumed again; with --trust,
	// after docker rm, it comes back whole.
	if _, err := exec.Command("docker", "stop", "-t", "1", name).CombinedOutput(); err != nil {
		t.Fatal(err)
	}
	if r := e.ckpt("resume", name); r.code != 1 || !strings.Contains(r.stderr, "is not trusted") || !strings.Contains(r.stderr, "docker rm "+name) {
		t.Errorf("resume into the existing container: exit %d %s", r.code, r.stderr)
	}
	removeContainer(t, name)
	e.mustCkpt("resume", "--trust", name)
	e.assertContinues(name, before)
	if c := e.inspect(name); len(c.HostConfig.CapAdd) != 1 {
		t.Errorf("trusted resume: capabilities %v", c.HostConfig.CapAdd)
	}
	removeContainer(t, name)

	// A store that trusts the first: whole, no flag.
	e.store = t.TempDir()
	e.mustCkpt("trust", "add", "host1", key)
	if r := e.mustCkpt("import", archive); !strings.Contains(r.stdout, "; signed by host1: it comes back whole;") {
		t.Errorf("import into a store that trusts the first:\n%s", r.stdout)
	}
	e.mustCkpt("resume", name)
	e.assertContinues(name, before)
}
