package app

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/sign"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// These tests run export and import through Main, on stores made with the
// store's API.

// saveNamed writes a complete checkpoint of container whose manifest names
// the container, as ckpt save writes it, and returns its manifest bytes.
func saveNamed(t *testing.T, dir, container, name string, created time.Time) []byte {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Begin(container, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteJSON(format.ContainerFile, map[string]string{"Name": "/" + container}); err != nil {
		t.Fatal(err)
	}
	f, err := p.Create("criu/pages-1.img")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte("memory page "), 10000))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m := &format.Manifest{Created: created, Mode: format.ModeHot, Container: format.Container{Name: container, Image: "nginx"}}
	manifest, err := p.Manifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(manifest); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, format.ContainersDir, container, format.CheckpointsDir, name, format.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// onlyFiles checks that dir holds exactly the files named.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

var t0 = time.Date(2026, 11, 27, 11, 49, 12, 123000000, time.UTC)

func TestExportImport(t *testing.T) {
	noEnv(t)
	hostA, hostB := t.TempDir(), t.TempDir()
	saveNamed(t, hostA, "web", "old", t0)
	manifest := saveNamed(t, hostA, "web", "new", t0.Add(time.Hour))
	out := t.TempDir()
	archive := filepath.Join(out, "web.ckpt")

	// The newest checkpoint by default.
	code, stdout, stderr := run(t, "--store", hostA, "export", "-o", archive, "web")
	if code != exitOK || stdout != "" {
		t.Fatalf("export = %d, %q, %q", code, stdout, stderr)
	}
	info, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v, want 0600", info.Mode())
	}
	onlyFiles(t, out, "web.ckpt")
	want := regexp.MustCompile(`^exported web:new to ` + regexp.QuoteMeta(archive) + `: 2 files, 117\.2 KiB -> ` +
		regexp.QuoteMeta(units.Bytes(info.Size())) + ` \(zstd\) in [0-9.]+m?s\n$`)
	if !want.MatchString(stderr) {
		t.Errorf("export stderr %q, want %s", stderr, want)
	}

	// Host B trusts host A's store: what A exported comes back whole.
	code, key, stderr := run(t, "--store", hostA, "trust", "key")
	if code != exitOK || !strings.HasPrefix(key, "ssh-ed25519 ") || stderr != "" {
		t.Fatalf("trust key = %d, %q, %q", code, key, stderr)
	}
	if code, stdout, stderr := run(t, "--store", hostB, "trust", "add", "hostA", strings.TrimSpace(key)); code != exitOK || !strings.HasPrefix(stdout, "trusted hostA: key SHA256:") {
		t.Fatalf("trust add = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "--store", hostB, "import", archive)
	if code != exitOK || stderr != "" || stdout != "imported web:new (2 files, 117.2 KiB); signed by hostA: it comes back whole; resume it with: ckpt resume web\n" {
		t.Fatalf("import = %d, %q, %q", code, stdout, stderr)
	}
	got, err := os.ReadFile(filepath.Join(hostB, format.ContainersDir, "web", format.CheckpointsDir, "new", format.ManifestFile))
	if err != nil || !bytes.Equal(got, manifest) {
		t.Errorf("imported manifest differs (%v)", err)
	}
	code, stdout, _ = run(t, "--store", hostB, "ls", "web")
	if code != exitOK || !strings.Contains(stdout, "\nweb:new  ") || !strings.HasSuffix(stdout, "complete  signed:hostA\n") {
		t.Errorf("ls after import = %d, %q", code, stdout)
	}

	// An older checkpoint, named; resuming it needs --from.
	oldArchive := filepath.Join(out, "old.ckpt")
	if code, _, stderr := run(t, "--store", hostA, "export", "-o", oldArchive, "--compress", "gzip", "web:old"); code != exitOK ||
		!strings.HasPrefix(stderr, "exported web:old to "+oldArchive+": 2 files") || !strings.Contains(stderr, "(gzip)") {
		t.Fatalf("export web:old = %d, %q", code, stderr)
	}
	code, stdout, stderr = run(t, "--store", hostB, "import", oldArchive)
	if code != exitOK || stdout != "imported web:old (2 files, 117.2 KiB); signed by hostA: it comes back whole; resume it with: ckpt resume web:old\n" {
		t.Fatalf("import old = %d, %q, %q", code, stdout, stderr)
	}

	// Importing again is refused.
	code, stdout, stderr = run(t, "--store", hostB, "import", archive)
	if code != exitError || stdout != "" || stderr != "ckpt: error: checkpoint web:new already exists in the store\n"+
		"ckpt: hint: nothing was imported; to replace it, remove it first with ckpt rm web:new\n" {
		t.Errorf("second import = %d, %q, %q", code, stdout, stderr)
	}
}

func TestExportStdoutImportStdin(t *testing.T) {
	noEnv(t)
	hostA, hostB := t.TempDir(), t.TempDir()
	saveNamed(t, hostA, "web", "cp1", t0)
	code, stdout, stderr := run(t, "--store", hostA, "export", "-o", "-", "--compress", "none", "web")
	if code != exitOK || !strings.HasPrefix(stderr, "exported web:cp1 to standard output: 2 files, 117.2 KiB -> ") || !strings.Contains(stderr, "(uncompressed)") {
		t.Fatalf("export -o - = %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout[:512], "ckpt-export.json") {
		t.Fatalf("stdout is not a plain export: %q", stdout[:100])
	}
	// The checkpoint was saved before ckpt signed its own: the export
	// signed it, with the store's key made then.
	onlyFiles(t, hostA, format.ContainersDir, format.KeysDir)

	stdin := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(stdin, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(stdin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = saved }()
	// Host B does not trust host A: it says so, and how to.
	code, stdout, stderr = run(t, "--store", hostB, "import", "-")
	_, key, _ := run(t, "--store", hostA, "trust", "key")
	k, _, err := sign.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	fp := sign.Fingerprint(k)
	if code != exitOK || !strings.HasPrefix(stdout, "imported web:cp1 (2 files, 117.2 KiB); not trusted (it is signed by key "+fp+", which this store does not trust): it comes back as data only, in a plain container; resume it with: ckpt resume web\n") ||
		!strings.HasSuffix(stdout, "to resume it whole, check that "+fp+" is the key of the store that made it (ckpt trust key there prints it), then: ckpt trust add NAME 'KEY'; or resume with --trust\n") {
		t.Fatalf("import - = %d, %q, %q", code, stdout, stderr)
	}
}

func TestExportRefusesOverwrite(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	saveNamed(t, dir, "web", "cp1", t0)
	out := t.TempDir()
	archive := filepath.Join(out, "web.ckpt")
	if err := os.WriteFile(archive, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "--store", dir, "export", "-o", archive, "web")
	if code != exitError || stdout != "" ||
		stderr != "ckpt: error: "+archive+" already exists\nckpt: hint: give another -o FILE, or --overwrite to replace it\n" {
		t.Errorf("export over a file = %d, %q, %q", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(archive); string(b) != "precious" {
		t.Errorf("the file was changed")
	}
	onlyFiles(t, out, "web.ckpt")

	code, _, stderr = run(t, "--store", dir, "export", "--overwrite", "-o", archive, "web")
	if code != exitOK {
		t.Fatalf("export --overwrite = %d, %q", code, stderr)
	}
	if b, _ := os.ReadFile(archive); string(b) == "precious" {
		t.Errorf("--overwrite did not replace the file")
	}
	onlyFiles(t, out, "web.ckpt")

	// The old name works, and warns.
	os.WriteFile(archive, []byte("precious"), 0o644)
	code, _, stderr = run(t, "--store", dir, "export", "--force", "-o", archive, "web")
	if code != exitOK || !strings.HasPrefix(stderr, "ckpt: warning: export --force is deprecated, use --overwrite\nexported web:cp1 to ") {
		t.Fatalf("export --force = %d, %q", code, stderr)
	}
	if b, _ := os.ReadFile(archive); string(b) == "precious" {
		t.Errorf("--force did not replace the file")
	}
}

// A failed export leaves no file, not even a temporary one.
func TestExportFailureLeavesNothing(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	saveNamed(t, dir, "web", "cp1", t0)
	pages := filepath.Join(dir, format.ContainersDir, "web", format.CheckpointsDir, "cp1", "criu", "pages-1.img")
	b, err := os.ReadFile(pages)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(pages, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, stderr := run(t, "--store", dir, "export", "-o", filepath.Join(out, "web.ckpt"), "web")
	if code != exitError || stdout != "" || stderr != "ckpt: error: checkpoint web:cp1 is damaged: criu/pages-1.img: sha256 mismatch\n"+
		"ckpt: hint: nothing was exported; export another checkpoint (ckpt ls web), or remove this one with ckpt rm web:cp1\n" {
		t.Errorf("export of a damaged checkpoint = %d, %q, %q", code, stdout, stderr)
	}
	onlyFiles(t, out)

	code, _, stderr = run(t, "--store", dir, "export", "-o", filepath.Join(out, "db.ckpt"), "db")
	if code != exitError || !strings.HasPrefix(stderr, "ckpt: error: no checkpoint for container db in ") {
		t.Errorf("export of nothing = %d, %q", code, stderr)
	}
	code, _, stderr = run(t, "--store", dir, "export", "-o", filepath.Join(out, "db.ckpt"), "web:nope")
	if code != exitError || !strings.HasPrefix(stderr, `ckpt: error: no checkpoint "nope" for container web`) {
		t.Errorf("export of nothing = %d, %q", code, stderr)
	}
	onlyFiles(t, out)
}

func TestExportImportEncrypted(t *testing.T) {
	noEnv(t)
	hostA, hostB := t.TempDir(), t.TempDir()
	saveNamed(t, hostA, "web", "cp1", t0)
	keys := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(keys, "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "web.ckpt.age")
	code, _, stderr := run(t, "--store", hostA, "export", "-o", archive, "-r", id.Recipient().String(), "web")
	if code != exitOK || !strings.Contains(stderr, "(zstd, encrypted to 1 recipient)") {
		t.Fatalf("export -r = %d, %q", code, stderr)
	}

	code, stdout, stderr := run(t, "--store", hostB, "import", archive)
	if code != exitError || stdout != "" || stderr != "ckpt: error: the archive is encrypted, and no identity or passphrase was given to decrypt it\n"+
		"ckpt: hint: it is encrypted to X25519 recipients: give the private key of one of them with --identity (an age identity file or an SSH private key)\n" {
		t.Errorf("import without identity = %d, %q, %q", code, stdout, stderr)
	}
	other, _ := age.GenerateX25519Identity()
	otherFile := filepath.Join(keys, "other.txt")
	os.WriteFile(otherFile, []byte(other.String()+"\n"), 0o600)
	code, _, stderr = run(t, "--store", hostB, "import", "-i", otherFile, archive)
	if code != exitError || stderr != "ckpt: error: cannot decrypt the archive: no identity matches\n"+
		"ckpt: hint: it is encrypted to X25519 recipients, and none of the --identity files holds the private key of one of them\n" {
		t.Errorf("import with the wrong identity = %d, %q", code, stderr)
	}
	code, _, _ = run(t, "--store", hostB, "ls", "--json")
	if code != exitOK {
		t.Fatal("ls failed")
	}
	onlyFiles(t, filepath.Join(hostB, format.ContainersDir))

	code, stdout, stderr = run(t, "--store", hostB, "import", "-i", otherFile, "-i", keyFile, archive)
	if code != exitOK || !strings.HasPrefix(stdout, "imported web:cp1 (2 files") {
		t.Fatalf("import -i = %d, %q, %q", code, stdout, stderr)
	}

	// With a passphrase.
	pass := filepath.Join(keys, "pass")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	archive2 := filepath.Join(t.TempDir(), "web.ckpt.age")
	code, _, stderr = run(t, "--store", hostA, "export", "-o", archive2, "--passphrase-file", pass, "--compress", "gzip", "web")
	if code != exitOK || !strings.Contains(stderr, "(gzip, encrypted with a passphrase)") {
		t.Fatalf("export --passphrase-file = %d, %q", code, stderr)
	}
	hostC := t.TempDir()
	code, stdout, stderr = run(t, "--store", hostC, "import", "--passphrase-file", pass, archive2)
	if code != exitOK || !strings.HasPrefix(stdout, "imported web:cp1 (2 files") {
		t.Fatalf("import --passphrase-file = %d, %q, %q", code, stdout, stderr)
	}
	wrong := filepath.Join(keys, "wrong")
	os.WriteFile(wrong, []byte("wrong\n"), 0o600)
	code, _, stderr = run(t, "--store", t.TempDir(), "import", "--passphrase-file", wrong, archive2)
	if code != exitError || stderr != "ckpt: error: cannot decrypt the archive: no identity matches\n"+
		"ckpt: hint: it is encrypted with a passphrase, and that of --passphrase-file is not it\n" {
		t.Errorf("import with the wrong passphrase = %d, %q", code, stderr)
	}

	empty := filepath.Join(keys, "empty")
	os.WriteFile(empty, []byte("\nsecond line\n"), 0o600)
	code, _, stderr = run(t, "--store", hostA, "export", "-o", filepath.Join(t.TempDir(), "x"), "--passphrase-file", empty, "web")
	if code != exitError || stderr != "ckpt: error: passphrase file "+empty+": its first line is empty\n"+
		"ckpt: hint: write the passphrase on the first line of the file\n" {
		t.Errorf("export with an empty passphrase = %d, %q", code, stderr)
	}
}

func TestImportRefusesDamaged(t *testing.T) {
	noEnv(t)
	hostA, hostB := t.TempDir(), t.TempDir()
	saveNamed(t, hostA, "web", "cp1", t0)
	archive := filepath.Join(t.TempDir(), "web.ckpt")
	if code, _, stderr := run(t, "--store", hostA, "export", "-o", archive, "--compress", "none", "web"); code != exitOK {
		t.Fatal(stderr)
	}
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stderr string
		archive      []byte
	}{
		{"truncated", "ckpt: error: the archive is truncated: it ends inside entry \"criu/pages-1.img\"\n" +
			"ckpt: hint: nothing was imported; the archive ends early: copy it again, whole (compare its size or sha256sum with the original)\n", b[:len(b)/2]},
		{"damaged", "ckpt: error: the archive is damaged: entry \"criu/pages-1.img\": sha256 mismatch\n" +
			"ckpt: hint: nothing was imported; copy the archive again (compare its sha256sum with the original), or export the checkpoint again\n",
			bytes.Replace(b, []byte("memory page memory"), []byte("memory PAGE memory"), 1)},
		{"not an export", "ckpt: error: not a ckpt export archive: it is not a tar archive, nor compressed with zstd or gzip, nor encrypted with age\n" +
			"ckpt: hint: ckpt import reads the archives that ckpt export writes\n", []byte("hello")},
	} {
		path := filepath.Join(t.TempDir(), "bad")
		os.WriteFile(path, tc.archive, 0o600)
		code, stdout, stderr := run(t, "--store", hostB, "import", path)
		if code != exitError || stdout != "" || stderr != tc.stderr {
			t.Errorf("%s: import = %d, %q, %q", tc.name, code, stdout, stderr)
		}
		code, stdout, _ = run(t, "--store", hostB, "ls", "--json")
		if code != exitOK || stdout != "" {
			t.Errorf("%s: ls after a refused import: %q", tc.name, stdout)
		}
	}
	code, _, stderr := run(t, "--store", hostB, "import", filepath.Join(hostB, "missing"))
	if code != exitError || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("import of a missing file = %d, %q", code, stderr)
	}
}

func TestTransferUsageErrors(t *testing.T) {
	noEnv(t)
	for _, tc := range []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"export", "web"}, usage("export", "export needs -o FILE, or -o - for standard output")},
		{[]string{"export", "-o", "x"}, usage("export", "export takes one CONTAINER[:NAME]")},
		{[]string{"export", "-o", "x", "web", "db"}, usage("export", "export takes one CONTAINER[:NAME]")},
		{[]string{"export", "web", "-o", "x", "--bogus"}, usage("export", "flag provided but not defined: --bogus")},
		{[]string{"export", "-o", "x", "../web"}, usage("export", `invalid container name "../web"`)},
		{[]string{"export", "-o", "x", "web:../cp"}, usage("export", `invalid checkpoint name "../cp"`)},
		{[]string{"export", "-o", "x", "web:"}, usage("export", `missing checkpoint name after ":" in "web:"`)},
		{[]string{"export", "-o", "x", "--compress", "xz", "web"}, usage("export", `--compress takes zstd, gzip or none, not "xz"`)},
		{[]string{"export", "-o", "x", "-r", "age1x", "--passphrase-file", "p", "web"}, usage("export", "--recipient and --passphrase-file do not go together: give one of them")},
		{[]string{"export", "--bogus", "web"}, usage("export", "flag provided but not defined: -bogus")},
		{[]string{"import"}, usage("import", "import takes one FILE, or - for standard input")},
		{[]string{"import", "a", "b"}, usage("import", "import takes one FILE, or - for standard input")},
		{[]string{"import", "a", "--bogus"}, usage("import", "flag provided but not defined: --bogus")},
		{[]string{"import", "--bogus", "a"}, usage("import", "flag provided but not defined: -bogus")},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			code, stdout, stderr := run(t, append([]string{"--store", dir}, tc.args...)...)
			if code != exitUsage || stdout != "" || stderr != tc.wantStderr {
				t.Errorf("= %d, %q, %q; want %d, %q", code, stdout, stderr, exitUsage, tc.wantStderr)
			}
			if _, err := os.Lstat(dir); err == nil {
				t.Errorf("%v created the store", tc.args)
			}
		})
	}
}

func TestTransferHelp(t *testing.T) {
	noEnv(t)
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"export", []string{"ckpt export [command options] CONTAINER[:NAME]", "--output FILE, -o FILE", "--compress ALGORITHM", "--recipient RECIPIENT, -r RECIPIENT", "--passphrase-file FILE", "--overwrite", "--quiet, -q", "--json"}},
		{"import", []string{"ckpt import [command options] FILE", "--identity FILE, -i FILE", "--passphrase-file FILE", "--quiet, -q", "--json"}},
	} {
		code, stdout, stderr := run(t, tc.cmd, "--help")
		if code != exitOK || stderr != "" {
			t.Errorf("ckpt %s --help = %d, stderr %q", tc.cmd, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("ckpt %s --help lacks %q:\n%s", tc.cmd, w, stdout)
			}
		}
	}
}
