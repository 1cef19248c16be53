package transfer

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
)

func init() {
	// age's default scrypt work takes a second each way.
	scryptWorkFactor = 10
}

// created is the creation time of the test checkpoints: sub-second, so that
// the archives carry PAX mtime records.
var created = time.Date(2026, 11, 27, 12, 26, 19, 467972170, time.UTC)

func newStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sampleFiles are the files of a small checkpoint like a real one: JSON
// documents, CRIU images of assorted sizes (a block exactly, empty, odd
// sizes) and archives.
func sampleFiles() map[string][]byte {
	pages := make([]byte, 3*4096+17)
	for i := range pages {
		pages[i] = byte(i*7 + i/251)
	}
	return map[string][]byte{
		format.ContainerFile:    []byte(`{"Name": "/web", "Config": {"Image": "nginx"}}` + "\n"),
		format.NetworksFile:     []byte("[]\n"),
		"criu/pages-1.img":      pages,
		"criu/pagemap-1.img":    bytes.Repeat([]byte{1, 2, 3, 4}, 128), // 512 bytes: no padding
		"criu/empty.img":        nil,
		"criu/inventory.img":    []byte("inventory"),
		"volumes/webdata.tar":   bytes.Repeat([]byte("volume data "), 100),
		format.LayerFile:        bytes.Repeat([]byte{0}, 1024),
		"criu/descriptors.json": []byte(`["/dev/null"]`),
	}
}

// makeCheckpoint commits a checkpoint holding files into st with the
// store's API, and loads it.
func makeCheckpoint(t testing.TB, st *store.Store, container, name string, files map[string][]byte) *store.Checkpoint {
	t.Helper()
	lock, err := st.Lock(container, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	p, err := st.Begin(container, name)
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range files {
		f, err := p.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m := &format.Manifest{Created: created, Mode: format.ModeHot,
		Container: format.Container{Name: container, Image: "nginx"}, MemoryBytes: int64(len(files["criu/pages-1.img"]))}
	if _, ok := files["volumes/webdata.tar"]; ok {
		m.Volumes = []format.Volume{{Name: "webdata", Driver: "local", Destination: "/data", Archive: "volumes/webdata.tar"}}
	}
	if _, ok := files[format.LayerFile]; ok {
		m.Layer = format.Layer{Archive: format.LayerFile}
	}
	manifest, err := p.Manifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Commit(manifest); err != nil {
		t.Fatal(err)
	}
	ck, err := st.Load(container, name)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// sample is a store with one sample checkpoint, web:cp1.
func sample(t testing.TB) *store.Checkpoint {
	t.Helper()
	return makeCheckpoint(t, newStore(t), "web", "cp1", sampleFiles())
}

func export(t testing.TB, ck *store.Checkpoint, o ExportOptions) []byte {
	t.Helper()
	var b bytes.Buffer
	stats, err := Export(context.Background(), &b, ck, o)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if stats.Files != len(ck.Manifest.Files) || stats.Bytes != ck.Size() {
		t.Errorf("export stats %+v, want %d files, %d bytes", stats, len(ck.Manifest.Files), ck.Size())
	}
	return b.Bytes()
}

func importBytes(st *store.Store, b []byte, o ImportOptions) (*store.Checkpoint, Stats, error) {
	return Import(context.Background(), bytes.NewReader(b), st, o)
}

// sameCheckpoint checks that got is a complete, verified copy of want with
// the same manifest bytes.
func sameCheckpoint(t testing.TB, want, got *store.Checkpoint) {
	t.Helper()
	if got.Container != want.Container || got.Name != want.Name {
		t.Fatalf("imported %s:%s, want %s:%s", got.Container, got.Name, want.Container, want.Name)
	}
	if err := got.Verify(context.Background()); err != nil {
		t.Fatalf("imported checkpoint: %v", err)
	}
	for _, name := range []string{format.ManifestFile, format.ManifestSumFile} {
		a, err := os.ReadFile(want.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(got.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs:\n%s\n%s", name, a, b)
		}
	}
	// Loaded afresh from its store, it is the same checkpoint.
	st := &store.Store{Root: filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(got.Dir))))}
	ck, err := st.Load(got.Container, got.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(ck.Manifest.Files) != len(want.Manifest.Files) {
		t.Errorf("%d files, want %d", len(ck.Manifest.Files), len(want.Manifest.Files))
	}
	// Everything in it is 0700/0600, and nothing else is there.
	n := 0
	err = filepath.WalkDir(got.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if info.Mode().Perm() != store.DirMode {
				t.Errorf("%s: mode %v", path, info.Mode())
			}
		case info.Mode().IsRegular():
			n++
			if info.Mode().Perm() != store.FileMode {
				t.Errorf("%s: mode %v", path, info.Mode())
			}
		default:
			t.Errorf("%s: %v", path, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The manifest, its sum and origin.json, and the files not in chunks.
	whole := 3
	for _, f := range want.Manifest.Files {
		if f.Chunks == nil {
			whole++
		}
	}
	if n != whole {
		t.Errorf("%d files in the imported checkpoint's directory, want %d", n, whole)
	}
}

// assertNothingImported checks that st holds no checkpoint, complete or
// not: every container's checkpoints directory is empty or missing.
func assertNothingImported(t testing.TB, st *store.Store) {
	t.Helper()
	root := filepath.Join(st.Root, format.ContainersDir)
	containers, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range containers {
		ents, err := os.ReadDir(filepath.Join(root, c.Name(), format.CheckpointsDir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("left in the store: %s", filepath.Join(c.Name(), format.CheckpointsDir, e.Name()))
		}
	}
}

// wantRefused checks that err is of kind and mentions every one of texts.
func wantRefused(t testing.TB, err error, kind error, texts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("imported; want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q (hint %q), want %v", err, hint.Of(err), kind)
	}
	for _, s := range texts {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	// A DecryptError leaves the hint to the caller: it says what to give.
	if de := (*DecryptError)(nil); hint.Of(err) == "" && !errors.As(err, &de) {
		t.Errorf("error %q has no hint", err)
	}
}
