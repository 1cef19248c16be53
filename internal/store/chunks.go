package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/format"
)

// Chunk boundaries are content-defined (FastCDC's gear hash with normalized
// chunking): a boundary depends only on the 64 bytes before it, so bytes
// inserted or removed move the boundaries near them and no others, and two
// saves of memory or of a volume that changed a little share every chunk
// the change did not touch. Chunks are 256 KiB to 4 MiB, about 1 MiB on
// average: large enough that a GiB is a thousand files, small enough that
// 10% of memory rewritten in places costs little more than 10%.
//
// The parameters and the gear table are in docs/format.md. A reader does
// not depend on them: an import or a pull stores the chunks a manifest
// lists, checking each. A save that cuts otherwise shares fewer chunks
// with the checkpoints before it, nothing more.
const (
	// chunkMin is format.EntryCut, which format.MaxChunks counts on.
	chunkMin = format.EntryCut
	chunkAvg = 1 << 20
	chunkMax = format.MaxChunk
	// Before chunkAvg bytes a boundary needs 22 zero bits, after it 18, so
	// that chunk sizes gather around chunkAvg. The gear hash shifts left,
	// so its high bits depend on the most bytes: the masks take those.
	maskSmall = uint64(1<<22-1) << (64 - 22)
	maskLarge = uint64(1<<18-1) << (64 - 18)
	// window is how many bytes a boundary depends on: hashing starts that
	// many bytes before chunkMin.
	window = 64
)

// CRIU's page images hold whole pages of memory, and what changes between
// two saves are whole pages: pages rewritten in place, pages added or gone
// (which move those after them by whole pages). Such an image is cut only
// between two pages, by the same rule as other files, taken once per page
// instead of once per byte: a boundary is where the gear hash of the window
// bytes before the page boundary has 10 zero high bits (before chunkAvg),
// then 6; 12 bits fewer than per byte, for 4096 times fewer places to cut,
// so that chunks are as large. The cutter hashes 64 bytes of each 4 KiB
// page instead of 3 KiB on average: cutting by bytes took more CPU than
// sha256 (BenchmarkCut, BenchmarkSHA256, BenchmarkCutPages; measured in
// bench/README.md, "Memory pages cut between pages").
const (
	pageSize      = 4096
	maskPageSmall = uint64(1<<10-1) << (64 - 10)
	maskPageLarge = uint64(1<<6-1) << (64 - 6)
)

// gear maps a byte to a random 64-bit value: the first 8 bytes
// (little-endian) of sha256("ckpt-gear" + the byte).
var gear = func() (t [256]uint64) {
	for i := range t {
		s := sha256.Sum256([]byte{'c', 'k', 'p', 't', '-', 'g', 'e', 'a', 'r', byte(i)})
		t[i] = binary.LittleEndian.Uint64(s[:8])
	}
	return t
}()

// cutter finds chunk boundaries in bytes that arrive piece by piece: it
// remembers how far it hashed the current chunk, so each byte is hashed
// once however the bytes are written.
type cutter struct {
	pos int    // bytes of the current chunk hashed
	fp  uint64 // the gear hash at pos
}

// next returns the length of the current chunk, whose bytes so far are b:
// the first boundary, or chunkMax, or len(b) (at most chunkMax) when final
// says no bytes follow; -1 when more bytes are needed to decide. A length
// returned starts the next chunk.
func (c *cutter) next(b []byte, final bool) int {
	b = b[:min(len(b), chunkMax)]
	n, fp, g := len(b), c.fp, &gear
	i := max(c.pos, chunkMin-window)
	// Three loops, so that the one a byte is in needs no test but its own:
	// the window before chunkMin is hashed only; up to chunkAvg a boundary
	// takes the small mask, after it the large one.
	for ; i < min(n, chunkMin); i++ {
		fp = fp<<1 + g[b[i]]
	}
	for ; i < min(n, chunkAvg); i++ {
		fp = fp<<1 + g[b[i]]
		if fp&maskSmall == 0 {
			*c = cutter{}
			return i + 1
		}
	}
	for ; i < n; i++ {
		fp = fp<<1 + g[b[i]]
		if fp&maskLarge == 0 {
			*c = cutter{}
			return i + 1
		}
	}
	c.pos, c.fp = i, fp
	switch {
	case n == chunkMax:
		*c = cutter{}
		return chunkMax
	case final:
		*c = cutter{}
		return n
	}
	return -1
}

// nextPage is next for a page image (see pageSize): the length of the
// current chunk, whose bytes so far are b, always a whole number of pages
// but for the last chunk of the file; or -1 when more bytes are needed.
func (c *cutter) nextPage(b []byte, final bool) int {
	b = b[:min(len(b), chunkMax)]
	n, g := len(b), &gear
	i := max(c.pos, chunkMin)
	for ; i <= n && i < chunkMax; i += pageSize {
		var fp uint64
		for _, x := range b[i-window : i] {
			fp = fp<<1 + g[x]
		}
		mask := maskPageLarge
		if i <= chunkAvg {
			mask = maskPageSmall
		}
		if fp&mask == 0 {
			*c = cutter{}
			return i
		}
	}
	c.pos = i
	switch {
	case n == chunkMax:
		*c = cutter{}
		return chunkMax
	case final:
		*c = cutter{}
		return n
	}
	return -1
}

// cut returns the length of the first chunk of b, all the bytes there are.
func cut(b []byte) int {
	var c cutter
	return c.next(b, true)
}

// chunkPool is the store's chunks: <store>/chunks/sha256/<xx>/<sha256>.
type chunkPool struct {
	root, dir string
}

func (s *Store) chunks() *chunkPool {
	return &chunkPool{root: s.Root, dir: filepath.Join(s.Root, format.ChunksDir)}
}

// path is where the chunk with sha256 sum is stored. One directory holds
// them all (ext4 and XFS index large directories): a save syncs one
// directory, not one per fan-out directory it wrote into.
func (p *chunkPool) path(sum string) string {
	return filepath.Join(p.dir, "sha256", sum)
}

// lock takes the pool's lock, shared (writers of chunks) or exclusive
// (collection), waiting for it when wait is true. It returns nil, nil when
// the lock is held the other way and wait is false. The lock is flock(2)
// on the store's directory: taking it creates nothing.
func (p *chunkPool) lock(how int, wait bool) (*os.File, error) {
	f, err := os.Open(p.root)
	if err != nil {
		return nil, err
	}
	if !wait {
		how |= unix.LOCK_NB
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", p.root, err)
	}
	return f, nil
}

// write starts storing data under its sha256 sum unless the pool has it:
// it writes a temporary file and starts its writeback, and returns its
// name for settle, or "" when the pool has the chunk.
func (p *chunkPool) write(sum string, data []byte) (string, error) {
	path := p.path(sum)
	if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() && st.Size() == int64(len(data)) {
		return "", nil
	}
	if err := os.MkdirAll(filepath.Dir(path), DirMode); err != nil {
		return "", err
	}
	var r [8]byte
	rand.Read(r[:])
	tmp := path + format.TempPrefix + hex.EncodeToString(r[:])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return "", err
	}
	err = writeDirect(f, data)
	if err == nil {
		// The disk starts on what did not go direct now; settle's fsync
		// then mostly waits for writes already under way.
		unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// settle makes the chunk written to tmp durable and gives it its name:
// only a chunk on disk is ever found under its sum, so a save that finds
// it there and lists it needs nothing more. Its directory entry is durable
// once dirs are synced.
func (p *chunkPool) settle(tmp string, dirs *dirSet) error {
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, tmp[:strings.LastIndex(tmp, format.TempPrefix)])
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	dirs.add(filepath.Dir(tmp))
	return nil
}

// dirSet is the directories whose entries changed, to sync once.
type dirSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (d *dirSet) add(dir string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]bool{}
	}
	if !d.m[dir] {
		// The pool's directories may be new too: their entries up to
		// the store's directory.
		d.m[dir] = true
		d.m[filepath.Dir(dir)] = true
		d.m[filepath.Dir(filepath.Dir(dir))] = true
	}
}

func (d *dirSet) sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for dir := range d.m {
		if err := atomicfile.SyncDir(dir); err != nil {
			return err
		}
	}
	d.m = nil
	return nil
}

// chunkWriter cuts what is written to it into chunks and stores those the
// pool lacks, several at once. Close returns the chunks in order.
type chunkWriter struct {
	pool  *chunkPool
	cut   cutter
	pages bool // a page image: cut between pages only (nextPage)
	// plan, when not nil, gives the sizes of the chunks to cut in order,
	// instead of content-defined boundaries (an import takes the chunks its
	// manifest lists); bytes past the plan are cut by content.
	plan    []int64
	cur     []byte // the current chunk's bytes so far (a getBuf buffer), or nil
	chunks  []*format.Chunk
	sem     chan struct{}
	wg      sync.WaitGroup
	settles chan string // temporary chunk files to settle
	settled sync.WaitGroup
	dirs    dirSet
	mu      sync.Mutex
	err     error
}

// settlers is how many chunks a writer syncs at once: each fsync waits for
// the journal, and the file system commits concurrent ones together.
const settlers = 32

// freeBufs holds chunk buffers between uses for the life of the process,
// so that a writer's memory stays at a few chunks whatever the size of the
// file, and is touched once: memory the process has not touched yet costs
// a page fault per page, which on a virtual machine costs more than
// hashing the page (a fresh 256 MiB took 1 s to hash here, the same memory
// again 0.17 s).
var freeBufs = make(chan []byte, 16)

func getBuf() []byte {
	select {
	case b := <-freeBufs:
		return b[:0]
	default:
		return newBuf()
	}
}

// hugePage is the size of the kernel's transparent huge pages on amd64 and
// arm64 (with 4 KiB pages).
const hugePage = 2 << 20

// newBuf allocates a chunk buffer that the kernel may back with huge pages
// (madvise MADV_HUGEPAGE, which the default "madvise" setting of
// /sys/kernel/mm/transparent_hugepage/enabled honours): the buffer starts on
// a huge page boundary, so that its 4 MiB take two page faults instead of
// 1024. A save of 64 MiB of memory and a 256 MiB volume took 8,600-9,300
// page faults, 2,700-2,800 with them, and 0.10-0.15 s less CPU
// (bench/README.md). Where the kernel has no huge pages to give, or
// refuses the advice, the buffer is an ordinary one.
func newBuf() []byte {
	b := make([]byte, chunkMax+hugePage)
	off := (hugePage - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%hugePage)) % hugePage
	b = b[off : off+chunkMax : off+chunkMax]
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	return b[:0]
}

func putBuf(b []byte) {
	if cap(b) < chunkMax {
		return
	}
	select {
	case freeBufs <- b[:0]:
	default:
	}
}

func newChunkWriter(pool *chunkPool) *chunkWriter {
	w := &chunkWriter{pool: pool, sem: make(chan struct{}, 2*max(runtime.GOMAXPROCS(0), 2)),
		settles: make(chan string, settlers)}
	for range settlers {
		w.settled.Add(1)
		go func() {
			defer w.settled.Done()
			for tmp := range w.settles {
				w.fail(w.pool.settle(tmp, &w.dirs))
			}
		}()
	}
	return w
}

// fail records the first error.
func (w *chunkWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && w.err == nil {
		w.err = err
	}
}

// Write cuts what is written to it into chunks. The bytes are copied once,
// into the buffer of the chunk they belong to; at a boundary, only what
// follows it in the current buffer (at most the last write) moves to the
// next one. (Before, the writer kept an 8 MiB buffer whose rest it moved to
// its front at each boundary, and copied each chunk out of it again: a
// 256 MiB volume took 0.58 s to store on the writer's one goroutine, with
// the cores half idle.)
func (w *chunkWriter) Write(b []byte) (int, error) {
	if err := w.failed(); err != nil {
		return 0, err
	}
	n := len(b)
	for len(b) > 0 {
		if w.cur == nil {
			w.cur = getBuf()
		}
		k := min(len(b), chunkMax-len(w.cur))
		w.cur = append(w.cur, b[:k]...)
		b = b[k:]
		w.cutCur(false)
		if err := w.failed(); err != nil {
			return n - len(b), err
		}
	}
	return n, nil
}

// cutCur stores every chunk that cur holds whole, and with final the rest.
func (w *chunkWriter) cutCur(final bool) {
	for len(w.cur) > 0 {
		k := w.next(final)
		if k < 0 {
			return
		}
		var next []byte
		if k < len(w.cur) {
			next = append(getBuf(), w.cur[k:]...)
		}
		w.storeOwned(w.cur[:k])
		w.cur = next
	}
}

// next returns the length of the chunk cur starts with, or -1 when more
// bytes are needed to know it.
func (w *chunkWriter) next(final bool) int {
	switch {
	case len(w.plan) == 0 && w.pages:
		return w.cut.nextPage(w.cur, final)
	case len(w.plan) == 0:
		return w.cut.next(w.cur, final)
	}
	k := int(w.plan[0])
	switch {
	case k <= len(w.cur):
		w.plan = w.plan[1:]
		return k
	case final || len(w.cur) == chunkMax:
		// Fewer bytes than planned: the chunk is what there is, and the
		// caller finds that its size and sum differ.
		w.plan = w.plan[1:]
		return len(w.cur)
	}
	return -1
}

// Cut ends the current chunk here: what is written next starts a chunk.
// An archive cuts before and after each large entry (format.EntryCut), so
// that a file rewritten between two saves costs its own chunks only, not
// also the chunks it shared with its neighbours.
func (w *chunkWriter) Cut() error {
	if err := w.failed(); err != nil {
		return err
	}
	w.cutCur(true)
	return w.failed()
}

// readStep is how much ReadFrom reads at a time: at a boundary, what
// follows it in the buffer is copied into the next chunk's, so a small
// step copies little (an eighth of the bytes on average), and the cutter
// goes on from where it stopped.
const readStep = 256 << 10

// ReadFrom writes what r holds, reading it straight into chunk buffers
// that go to the pool as they are. The CRIU images go this way.
func (w *chunkWriter) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if err := w.failed(); err != nil {
			return total, err
		}
		if w.cur == nil {
			w.cur = getBuf()
		}
		n, err := r.Read(w.cur[len(w.cur):min(chunkMax, len(w.cur)+readStep)])
		w.cur = w.cur[:len(w.cur)+n]
		total += int64(n)
		if err == io.EOF {
			return total, w.failed()
		}
		if err != nil {
			putBuf(w.cur)
			w.cur = nil
			return total, err
		}
		w.cutCur(false)
	}
}

// storeOwned hashes own, a buffer of getBuf's that the writer may keep,
// and puts it in the pool in the background.
func (w *chunkWriter) storeOwned(own []byte) {
	c := &format.Chunk{Size: int64(len(own))}
	w.chunks = append(w.chunks, c)
	w.sem <- struct{}{}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.sem }()
		defer putBuf(own)
		s := sha256.Sum256(own)
		c.SHA256 = hex.EncodeToString(s[:])
		tmp, err := w.pool.write(c.SHA256, own)
		w.fail(err)
		if tmp != "" {
			w.settles <- tmp
		}
	}()
}

func (w *chunkWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close stores the last chunk, waits for all, syncs the directories of new
// chunks and returns the chunks (an empty list for an empty file).
func (w *chunkWriter) Close() ([]format.Chunk, error) {
	err := w.failed()
	if err == nil {
		w.cutCur(true)
	}
	putBuf(w.cur)
	w.cur = nil
	w.wg.Wait()
	close(w.settles)
	w.settled.Wait()
	if err == nil {
		err = w.failed()
	}
	if err == nil {
		err = w.dirs.sync()
	}
	if err != nil {
		return nil, err
	}
	out := make([]format.Chunk, len(w.chunks))
	for i, c := range w.chunks {
		out[i] = *c
	}
	return out, nil
}

// chunkReader reads a chunked file: its chunks, one after the other, each
// of the size the manifest gives. It reads readAhead chunks at once, each
// whole into a buffer of its own, direct from the disk (openDirect):
// chunks are written direct (writeDirect), so a resume finds them on the
// disk, not in the page cache, and one chunk at a time would wait for the
// disk on each.
type chunkReader struct {
	// mu makes Close safe while a Read runs: an HTTP transport may still
	// read a request's body in its own goroutine after the request failed
	// and its sender closed the body (a push cut off waited forever in
	// Close for a chunk the Read had taken).
	mu     sync.Mutex
	pool   *chunkPool
	chunks []format.Chunk
	verify bool // check each chunk's sha256 as it is read
	// ahead holds the chunks being read, in order; next is the index of
	// the first chunk not yet asked for.
	ahead []chan readChunk
	next  int
	cur   readChunk // the chunk being handed out
	off   int       // how much of cur is handed out
	err   error
}

// readAhead is how many chunks a chunkReader reads at once: about 4 MiB in
// flight, at most 4 MiB of buffers each.
const readAhead = 4

// readChunk is a chunk read whole, or why it could not be.
type readChunk struct {
	buf []byte
	err error
}

// ErrChunkSize is the error of a chunk whose size is not the one the
// manifest gives; ErrChunkSum of one whose sha256 is not.
var (
	ErrChunkSize = errors.New("its size is not the one the manifest gives")
	ErrChunkSum  = errors.New("sha256 mismatch")
)

// errReaderClosed is what a chunkReader's Read returns once it is closed.
var errReaderClosed = errors.New("read of a closed chunk reader")

func (r *chunkReader) Read(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.off == len(r.cur.buf) {
		if r.err != nil {
			return 0, r.err
		}
		putBuf(r.cur.buf)
		r.cur, r.off = readChunk{}, 0
		for len(r.ahead) < readAhead && r.next < len(r.chunks) {
			ch := make(chan readChunk, 1)
			go func(c format.Chunk) { ch <- r.pool.read(c, r.verify) }(r.chunks[r.next])
			r.ahead = append(r.ahead, ch)
			r.next++
		}
		if len(r.ahead) == 0 {
			r.err = io.EOF
			continue
		}
		r.cur = <-r.ahead[0]
		r.ahead = r.ahead[1:]
		r.err = r.cur.err
	}
	n := copy(b, r.cur.buf[r.off:])
	r.off += n
	return n, nil
}

// read reads chunk c whole into a buffer of getBuf's, checking its size,
// and its sha256 when verify is true.
func (p *chunkPool) read(c format.Chunk, verify bool) readChunk {
	name := c.SHA256[:12]
	f, err := openDirect(p.path(c.SHA256))
	if errors.Is(err, fs.ErrNotExist) {
		return readChunk{err: fmt.Errorf("chunk %s is missing from the store: %w", name, fs.ErrNotExist)}
	} else if err != nil {
		return readChunk{err: err}
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return readChunk{err: err}
	} else if st.Size() != c.Size || c.Size > chunkMax {
		return readChunk{err: fmt.Errorf("chunk %s: %w", name, ErrChunkSize)}
	}
	buf, err := readChunkFile(f, getBuf(), c.Size)
	if err != nil {
		putBuf(buf)
		return readChunk{err: fmt.Errorf("chunk %s: %w", name, err)}
	}
	if int64(len(buf)) != c.Size {
		putBuf(buf)
		return readChunk{err: fmt.Errorf("chunk %s: %w", name, ErrChunkSize)}
	}
	if verify {
		if s := sha256.Sum256(buf); hex.EncodeToString(s[:]) != c.SHA256 {
			putBuf(buf)
			return readChunk{err: fmt.Errorf("chunk %s: %w", name, ErrChunkSum)}
		}
	}
	return readChunk{buf: buf}
}

// Close waits for the chunks still being read and gives back their
// buffers.
func (r *chunkReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range r.ahead {
		putBuf((<-ch).buf)
	}
	r.ahead = nil
	putBuf(r.cur.buf)
	r.cur = readChunk{}
	r.off = 0
	r.err = errReaderClosed
	return nil
}

// chunkReaderAt reads a chunked file at any offset.
type chunkReaderAt struct {
	pool   *chunkPool
	chunks []format.Chunk
	starts []int64
}

func newChunkReaderAt(pool *chunkPool, chunks []format.Chunk) *chunkReaderAt {
	r := &chunkReaderAt{pool: pool, chunks: chunks, starts: make([]int64, len(chunks)+1)}
	for i, c := range chunks {
		r.starts[i+1] = r.starts[i] + c.Size
	}
	return r
}

func (r *chunkReaderAt) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		pos := off + int64(n)
		i := sort.Search(len(r.chunks), func(i int) bool { return r.starts[i+1] > pos }) // the chunk holding pos
		if i >= len(r.chunks) {
			return n, io.EOF
		}
		f, err := os.Open(r.pool.path(r.chunks[i].SHA256))
		if err != nil {
			return n, err
		}
		want := min(int64(len(b)-n), r.starts[i+1]-pos)
		k, err := f.ReadAt(b[n:n+int(want)], pos-r.starts[i])
		f.Close()
		n += k
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}

func (r *chunkReaderAt) Close() error { return nil }

// ReaderAtCloser is a file of a checkpoint opened for reading at offsets.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}

// CollectChunks removes the chunks that no checkpoint of the store lists
// (those of removed checkpoints, of saves that did not finish) and the
// leftovers of chunk writes that were cut off. It does nothing, and says
// so with busy, while a save or an import writes chunks: the next
// collection takes what this one left. Nothing else needs to wait for it:
// it holds no container's lock, and the checkpoints it reads are complete
// ones, whose manifests do not change.
func (s *Store) CollectChunks() (removed int, freed int64, busy bool, err error) {
	pool := s.chunks()
	if _, err := os.Lstat(pool.dir); errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	l, err := pool.lock(unix.LOCK_EX, false)
	if err != nil || l == nil {
		return 0, 0, l == nil && err == nil, err
	}
	defer l.Close()
	used, err := s.usedChunks()
	if err != nil {
		return 0, 0, false, err
	}
	root := filepath.Join(pool.dir, "sha256")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == root {
			return fs.SkipAll
		}
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if used[name] && !strings.Contains(name, format.TempPrefix) {
			return nil
		}
		if st, err := d.Info(); err == nil {
			freed += st.Size()
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, freed, false, err
	}
	// Directories left empty go: a store whose chunks all went looks as
	// it did before its first.
	os.Remove(root)
	os.Remove(pool.dir)
	return removed, freed, false, nil
}

// usedChunks returns the sums of the chunks listed by the manifests of the
// store's checkpoints. A checkpoint whose manifest is damaged (missing,
// not matching its sha256, not JSON) is never resumed: its chunks are not
// kept for it. One whose manifest matches its sha256 and parses, but that
// this ckpt's checks refuse, keeps its chunks: some ckpt committed it as it
// is. Any other error, such as an I/O error reading a manifest, says
// nothing of the checkpoint, which may be whole: it stops the collection,
// and nothing is removed.
func (s *Store) usedChunks() (map[string]bool, error) {
	used := map[string]bool{}
	containers, err := s.Containers()
	if err != nil {
		return nil, fmt.Errorf("cannot list the store's containers, so no chunk was removed: %w", err)
	}
	for _, c := range containers {
		ents, err := os.ReadDir(s.checkpointsDir(c))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("cannot list the checkpoints of %s, so no chunk was removed: %w", c, err)
		}
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), format.TempPrefix) {
				continue
			}
			m, err := readManifest(filepath.Join(s.checkpointsDir(c), e.Name()))
			var newer *newerFormatError
			var damaged *damagedManifestError
			switch {
			case errors.As(err, &newer):
				return nil, fmt.Errorf("checkpoint %s:%s has format version %d, newer than this ckpt's; its chunks are unknown here, so none were removed (a newer ckpt collects them)", c, e.Name(), newer.version)
			case errors.As(err, &damaged) && damaged.parsed != nil:
				m = damaged.parsed
			case errors.As(err, &damaged):
				continue
			case err != nil:
				return nil, fmt.Errorf("checkpoint %s:%s: cannot read its manifest, so no chunk was removed: %w", c, e.Name(), err)
			}
			for _, f := range m.Files {
				for _, ch := range f.Chunks {
					used[ch.SHA256] = true
				}
			}
		}
	}
	return used, nil
}
