package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ckpt-dev/ckpt/internal/archive"
	"github.com/ckpt-dev/ckpt/internal/format"
)

// random returns n bytes from a seeded generator: the same bytes each run.
func random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// chunksOf cuts b the way a chunkWriter does and returns the chunk sizes.
func chunksOf(b []byte) []int {
	var sizes []int
	for len(b) > 0 {
		k := cut(b)
		sizes = append(sizes, k)
		b = b[k:]
	}
	return sizes
}

func TestCut(t *testing.T) {
	data := random(1, 64<<20)
	sizes := chunksOf(data)
	for i, n := range sizes[:len(sizes)-1] {
		if n < chunkMin || n > chunkMax {
			t.Fatalf("chunk %d has %d bytes, not %d to %d", i, n, chunkMin, chunkMax)
		}
	}
	// Normalized chunking keeps sizes near the average.
	if avg := len(data) / len(sizes); avg < chunkAvg/2 || avg > 2*chunkAvg {
		t.Errorf("%d chunks of %d bytes on average, want about %d", len(sizes), avg, chunkAvg)
	}
	// Bytes inserted near the start move the first boundaries only: the
	// rest of the chunks are the same.
	shifted := append(random(2, 1000), data...)
	same := map[string]bool{}
	for _, c := range split(data) {
		same[string(c)] = true
	}
	shared := 0
	for _, c := range split(shifted) {
		if same[string(c)] {
			shared++
		}
	}
	if shared < len(sizes)-3 {
		t.Errorf("after 1000 bytes inserted, %d of %d chunks are the same", shared, len(sizes))
	}
	// No boundary in data that does not vary: chunks of chunkMax.
	if got := chunksOf(make([]byte, 3*chunkMax+5)); len(got) != 4 || got[0] != chunkMax || got[3] != 5 {
		t.Errorf("zeros cut into %v", got)
	}
}

// pageChunksOf cuts b the way a chunkWriter cuts a page image.
func pageChunksOf(b []byte) []int {
	var sizes []int
	for len(b) > 0 {
		var c cutter
		k := c.nextPage(b, true)
		sizes = append(sizes, k)
		b = b[k:]
	}
	return sizes
}

// TestCutPages: a page image is cut between pages only, into chunks of
// chunkMin to chunkMax bytes, about chunkAvg on average; pages added or
// removed move the boundaries near them only.
func TestCutPages(t *testing.T) {
	data := random(11, 64<<20)
	sizes := pageChunksOf(data)
	for i, n := range sizes {
		if n%pageSize != 0 || n < chunkMin || n > chunkMax {
			t.Fatalf("chunk %d has %d bytes: not whole pages, or not %d to %d", i, n, chunkMin, chunkMax)
		}
	}
	if avg := len(data) / len(sizes); avg < chunkAvg/2 || avg > 2*chunkAvg {
		t.Errorf("%d chunks of %d bytes on average, want about %d", len(sizes), avg, chunkAvg)
	} else {
		t.Logf("%d chunks of %d bytes on average", len(sizes), avg)
	}
	chunks := func(b []byte) map[string]bool {
		m := map[string]bool{}
		for _, n := range pageChunksOf(b) {
			m[string(b[:n])] = true
			b = b[n:]
		}
		return m
	}
	before := chunks(data)
	for name, changed := range map[string][]byte{
		"a page added near the start":  slices.Concat(data[:100*pageSize], random(12, pageSize), data[100*pageSize:]),
		"a page removed in the middle": slices.Concat(data[:5000*pageSize], data[5001*pageSize:]),
		"a page rewritten in place":    slices.Concat(data[:7000*pageSize], random(13, pageSize), data[7001*pageSize:]),
	} {
		shared := 0
		for c := range chunks(changed) {
			if before[c] {
				shared++
			}
		}
		if shared < len(sizes)-3 {
			t.Errorf("%s: %d of %d chunks are the same", name, shared, len(sizes))
		}
	}
	// The last chunk of an image that is not whole pages is what is left.
	if got := pageChunksOf(data[:chunkMin+100]); !slices.Equal(got, []int{chunkMin + 100}) && !slices.Equal(got, []int{chunkMin, 100}) {
		t.Errorf("%d bytes cut into %v", chunkMin+100, got)
	}
}

func split(b []byte) [][]byte {
	var out [][]byte
	for _, n := range chunksOf(b) {
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// saveChunked writes a checkpoint whose file rel is data, in chunks.
func saveChunked(t *testing.T, s *Store, name, rel string, data []byte) *Checkpoint {
	t.Helper()
	p, err := s.Begin("web", name)
	must(t, err)
	f, err := p.CreateChunked(rel)
	must(t, err)
	// Written in odd pieces: boundaries do not depend on them.
	for b := data; len(b) > 0; {
		n := min(len(b), 77777)
		_, err := f.Write(b[:n])
		must(t, err)
		b = b[n:]
	}
	must(t, f.Close())
	commit(t, p, &format.Manifest{Created: time.Now(), Mode: format.ModeCold})
	ck, err := s.Load("web", name)
	must(t, err)
	return ck
}

// poolBytes is the size of the files in the store's chunks.
func poolBytes(t *testing.T, s *Store) (n int64, files int) {
	t.Helper()
	filepath.WalkDir(filepath.Join(s.Root, format.ChunksDir), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			st, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a chunk's temporary file, renamed while a save goes on (waitPool)
			}
			if err != nil {
				t.Error(err)
				return nil
			}
			n += st.Size()
			files++
			if perm := st.Mode().Perm(); perm != FileMode {
				t.Errorf("%s has mode %v", path, perm)
			}
		} else if err == nil && d.IsDir() {
			if perm := permOf(t, path); perm != DirMode {
				t.Errorf("%s has mode %v", path, perm)
			}
		}
		return err
	})
	return n, files
}

// TestChunkedFiles: a file written in chunks reads back (whole, at offsets,
// put together as a file), a second checkpoint that changed 10% of it
// stores about 10% more, damage is found, and unused chunks are collected.
func TestChunkedFiles(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := random(3, 16<<20)
	ck1 := saveChunked(t, s, "cp1", "criu/pages-1.img", data)
	must(t, ck1.Verify(ctx))
	// Written in pieces, cut as if whole (a page image: between pages).
	var sizes []int
	for _, c := range ck1.Manifest.Files[0].Chunks {
		sizes = append(sizes, int(c.Size))
	}
	if want := pageChunksOf(data); !slices.Equal(sizes, want) {
		t.Errorf("chunks of a file written in pieces: %v, want %v", sizes, want)
	}
	first, _ := poolBytes(t, s)
	if first != int64(len(data)) {
		t.Errorf("the first checkpoint stored %d bytes of chunks, want %d", first, len(data))
	}
	if _, err := os.Lstat(ck1.Path("criu/pages-1.img")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a chunked file is also in the checkpoint's directory: %v", err)
	}
	if got := readAll(t, ck1, "criu/pages-1.img"); got != string(data) {
		t.Fatal("Open read other bytes")
	}
	ra, err := ck1.OpenAt("criu/pages-1.img")
	must(t, err)
	mid := make([]byte, 3<<20)
	_, err = ra.ReadAt(mid, 5<<20+123)
	must(t, err)
	if !bytes.Equal(mid, data[5<<20+123:8<<20+123]) {
		t.Error("ReadAt read other bytes")
	}
	dir, done, err := ck1.Place(ctx, format.ImagesDir)
	must(t, err)
	placed, err := os.ReadFile(filepath.Join(dir, "pages-1.img"))
	must(t, err)
	if !bytes.Equal(placed, data) {
		t.Error("Place put other bytes together")
	}
	done()
	if _, err := os.Lstat(filepath.Dir(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Place's directory is still there: %v", err)
	}

	// 10% rewritten in the middle: the second checkpoint adds the chunks
	// that hold the change, not the file again.
	changed := bytes.Clone(data)
	copy(changed[6<<20:], random(4, len(data)/10))
	ck2 := saveChunked(t, s, "cp2", "criu/pages-1.img", changed)
	must(t, ck2.Verify(ctx))
	both, _ := poolBytes(t, s)
	if added := both - first; added > int64(len(data))*25/100 {
		t.Errorf("the second checkpoint added %d bytes of chunks for %d changed", added, len(data)/10)
	} else {
		t.Logf("10%% changed: the second checkpoint added %d bytes (%.0f%%)", added, 100*float64(added)/float64(len(data)))
	}

	// A damaged chunk: Verify names the file and the chunk.
	victim := ck2.Stored("criu/pages-1.img")[1]
	orig, err := os.ReadFile(victim)
	must(t, err)
	bad := bytes.Clone(orig)
	bad[10] ^= 1
	must(t, os.WriteFile(victim, bad, 0o600))
	var damaged *DamagedError
	if err := ck2.Verify(ctx); !errors.As(err, &damaged) || !strings.Contains(err.Error(), "criu/pages-1.img: chunk 1 (") {
		t.Errorf("Verify of a damaged chunk: %v", err)
	}
	if err := readErr(t, ck2, "criu/pages-1.img", true); !errors.Is(err, ErrChunkSum) {
		t.Errorf("OpenVerified of a file with a damaged chunk: %v", err)
	}
	must(t, os.WriteFile(victim, orig[1:], 0o600))
	if err := readErr(t, ck2, "criu/pages-1.img", false); !errors.Is(err, ErrChunkSize) {
		t.Errorf("Open of a file with a short chunk: %v", err)
	}
	must(t, os.Remove(victim))
	if err := ck2.Verify(ctx); !errors.As(err, &damaged) || !strings.Contains(err.Error(), "is missing from the store") {
		t.Errorf("Verify of a missing chunk: %v", err)
	}
	if err := readErr(t, ck2, "criu/pages-1.img", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a file with a missing chunk: %v", err)
	}
	must(t, os.WriteFile(victim, orig, 0o600))
	// Closed halfway, with chunks being read ahead.
	r, err := ck2.Open("criu/pages-1.img")
	must(t, err)
	_, err = io.ReadFull(r, make([]byte, 3<<20))
	must(t, err)
	must(t, r.Close())

	// Removing the first checkpoint frees only what the second does not
	// use; removing the second frees the rest, and the pool's directories.
	must(t, s.Remove("web", "cp1"))
	n, freed, busy, err := s.CollectChunks()
	must(t, err)
	if busy || n == 0 || freed >= int64(len(data))/4 {
		t.Errorf("collection after cp1 went: %d chunks, %d bytes, busy %v", n, freed, busy)
	}
	must(t, ck2.Verify(ctx))
	must(t, s.Remove("web", "cp2"))
	if _, _, _, err := s.CollectChunks(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(s.Root, format.ChunksDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the chunks' directory is still there with no checkpoint: %v", err)
	}
}

// TestCollectWaitsForWriters: chunks written by a save not yet committed
// are listed by no manifest; the collection leaves them alone.
func TestCollectWaitsForWriters(t *testing.T) {
	s := newStore(t)
	p, err := s.Begin("web", "cp1")
	must(t, err)
	f, err := p.CreateChunked("volumes/data.tar")
	must(t, err)
	_, err = f.Write(random(5, 2<<20))
	must(t, err)
	must(t, f.Close())
	if n, _, busy, err := s.CollectChunks(); err != nil || !busy || n != 0 {
		t.Errorf("collection during a save: %d removed, busy %v, %v", n, busy, err)
	}
	commit(t, p, &format.Manifest{Created: time.Now(), Mode: format.ModeCold})
	ck, err := s.Load("web", "cp1")
	must(t, err)
	if n, _, busy, err := s.CollectChunks(); err != nil || busy || n != 0 {
		t.Errorf("collection after the commit: %d removed, busy %v, %v", n, busy, err)
	}
	must(t, ck.Verify(context.Background()))

	// An aborted save takes its chunks with it.
	p, err = s.Begin("web", "cp2")
	must(t, err)
	f, err = p.CreateChunked("layer.tar")
	must(t, err)
	_, err = f.Write(random(6, 1<<20))
	must(t, err)
	must(t, f.Close())
	must(t, p.Abort())
	if got, files := poolBytes(t, s); got != 2<<20 {
		t.Errorf("after an aborted save the chunks hold %d bytes in %d files, want cp1's %d", got, files, 2<<20)
	}
}

// A manifest's chunks must add up to the file, be sha256 sums (they name
// files) and of a size ckpt writes.
func TestCheckChunks(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		chunks []format.Chunk
		want   string
	}{
		{"sum", []format.Chunk{{SHA256: "../../etc", Size: 10}}, "is not a sha256"},
		{"size", []format.Chunk{{SHA256: sum, Size: 4}, {SHA256: sum, Size: 5}}, "has 10 bytes and chunks of 9"},
		{"empty", []format.Chunk{{SHA256: sum, Size: 0}, {SHA256: sum, Size: 10}}, "chunk 0 has 0 bytes"},
		{"large", []format.Chunk{{SHA256: sum, Size: format.MaxChunk + 1}}, "not 1 to"},
		{"list", []format.Chunk{{SHA256: sum, Size: 10}}, "its sha256 is not that of its chunks"},
		{"many", slices.Repeat([]format.Chunk{{SHA256: sum, Size: 2}}, 5), "has 5 chunks for 10 bytes; ckpt cuts it into at most 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fileSum := format.ChunksSHA256(tc.chunks)
			if tc.name == "list" || tc.name == "sum" {
				fileSum = sum
			}
			m := format.Manifest{FormatVersion: format.Version, Files: []format.File{{Path: "layer.tar", Size: 10, SHA256: fileSum, Chunks: tc.chunks}}}
			if err := m.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check: %v, want %q", err, tc.want)
			}
		})
	}
	chunks := []format.Chunk{{SHA256: sum, Size: 10}}
	old := format.Manifest{FormatVersion: 2, Files: []format.File{{Path: "layer.tar", Size: 10, SHA256: format.ChunksSHA256(chunks), Chunks: chunks}}}
	if err := old.Check(); err == nil || !strings.Contains(err.Error(), "format version 2 does not have") {
		t.Errorf("Check of chunks in format 2: %v", err)
	}
}

// readErr reads the checkpoint file rel to its end (checking each chunk
// when verified) and returns the error that stopped it.
func readErr(t *testing.T, ck *Checkpoint, rel string, verified bool) error {
	t.Helper()
	open := ck.Open
	if verified {
		open = ck.OpenVerified
	}
	r, err := open(rel)
	must(t, err)
	defer r.Close()
	_, err = io.Copy(io.Discard, r)
	return err
}

// oddReader returns what it holds a few odd-sized pieces at a time, and
// its last bytes with io.EOF, as a reader may.
type oddReader struct {
	b []byte
	i int
}

func (r *oddReader) Read(p []byte) (int, error) {
	r.i++
	n := copy(p[:min(len(p), 1+r.i*7919%200000)], r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// TestReadFromCutsAsWrite: the CRIU images go through ReadFrom, the
// archives through Write; both cut the same bytes into the same chunks,
// by bytes or by pages,
// with the same contents (a second save shares chunks with the first only
// if it cuts the same way).
func TestReadFromCutsAsWrite(t *testing.T) {
	data := append(random(5, 9<<20), make([]byte, 5<<20)...) // runs of zeros reach chunkMax
	data = append(data, random(6, 123457)...)
	s := newStore(t)
	p, err := s.Begin("web", "cp")
	must(t, err)
	for _, tt := range []struct {
		name  string
		write func(w *chunkWriter) error
	}{
		{"Write", func(w *chunkWriter) error { _, err := w.Write(data); return err }},
		{"Write in pieces", func(w *chunkWriter) error {
			for b := data; len(b) > 0; {
				n, err := w.Write(b[:min(len(b), 4097)])
				if err != nil {
					return err
				}
				b = b[n:]
			}
			return nil
		}},
		{"ReadFrom", func(w *chunkWriter) error {
			n, err := w.ReadFrom(&oddReader{b: data})
			if err == nil && n != int64(len(data)) {
				t.Errorf("ReadFrom read %d bytes of %d", n, len(data))
			}
			return err
		}},
		{"Write then ReadFrom", func(w *chunkWriter) error {
			if _, err := w.Write(data[:300000]); err != nil {
				return err
			}
			_, err := w.ReadFrom(&oddReader{b: data[300000:]})
			return err
		}},
	} {
		for rel, want := range map[string][]int{"volumes/v.tar": chunksOf(data), "criu/pages-1.img": pageChunksOf(data)} {
			w, err := p.chunkWriter(rel)
			must(t, err)
			must(t, tt.write(w))
			chunks, err := w.Close()
			must(t, err)
			var got []byte
			for _, c := range chunks {
				b, err := os.ReadFile(p.pool.path(c.SHA256))
				must(t, err)
				got = append(got, b...)
			}
			if sizes := chunkSizes(chunks); !slices.Equal(sizes, want) {
				t.Errorf("%s, %s: chunks %v, want %v", tt.name, rel, sizes, want)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("%s, %s: the chunks hold other bytes", tt.name, rel)
			}
		}
	}
	must(t, p.Abort())
}

// TestChunkReaderCloseWhileRead: an HTTP transport may read a request's
// body in its own goroutine while the sender closes it. Close then waits
// for the Read, and a Read after it fails: nothing hangs.
func TestChunkReaderCloseWhileRead(t *testing.T) {
	data := random(8, 12<<20)
	s := newStore(t)
	ck := saveChunked(t, s, "cp1", format.VolumesDir+"/v.tar", data)
	f := ck.Manifest.Files[0]
	if len(f.Chunks) < readAhead+2 {
		t.Fatalf("%d chunks, want more than %d", len(f.Chunks), readAhead+1)
	}
	for range 50 {
		r := &chunkReader{pool: ck.chunks, chunks: f.Chunks, verify: true}
		read := make(chan error, 1)
		go func() {
			b := make([]byte, 777)
			for {
				if _, err := r.Read(b); err != nil {
					read <- err
					return
				}
			}
		}()
		closed := make(chan error, 1)
		go func() { closed <- r.Close() }()
		for _, c := range []chan error{closed, read} {
			select {
			case err := <-c:
				if c == read && !errors.Is(err, errReaderClosed) && err != io.EOF {
					t.Fatalf("Read: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Close or Read hangs")
			}
		}
	}
}

// TestNewBufHugePages: a chunk buffer starts on a huge page boundary and
// carries the advice to back it with huge pages (VmFlags "hg" in
// /proc/self/smaps, for the mapping that holds it).
func TestNewBufHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("this kernel has no transparent huge pages")
	}
	b := newBuf()
	if len(b) != 0 || cap(b) != chunkMax {
		t.Fatalf("newBuf: len %d cap %d, want 0 and %d", len(b), cap(b), chunkMax)
	}
	addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	if addr%hugePage != 0 {
		t.Fatalf("buffer at %#x is not on a %d-byte boundary", addr, hugePage)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var in bool
	for line := range strings.Lines(string(smaps)) {
		var lo, hi uint64
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil {
			in = lo <= addr && addr+chunkMax <= hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			if !slices.Contains(strings.Fields(line), "hg") {
				t.Fatalf("the mapping holding the buffer has no huge page advice: %s", line)
			}
			runtime.KeepAlive(b)
			return
		}
	}
	t.Fatalf("no mapping in /proc/self/smaps holds the buffer at %#x whole", addr)
}

// TestCutAndPlannedChunks: Cut ends a chunk where it is called (at the
// start, or twice in a row, it adds no empty chunk), and the content
// decides the boundaries on either side as it would in a file of its own;
// CreateChunks cuts at the sizes it is given, whatever the content.
func TestCutAndPlannedChunks(t *testing.T) {
	a, b := random(7, 700_000), random(8, 3<<20+12345)
	s := newStore(t)
	p, err := s.Begin("web", "cp")
	must(t, err)
	f, err := p.CreateChunked("volumes/v.tar")
	must(t, err)
	must(t, f.Cut())
	_, err = f.Write(a)
	must(t, err)
	must(t, f.Cut())
	must(t, f.Cut())
	_, err = f.ReadFrom(&oddReader{b: b})
	must(t, err)
	must(t, f.Close())
	if want := append(chunksOf(a), chunksOf(b)...); !slices.Equal(chunkSizes(p.files[0].Chunks), want) {
		t.Errorf("cut after %d bytes: chunks %v, want %v", len(a), chunkSizes(p.files[0].Chunks), want)
	}

	plan := []format.Chunk{{Size: 1 << 20}, {Size: 1 << 20}, {Size: 100}, {Size: int64(len(b)) - 2<<20 - 100}}
	g, err := p.CreateChunks("criu/pages-1.img", plan)
	must(t, err)
	for rest := b; len(rest) > 0; {
		n, err := g.Write(rest[:min(len(rest), 77777)])
		must(t, err)
		rest = rest[n:]
	}
	must(t, g.Close())
	chunks := p.files[1].Chunks
	if got, want := chunkSizes(chunks), chunkSizes(plan); !slices.Equal(got, want) {
		t.Errorf("CreateChunks: chunks %v, want %v", got, want)
	}
	var got []byte
	for _, c := range chunks {
		data, err := os.ReadFile(p.pool.path(c.SHA256))
		must(t, err)
		got = append(got, data...)
	}
	if !bytes.Equal(got, b) {
		t.Error("CreateChunks: the chunks hold other bytes")
	}
	// Fewer bytes than planned: the last chunk is what there was.
	h, err := p.CreateChunks("criu/pages-2.img", []format.Chunk{{Size: 1000}, {Size: 5000}})
	must(t, err)
	_, err = h.Write(b[:3000])
	must(t, err)
	must(t, h.Close())
	if got := chunkSizes(p.files[2].Chunks); !slices.Equal(got, []int{1000, 2000}) {
		t.Errorf("CreateChunks of fewer bytes than planned: chunks %v, want [1000 2000]", got)
	}
	must(t, p.Abort())
}

func chunkSizes(chunks []format.Chunk) []int {
	var sizes []int
	for _, c := range chunks {
		sizes = append(sizes, int(c.Size))
	}
	return sizes
}

// TestArchiveRewrittenFile: in a volume's archive, a large file that was
// rewritten between two saves costs the second save its own bytes and
// nothing of its neighbours' (archive.Write cuts around it), and the files
// that did not change add nothing.
func TestArchiveRewrittenFile(t *testing.T) {
	root := t.TempDir()
	for i := range 300 {
		must(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("small-%03d", i)), random(uint64(100+i), 3000+i), 0o644))
	}
	const big = 2<<20 + 1000
	for i := range 12 {
		must(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("blob-%02d", i)), random(uint64(1000+i), big), 0o644))
	}
	s := newStore(t)
	save := func(name string) int64 {
		before, _ := poolBytes(t, s)
		p, err := s.Begin("web", name)
		must(t, err)
		f, err := p.CreateChunked("volumes/v.tar")
		must(t, err)
		_, err = archive.Write(context.Background(), f, root, archive.Plain)
		must(t, err)
		must(t, f.Close())
		commit(t, p, &format.Manifest{Created: time.Now(), Mode: format.ModeCold})
		after, _ := poolBytes(t, s)
		return after - before
	}
	first := save("cp1")
	for _, i := range []int{3, 4, 9} {
		must(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("blob-%02d", i)), random(uint64(2000+i), big), 0o644))
	}
	second := save("cp2")
	// Each rewritten file's chunks hold its header, data and padding: a
	// few blocks more than its data.
	if changed := int64(3 * big); second < changed || second > changed+3*4096 {
		t.Errorf("3 files of %d bytes rewritten: the second save added %d bytes of chunks (the first %d)", big, second, first)
	} else {
		t.Logf("3 files of %d bytes rewritten: the second save added %d bytes of chunks, the first %d", big, second, first)
	}
	if third := save("cp3"); third != 0 {
		t.Errorf("nothing changed: the third save added %d bytes of chunks", third)
	}
}

// TestArchiveChunksBound: an archive whose small and large files alternate,
// the most cuts an archive gets, still has no more chunks than a manifest
// may list (format.MaxChunks).
func TestArchiveChunksBound(t *testing.T) {
	root := t.TempDir()
	for i := range 20 {
		must(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("%02d-a", i)), []byte{byte(i)}, 0o644))
		must(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("%02d-b", i)), random(uint64(300+i), format.EntryCut), 0o644))
	}
	s := newStore(t)
	p, err := s.Begin("web", "cp")
	must(t, err)
	f, err := p.CreateChunked("volumes/v.tar")
	must(t, err)
	_, err = archive.Write(context.Background(), f, root, archive.Plain)
	must(t, err)
	must(t, f.Close())
	got := p.files[0]
	n := int64(len(got.Chunks))
	t.Logf("%d chunks for %d bytes, at most %d", n, got.Size, format.MaxChunks(got.Size))
	if n < 41 || n > format.MaxChunks(got.Size) {
		t.Errorf("%d chunks for %d bytes: want 41 (a run of small files between each two cuts) to %d", n, got.Size, format.MaxChunks(got.Size))
	}
	must(t, p.Abort())
}
