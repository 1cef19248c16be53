package transfer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// keys are test key pairs of each kind Export encrypts to.
type keys struct {
	x25519     *age.X25519Identity
	sshEd25519 age.Identity
	sshEdRecip age.Recipient
	sshRSA     age.Identity
	sshRSARcp  age.Recipient
}

func newKeys(t testing.TB) *keys {
	t.Helper()
	var k keys
	var err error
	if k.x25519, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.sshEd25519, k.sshEdRecip = sshPair(t, pub, priv)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k.sshRSA, k.sshRSARcp = sshPair(t, &rsaKey.PublicKey, rsaKey)
	return &k
}

// sshPair returns the age identity and recipient of an SSH key pair, parsed
// from the private key file and authorized_keys line ssh-keygen would write.
func sshPair(t testing.TB, pub, priv any) (age.Identity, age.Recipient) {
	t.Helper()
	id, err := agessh.ParseIdentity(sshPrivateKeyFile(t, priv, ""))
	if err != nil {
		t.Fatal(err)
	}
	r, err := agessh.ParseRecipient(sshPublicKeyLine(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	return id, r
}

func sshPrivateKeyFile(t testing.TB, priv any, passphrase string) []byte {
	t.Helper()
	var err error
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func sshPublicKeyLine(t testing.TB, pub any) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " test@host"
}

func TestRoundTrip(t *testing.T) {
	ck := sample(t)
	k := newKeys(t)
	for _, enc := range []struct {
		name string
		exp  ExportOptions
		imp  ImportOptions
	}{
		{"plain", ExportOptions{}, ImportOptions{}},
		{"x25519", ExportOptions{Recipients: []age.Recipient{k.x25519.Recipient()}}, ImportOptions{Identities: []age.Identity{k.x25519}}},
		{"ssh-ed25519", ExportOptions{Recipients: []age.Recipient{k.sshEdRecip}}, ImportOptions{Identities: []age.Identity{k.sshEd25519}}},
		{"ssh-rsa", ExportOptions{Recipients: []age.Recipient{k.sshRSARcp}}, ImportOptions{Identities: []age.Identity{k.sshRSA}}},
		// Any one of several recipients decrypts.
		{"several recipients", ExportOptions{Recipients: []age.Recipient{k.x25519.Recipient(), k.sshEdRecip, k.sshRSARcp}}, ImportOptions{Identities: []age.Identity{k.sshRSA}}},
		{"passphrase", ExportOptions{Passphrase: "correct horse battery staple"}, ImportOptions{Passphrase: "correct horse battery staple"}},
		// Identities that do not match are skipped.
		{"passphrase and identities", ExportOptions{Passphrase: "pw"}, ImportOptions{Identities: []age.Identity{k.x25519}, Passphrase: "pw"}},
	} {
		for _, comp := range []Compression{"", Zstd, Gzip, None} {
			t.Run(enc.name+"/"+string(comp), func(t *testing.T) {
				o := enc.exp
				o.Compression = comp
				b := export(t, ck, o)
				wantMagic := map[Compression][]byte{"": zstdMagic, Zstd: zstdMagic, Gzip: gzipMagic, None: nil}[comp]
				if len(o.Recipients) > 0 || o.Passphrase != "" {
					wantMagic = ageMagic
				}
				if !bytes.HasPrefix(b, wantMagic) {
					t.Errorf("archive starts with %q, want %q", b[:min(len(b), 24)], wantMagic)
				}
				if wantMagic == nil && !bytes.Contains(b[:100], []byte(HeaderFile)) {
					t.Errorf("plain archive starts with %q, want the header of %s", b[:100], HeaderFile)
				}
				st := newStore(t)
				got, stats, err := importBytes(st, b, enc.imp)
				if err != nil {
					t.Fatalf("import: %v (hint %q)", err, hint.Of(err))
				}
				if stats.Files != len(ck.Manifest.Files) || stats.Bytes != ck.Size() {
					t.Errorf("import stats %+v", stats)
				}
				sameCheckpoint(t, ck, got)
				// The export of the import is the same archive, but for
				// encryption, which is randomized.
				if len(o.Recipients) == 0 && o.Passphrase == "" {
					if again := export(t, got, o); !bytes.Equal(again, b) {
						t.Errorf("exporting the imported checkpoint gives another archive")
					}
				}
			})
		}
	}
}

// A checkpoint of the real kind: many files, some large, long paths.
func TestRoundTripLarge(t *testing.T) {
	files := sampleFiles()
	big := make([]byte, 9<<20+123)
	if _, err := rand.Read(big[:1<<20]); err != nil { // some incompressible
		t.Fatal(err)
	}
	files["criu/pages-2.img"] = big
	for i := range 50 {
		files["criu/core-"+strings.Repeat("x", i)+".img"] = bytes.Repeat([]byte{byte(i)}, i*100)
	}
	// Longer than the 100 bytes of a tar header's name field: a PAX path.
	files["volumes/"+strings.Repeat("v", 120)+".tar"] = []byte("long name")
	files["volumes/n\u00e4me.tar"] = []byte("non-ASCII name")
	ck := makeCheckpoint(t, newStore(t), "db", "20261127T114912Z-2", files)
	for _, comp := range []Compression{Zstd, Gzip, None} {
		b := export(t, ck, ExportOptions{Compression: comp})
		got, _, err := importBytes(newStore(t), b, ImportOptions{})
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		sameCheckpoint(t, ck, got)
	}
}

// Import reads the ASCII-armored age format too.
func TestImportArmored(t *testing.T) {
	ck := sample(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	aw := armor.NewWriter(&b)
	w, err := age.Encrypt(aw, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(export(t, ck, ExportOptions{Compression: Gzip}))
	w.Close()
	aw.Close()
	if !bytes.HasPrefix(b.Bytes(), armorMagic) {
		t.Fatalf("armored archive starts with %q", b.Bytes()[:40])
	}
	got, _, err := importBytes(newStore(t), b.Bytes(), ImportOptions{Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, ck, got)

	st := newStore(t)
	_, _, err = importBytes(st, b.Bytes(), ImportOptions{})
	wantRefused(t, err, ErrEncrypted)
	assertNothingImported(t, st)
}

func TestImportDecryptionRefused(t *testing.T) {
	ck := sample(t)
	k := newKeys(t)
	other := newKeys(t)
	toKeys := export(t, ck, ExportOptions{Recipients: []age.Recipient{k.x25519.Recipient(), k.sshEdRecip}})
	withPass := export(t, ck, ExportOptions{Passphrase: "right"})
	for _, tc := range []struct {
		name    string
		archive []byte
		o       ImportOptions
		kind    error
		want    DecryptError
	}{
		{"no identity", toKeys, ImportOptions{}, ErrEncrypted, DecryptError{Known: true, Recipients: []string{"X25519", "ssh-ed25519"}}},
		{"no passphrase", withPass, ImportOptions{}, ErrEncrypted, DecryptError{Known: true, Passphrase: true}},
		{"wrong identities", toKeys, ImportOptions{Identities: []age.Identity{other.x25519, other.sshEd25519, other.sshRSA}}, ErrNoIdentityMatch,
			DecryptError{Known: true, Recipients: []string{"X25519", "ssh-ed25519"}, GotIdentities: true}},
		{"passphrase for recipients", toKeys, ImportOptions{Passphrase: "right"}, ErrNoIdentityMatch,
			DecryptError{Known: true, Recipients: []string{"X25519", "ssh-ed25519"}, GotPassphrase: true}},
		{"wrong passphrase", withPass, ImportOptions{Passphrase: "wrong"}, ErrNoIdentityMatch, DecryptError{Known: true, Passphrase: true, GotPassphrase: true}},
		{"identity for passphrase", withPass, ImportOptions{Identities: []age.Identity{k.x25519}}, ErrNoIdentityMatch,
			DecryptError{Known: true, Passphrase: true, GotIdentities: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			_, _, err := importBytes(st, tc.archive, tc.o)
			wantRefused(t, err, tc.kind)
			var de *DecryptError
			if !errors.As(err, &de) {
				t.Fatalf("%v is not a DecryptError", err)
			}
			got := *de
			got.Err = nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("DecryptError %+v, want %+v", got, tc.want)
			}
			if tc.kind == ErrNoIdentityMatch {
				var nm *age.NoIdentityMatchError
				if !errors.As(err, &nm) {
					t.Errorf("%v does not wrap age's error", err)
				}
			}
			assertNothingImported(t, st)
			if ents, _ := os.ReadDir(filepath.Join(st.Root, format.ContainersDir)); len(ents) != 0 {
				t.Errorf("the store has a container directory: nothing should be written before decryption")
			}
		})
	}
}

func TestImportRefusesExisting(t *testing.T) {
	ck := sample(t)
	b := export(t, ck, ExportOptions{})
	st := newStore(t)
	if _, _, err := importBytes(st, b, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, err := importBytes(st, b, ImportOptions{})
	if err == nil || err.Error() != "checkpoint web:cp1 already exists in the store" ||
		hint.Of(err) != "nothing was imported; to replace it, remove it first with ckpt rm web:cp1" {
		t.Fatalf("second import: %v (hint %q)", err, hint.Of(err))
	}
	// The first import is untouched.
	got, err := st.Load("web", "cp1")
	if err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, ck, got)
}

// Import takes the container's lock.
func TestImportLocks(t *testing.T) {
	ck := sample(t)
	st := newStore(t)
	lock, err := st.Lock("web", "save")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = importBytes(st, export(t, ck, ExportOptions{}), ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "container web is busy: ckpt save") {
		t.Fatalf("import while locked: %v", err)
	}
	lock.Unlock()
	assertNothingImported(t, st)
}

// An interrupted import leaves nothing.
func TestImportCanceled(t *testing.T) {
	ck := sample(t)
	b := export(t, ck, ExportOptions{Compression: None})
	st := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once most of the archive has been read.
	r := &cancelAfter{r: bytes.NewReader(b), n: len(b) - 3000, cancel: cancel}
	_, _, err := Import(ctx, r, st, ImportOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("import: %v, want context.Canceled", err)
	}
	assertNothingImported(t, st)
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	p = p[:min(len(p), 512)]
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

// An I/O error reading the archive is reported as such.
func TestImportReadError(t *testing.T) {
	b := export(t, sample(t), ExportOptions{})
	st := newStore(t)
	boom := errors.New("input/output error")
	_, _, err := Import(context.Background(), io.MultiReader(bytes.NewReader(b[:len(b)/2]), errReader{boom}), st, ImportOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("import: %v, want %v", err, boom)
	}
	assertNothingImported(t, st)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestExportDamagedCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, ck *store.Checkpoint)
		want   string
	}{
		{"flipped byte", func(t *testing.T, ck *store.Checkpoint) {
			p := ck.Stored("criu/pages-1.img")[0]
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[100] ^= 1
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "checkpoint web:cp1 is damaged: criu/pages-1.img: sha256 mismatch"},
		{"missing", func(t *testing.T, ck *store.Checkpoint) {
			if err := os.Remove(ck.Stored("volumes/webdata.tar")[0]); err != nil {
				t.Fatal(err)
			}
		}, "checkpoint web:cp1 is damaged: volumes/webdata.tar is missing"},
		{"shorter", func(t *testing.T, ck *store.Checkpoint) {
			if err := os.Truncate(ck.Stored(format.LayerFile)[0], 10); err != nil {
				t.Fatal(err)
			}
		}, "checkpoint web:cp1 is damaged: layer.tar has 10 bytes, the manifest says 1024"},
		{"symlink", func(t *testing.T, ck *store.Checkpoint) {
			p := ck.Path(format.NetworksFile)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc/hostname", p); err != nil {
				t.Fatal(err)
			}
		}, "checkpoint web:cp1 is damaged: networks.json is not a regular file"},
		{"manifest", func(t *testing.T, ck *store.Checkpoint) {
			if err := os.WriteFile(ck.Path(format.ManifestSumFile), []byte("00\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "checkpoint web:cp1 is damaged: manifest.json: sha256 mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ck := sample(t)
			tc.damage(t, ck)
			for _, comp := range []Compression{Zstd, None} {
				var b bytes.Buffer
				_, err := Export(context.Background(), &b, ck, ExportOptions{Compression: comp})
				if err == nil || err.Error() != tc.want {
					t.Fatalf("export: %v, want %q", err, tc.want)
				}
				if h := hint.Of(err); !strings.Contains(h, "ckpt rm web:cp1") {
					t.Errorf("hint %q", h)
				}
				// What was written is no archive.
				st := newStore(t)
				if _, _, err := importBytes(st, b.Bytes(), ImportOptions{}); err == nil {
					t.Errorf("the output of a failed export imports")
				}
				assertNothingImported(t, st)
			}
		})
	}
}

func TestExportOptions(t *testing.T) {
	ck := sample(t)
	id, _ := age.GenerateX25519Identity()
	for _, o := range []ExportOptions{
		{Compression: "xz"},
		{Recipients: []age.Recipient{id.Recipient()}, Passphrase: "pw"},
	} {
		var b bytes.Buffer
		if _, err := Export(context.Background(), &b, ck, o); err == nil {
			t.Errorf("Export with %+v succeeded", o)
		}
		if b.Len() != 0 {
			t.Errorf("Export with %+v wrote %d bytes", o, b.Len())
		}
	}
}

func TestExportCanceled(t *testing.T) {
	ck := sample(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Export(ctx, io.Discard, ck, ExportOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("export: %v", err)
	}
}

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]Compression{"": Zstd, "zstd": Zstd, "gzip": Gzip, "none": None} {
		if got, err := ParseCompression(in); err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseCompression("xz"); err == nil {
		t.Error("ParseCompression(xz) succeeded")
	}
}

// TestImportSpace: an archive whose files do not fit in the store is
// refused before anything is written.
func TestImportSpace(t *testing.T) {
	ck := sample(t)
	b := export(t, ck, ExportOptions{})
	st := newStore(t)
	_, _, err := importBytes(st, b, ImportOptions{Free: func(string) (int64, error) { return 1 << 20, nil }})
	var se *preflight.SpaceError
	if !errors.As(err, &se) || se.Need != ck.Size() {
		t.Fatalf("err = %v, want a SpaceError for %d bytes", err, ck.Size())
	}
	assertNothingImported(t, st)
}

// TestImportSizesWrap: a manifest whose file sizes add up to more than an
// int64 holds, wrapping around to a few bytes, is refused before anything
// is written, however much room the store has.
func TestImportSizesWrap(t *testing.T) {
	ck := sample(t)
	h, m, files := exportEntries(t, ck)
	// Four whole (not chunked) files of 4 EiB each: 2^64 bytes, 0 once
	// wrapped, plus the other files' few bytes.
	n := 0
	for _, f := range m["files"].([]any) {
		if f := f.(map[string]any); f["chunks"] == nil && n < 4 {
			f["size"] = int64(1 << 62)
			n++
		}
	}
	if n != 4 {
		t.Fatalf("%d whole files in the sample, want 4 at least", n)
	}
	st := newStore(t)
	_, _, err := importBytes(st, buildTar(t, buildEntries(t, h, m, files)),
		ImportOptions{Free: func(string) (int64, error) { return 1 << 40, nil }})
	wantRefused(t, err, ErrInvalid, "manifest.json: its files' sizes: the sizes add up to more than 8 EiB")
	assertNothingImported(t, st)
	if _, err := os.Lstat(filepath.Join(st.Root, format.ChunksDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the import wrote chunks (%v)", err)
	}
}

// TestImportOrigin: an imported checkpoint says so; one made here does not.
func TestImportOrigin(t *testing.T) {
	ck := sample(t)
	if ck.Origin.Imported {
		t.Error("a checkpoint made here is marked imported")
	}
	got, _, err := importBytes(newStore(t), export(t, ck, ExportOptions{}), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Origin.Imported {
		t.Error("an imported checkpoint is not marked imported")
	}
}

// TestImportChunks: an import stores a chunked file as the chunks its
// manifest lists, however the ckpt that saved it cut them (by content,
// around an archive's large entries, or by sizes a later format chooses):
// the imported manifest is the same, byte for byte, and every chunk is
// checked. A chunk whose bytes are not those the manifest lists is refused.
func TestImportChunks(t *testing.T) {
	st := newStore(t)
	lock, err := st.Lock("web", "test")
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Begin("web", "cp1")
	if err != nil {
		t.Fatal(err)
	}
	files := sampleFiles()
	pages := make([]byte, 5<<20+4321)
	rand.Read(pages)
	files["criu/pages-1.img"] = pages
	volume := make([]byte, 3<<20)
	rand.Read(volume)
	files["volumes/webdata.tar"] = volume
	for path, data := range files {
		var f *store.File
		switch path {
		case "criu/pages-1.img": // by sizes, not by content
			f, err = p.CreateChunks(path, []format.Chunk{{Size: 1 << 20}, {Size: 4096}, {Size: 3 << 20}, {Size: int64(len(data)) - 4<<20 - 4096}})
		case "volumes/webdata.tar": // by content, cut at 1000 bytes in
			f, err = p.CreateChunked(path)
		default:
			f, err = p.Create(path)
		}
		if err != nil {
			t.Fatal(err)
		}
		if path == "volumes/webdata.tar" {
			f.Write(data[:1000])
			if err := f.Cut(); err != nil {
				t.Fatal(err)
			}
			data = data[1000:]
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m := &format.Manifest{Created: created, Mode: format.ModeHot, Container: format.Container{Name: "web", Image: "nginx"},
		Volumes: []format.Volume{{Name: "webdata", Driver: "local", Destination: "/data", Archive: "volumes/webdata.tar"}}}
	manifest, err := p.Manifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(manifest); err != nil {
		t.Fatal(err)
	}
	lock.Unlock()
	ck, err := st.Load("web", "cp1")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ck.Manifest.Files {
		if f.Path == "volumes/webdata.tar" && (len(f.Chunks) < 2 || f.Chunks[0].Size != 1000) {
			t.Fatalf("the volume's chunks: %+v, want a first one of 1000 bytes", f.Chunks)
		}
	}

	b := export(t, ck, ExportOptions{Compression: None})
	got, _, err := importBytes(newStore(t), b, ImportOptions{})
	if err != nil {
		t.Fatalf("import: %v (hint %q)", err, hint.Of(err))
	}
	sameCheckpoint(t, ck, got)

	// The pages' fourth chunk changed in the archive: its sha256 is not the
	// manifest's.
	i := bytes.Index(b, pages[:4096])
	if i < 0 {
		t.Fatal("the pages are not in the archive")
	}
	bad := bytes.Clone(b)
	bad[i+4<<20+4096+10] ^= 1
	st2 := newStore(t)
	if _, _, err := importBytes(st2, bad, ImportOptions{}); !errors.Is(err, ErrDamaged) {
		t.Errorf("import of an archive with a changed chunk: %v", err)
	}
	if _, err := st2.Load("web", "cp1"); err == nil {
		t.Error("the refused import left a checkpoint")
	}
}
