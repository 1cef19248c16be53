package transfer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// fuzzSample is a tiny checkpoint, so that fuzzed archives are small.
func fuzzSample(t testing.TB) *store.Checkpoint {
	return makeCheckpoint(t, newStore(t), "web", "cp1", map[string][]byte{
		format.ContainerFile: []byte("{}\n"),
		"criu/pages-1.img":   []byte("pages"),
		"criu/empty.img":     nil,
	})
}

// FuzzImport feeds archives to Import: it must never panic, and when it
// fails it must leave nothing in the store nor beside it; what it imports
// must be a complete checkpoint. The seeds are exports of a tiny checkpoint
// in every compression, and some hand-made archives (more in
// testdata/fuzz/FuzzImport).
func FuzzImport(f *testing.F) {
	ck := fuzzSample(f)
	for _, c := range []Compression{None, Zstd, Gzip} {
		f.Add(export(f, ck, ExportOptions{Compression: c}))
	}
	hdr, m, files := exportEntries(f, ck)
	f.Add(buildTar(f, buildEntries(f, hdr, m, append(files, special(tar.TypeSymlink, "criu/link", "/etc")))))
	f.Add(buildTar(f, buildEntries(f, hdr, m, append(files, reg("../escape", []byte("x"))))))
	f.Add([]byte{})

	// The stores live in memory when the machine has a tmpfs: every import
	// syncs its files and directories, and the fuzzer runs thousands a
	// second (make fuzz).
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	f.Fuzz(func(t *testing.T, archive []byte) {
		root, err := os.MkdirTemp(base, "ckpt-fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(root)
		st, err := store.Open(filepath.Join(root, "store"))
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := Import(context.Background(), bytes.NewReader(archive), st, ImportOptions{})
		if ents, rerr := os.ReadDir(root); rerr != nil || len(ents) != 1 {
			t.Fatalf("the store's directory holds %v (%v)", ents, rerr)
		}
		if err != nil {
			assertNothingImported(t, st)
			return
		}
		if err := got.Verify(context.Background()); err != nil {
			t.Fatalf("imported a checkpoint that does not verify: %v", err)
		}
		loaded, err := st.Load(got.Container, got.Name)
		if err != nil {
			t.Fatalf("imported a checkpoint that does not load: %v", err)
		}
		for _, f := range loaded.Manifest.Files {
			if !filepath.IsLocal(f.Path) {
				t.Fatalf("imported a checkpoint with file %q", f.Path)
			}
		}
	})
}
