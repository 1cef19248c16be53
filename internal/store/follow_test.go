package store

import (
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// appendTo appends b to the file at path in pieces, as CRIU does.
func appendTo(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	must(t, err)
	defer f.Close()
	for len(b) > 0 {
		n := min(len(b), 100000)
		_, err := f.Write(b[:n])
		must(t, err)
		b = b[n:]
	}
}

// waitPool waits until the store's chunks hold at least n bytes.
func waitPool(t *testing.T, s *Store, n int64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if got, _ := poolBytes(t, s); got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store's chunks never reached %d bytes", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFollow: the memory pages are cut into chunks while they are written,
// and Adopt records what it would have recorded reading them after.
func TestFollow(t *testing.T) {
	// chunkMax bytes and one more hold a chunk whatever the data.
	first, second := random(3, chunkMax+1), random(4, 3<<20+4321)
	small := random(5, 70000)
	s := newStore(t)
	p, err := s.Begin("web", "cp1")
	must(t, err)
	// Following begins before the writer makes the directory.
	f := p.Follow(format.ImagesDir)
	must(t, os.Mkdir(p.Path(format.ImagesDir), 0o755))
	pages := p.Path(format.ImagesDir + "/pages-1.img")
	appendTo(t, pages, first)
	must(t, os.WriteFile(p.Path(format.ImagesDir+"/inventory.img"), []byte("inv"), 0o644))
	// The first bytes reach the store before the writer is done.
	waitPool(t, s, chunkMin)
	appendTo(t, pages, second)
	appendTo(t, p.Path(format.ImagesDir+"/pages-2.img"), small)
	f.Finish()
	// What was followed is not read again: other bytes of the same size
	// now in a file do not change what Adopt records.
	must(t, os.WriteFile(p.Path(format.ImagesDir+"/pages-2.img"), random(7, len(small)), 0o644))
	added, err := p.Adopt(format.ImagesDir, f)
	must(t, err)
	must(t, os.WriteFile(p.Path(format.ImagesDir+"/pages-2.img"), small, 0o644))

	// The same files, read after they were written.
	s2 := newStore(t)
	p2, err := s2.Begin("web", "cp1")
	must(t, err)
	must(t, os.Mkdir(p2.Path(format.ImagesDir), 0o755))
	appendTo(t, p2.Path(format.ImagesDir+"/pages-1.img"), append(append([]byte{}, first...), second...))
	must(t, os.WriteFile(p2.Path(format.ImagesDir+"/inventory.img"), []byte("inv"), 0o644))
	appendTo(t, p2.Path(format.ImagesDir+"/pages-2.img"), small)
	want, err := p2.Adopt(format.ImagesDir, nil)
	must(t, err)
	if !reflect.DeepEqual(added, want) {
		t.Fatalf("Adopt after following = %+v\nwant %+v", added, want)
	}
	if len(added) != 3 || len(added[1].Chunks) < 3 {
		t.Fatalf("Adopt = %+v, want the pages in several chunks", added)
	}
	// A page image is cut between pages.
	if got, want := chunkSizes(added[1].Chunks), pageChunksOf(append(append([]byte{}, first...), second...)); !slices.Equal(got, want) {
		t.Errorf("the pages' chunks: %v, want %v", got, want)
	}
	commit(t, p, &format.Manifest{})
	ck, err := s.Load("web", "cp1")
	must(t, err)
	must(t, ck.Verify(t.Context()))
	if got := readAll(t, ck, format.ImagesDir+"/pages-1.img"); got != string(first)+string(second) {
		t.Errorf("pages read back: %d bytes, want %d", len(got), len(first)+len(second))
	}
}

// TestFollowStop: a follow stopped (the checkpoint failed) keeps nothing,
// and Adopt then reads the files itself.
func TestFollowStop(t *testing.T) {
	data := random(6, 2*chunkMax)
	s := newStore(t)
	p, err := s.Begin("web", "cp1")
	must(t, err)
	must(t, os.Mkdir(p.Path(format.ImagesDir), 0o755))
	f := p.Follow(format.ImagesDir)
	pages := p.Path(format.ImagesDir + "/pages-1.img")
	appendTo(t, pages, data[:chunkMax+1])
	waitPool(t, s, chunkMin)
	f.Stop()
	f.Stop()
	if got := f.Finish(); len(got) != 0 {
		t.Errorf("Finish after Stop = %+v", got)
	}
	appendTo(t, pages, data[chunkMax+1:])
	added, err := p.Adopt(format.ImagesDir, f)
	must(t, err)
	if len(added) != 1 || added[0].Size != int64(len(data)) {
		t.Fatalf("Adopt = %+v, want the pages whole", added)
	}
	commit(t, p, &format.Manifest{})
	ck, err := s.Load("web", "cp1")
	must(t, err)
	if got := readAll(t, ck, format.ImagesDir+"/pages-1.img"); got != string(data) {
		t.Errorf("pages read back: %d bytes, want %d", len(got), len(data))
	}
}
