package store

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// Follow takes in the chunked files under rel (the memory pages CRIU
// writes, format.Chunked) while another process still writes them, so that
// cutting, hashing and writing the chunks overlap the dump instead of
// following it. It relies on the writer only appending to a file, never
// rewriting what it wrote: CRIU splices each page image onto the end of its
// file, so the bytes below a file's end are final. Adopt then uses what was
// followed, once Finish says the writer has returned.
//
// On this machine CRIU's dump of 2 GiB spent 3.6 s in the kernel on one core
// writing its pages to the page cache, the other core idle: taking them in
// after the dump added 4.5 s to a save.
type Follow struct {
	p      *Pending
	dir    string
	done   chan struct{} // closed by Finish: the writer has returned
	stop   chan struct{} // closed by Stop: what is followed is dropped
	once   sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex
	seen   map[string]bool
	files  map[string]followed // by path, once a file is taken in
	result map[string]format.File
}

type followed struct {
	f   format.File
	err error
}

// followPoll is how often Follow looks for new files in the directory, and
// how long a reader that caught up with the writer waits before it reads
// again (at 1 GB/s, 10 MB behind).
const followPoll = 10 * time.Millisecond

// Follow starts following the chunked files under rel, until Finish or
// Stop.
func (p *Pending) Follow(rel string) *Follow {
	f := &Follow{p: p, dir: p.Path(rel), done: make(chan struct{}), stop: make(chan struct{}),
		seen: map[string]bool{}, files: map[string]followed{}}
	f.wg.Add(1)
	go f.watch()
	return f
}

// watch starts a reader for each chunked file that appears in the
// directory, until the writer returned (a last look then) or Stop.
func (f *Follow) watch() {
	defer f.wg.Done()
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		finished := closed(f.done)
		entries, _ := os.ReadDir(f.dir)
		for _, e := range entries {
			path := filepath.Join(f.dir, e.Name())
			rel, err := filepath.Rel(f.p.dir, path)
			if err != nil || !e.Type().IsRegular() || !format.Chunked(filepath.ToSlash(rel)) || f.seen[path] {
				continue
			}
			f.seen[path] = true
			f.wg.Add(1)
			go f.take(path, filepath.ToSlash(rel))
		}
		if finished {
			return
		}
		select {
		case <-f.stop:
			return
		case <-f.done:
		case <-tick.C:
		}
	}
}

// take cuts the file at path into the store's chunks as it grows.
func (f *Follow) take(path, rel string) {
	defer f.wg.Done()
	var r followed
	defer func() {
		f.mu.Lock()
		f.files[path] = r
		f.mu.Unlock()
	}()
	file, err := os.Open(path)
	if err != nil {
		r.err = err
		return
	}
	defer file.Close()
	cw, err := f.p.chunkWriter()
	if err != nil {
		r.err = err
		return
	}
	n, err := cw.ReadFrom(&growing{f: file, done: f.done, stop: f.stop})
	chunks, cerr := cw.Close()
	if r.err = errors.Join(err, cerr); r.err == nil {
		r.f = format.File{Path: rel, Size: n, SHA256: format.ChunksSHA256(chunks), Chunks: chunks}
	}
}

// Finish says the writer has returned: the readers read to the ends of the
// files and stop. It returns the files taken in whole, by path.
func (f *Follow) Finish() map[string]format.File {
	if f == nil {
		return nil
	}
	f.once.Do(func() {
		close(f.done)
		f.wg.Wait()
		f.result = map[string]format.File{}
		for path, r := range f.files {
			if r.err == nil {
				f.result[path] = r.f
			}
		}
	})
	return f.result
}

// Stop drops what was followed (the writer failed, or the save did) and
// waits for the readers. The chunks already stored stay until a collection.
func (f *Follow) Stop() {
	if f == nil {
		return
	}
	f.once.Do(func() {
		close(f.stop)
		f.wg.Wait()
	})
}

// errStopped ends a reader that Stop ended.
var errStopped = errors.New("following stopped")

// growing reads a file that is being appended to: at its end it waits for
// more, until done says the writer returned (the end is then the end) or
// stop.
type growing struct {
	f          *os.File
	done, stop <-chan struct{}
	timer      *time.Timer
}

func (g *growing) Read(b []byte) (int, error) {
	for {
		// Whatever the writer wrote before it returned is below the end
		// a read after done sees.
		finished := closed(g.done)
		n, err := g.f.Read(b)
		if n > 0 || err != io.EOF || finished {
			return n, err
		}
		if g.timer == nil {
			g.timer = time.NewTimer(followPoll)
		} else {
			g.timer.Reset(followPoll)
		}
		select {
		case <-g.stop:
			return 0, errStopped
		case <-g.done:
		case <-g.timer.C:
		}
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
