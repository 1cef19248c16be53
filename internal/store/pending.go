package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
)

// Pending is a checkpoint being written. Nothing reads it as a checkpoint
// until Commit renames it into place; Abort removes it.
type Pending struct {
	// Name is the checkpoint's name.
	Name string
	// Imported marks a checkpoint brought by ckpt import from an archive
	// (format.Origin); set it before Commit.
	Imported bool
	// Signer, when set, signs the manifest at the commit (a save, with
	// the store's Identity).
	Signer ssh.Signer
	// Signature is the signature an imported checkpoint came with, kept
	// beside its manifest (format.SignatureFile); nil for none. Set it
	// before Commit.
	Signature []byte
	container string
	dir       string
	final     string
	// mu guards files and replaced: a save writes several files at once.
	mu    sync.Mutex
	files []format.File
	// replaced are the files, written by the engine, that were stored as
	// chunks: they stay until the commit (a failed save starts the
	// container again from them), then go.
	replaced []string
	store    *Store
	pool     *chunkPool
	poolLock *os.File
	// dirs are the chunk directories PutChunk changed, synced by Commit.
	dirs dirSet
}

// Begin starts writing checkpoint name of container. The caller must hold
// the container's lock.
func (s *Store) Begin(container, name string) (*Pending, error) {
	if !ValidName(container) {
		return nil, fmt.Errorf("cannot store container name %q", container)
	}
	if !ValidName(name) {
		return nil, hint.New(fmt.Sprintf("invalid checkpoint name %q", name), "use letters, digits, '_', '.' and '-', starting with a letter or digit")
	}
	parent := s.checkpointsDir(container)
	if err := os.MkdirAll(parent, DirMode); err != nil {
		return nil, err
	}
	p := &Pending{Name: name, container: container, dir: filepath.Join(parent, format.TempPrefix+name), final: filepath.Join(parent, name)}
	if _, err := os.Lstat(p.final); err == nil {
		return nil, &ExistsError{Container: container, Name: name}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(p.dir, DirMode); err != nil {
		return nil, err
	}
	p.store, p.pool = s, s.chunks()
	return p, nil
}

// chunkWriter returns a writer of chunks into the store. Chunks written
// before the commit are listed by no manifest yet: from the first, the
// pending checkpoint holds the pool's lock shared, which keeps the
// collection of unused chunks away until the commit or the abort.
func (p *Pending) chunkWriter(rel string) (*chunkWriter, error) {
	if err := p.holdPool(); err != nil {
		return nil, err
	}
	w := newChunkWriter(p.pool)
	w.pages = format.PagesImage(rel)
	return w, nil
}

// holdPool takes the pool's lock shared, once: from then on until the
// commit or the abort, no collection removes a chunk.
func (p *Pending) holdPool() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.poolLock == nil {
		l, err := p.pool.lock(unix.LOCK_SH, true)
		if err != nil {
			return err
		}
		p.poolLock = l
	}
	return nil
}

// release lets the collection of chunks run again; it reports whether the
// pending checkpoint had written chunks.
func (p *Pending) release() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.poolLock == nil {
		return false
	}
	p.poolLock.Close()
	p.poolLock = nil
	return true
}

// Dir is the directory being written.
func (p *Pending) Dir() string { return p.dir }

// Path returns the absolute path of rel inside the pending checkpoint.
func (p *Pending) Path(rel string) string { return filepath.Join(p.dir, filepath.FromSlash(rel)) }

// File is a checkpoint file being written; its size and sha256 are computed
// on the way to disk, so the data is read only once.
type File struct {
	f    *os.File
	cw   *chunkWriter
	sum  string // of a chunked file, once closed
	h    hash.Hash
	n    int64
	rel  string
	p    *Pending
	done bool
}

// Create opens rel (slash-separated, parents created) for writing.
func (p *Pending) Create(rel string) (*File, error) {
	path := p.Path(rel)
	if err := os.MkdirAll(filepath.Dir(path), DirMode); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return nil, err
	}
	return &File{f: f, h: sha256.New(), rel: rel, p: p}, nil
}

// CreateChunked opens rel for writing as chunks of the store's
// (format.File.Chunks): only the chunks the store lacks are written. The
// file's sha256 is then that of its chunk list (format.ChunksSHA256),
// known once it is closed.
func (p *Pending) CreateChunked(rel string) (*File, error) {
	if err := format.CheckFiles([]format.File{{Path: rel, SHA256: emptySHA256}}); err != nil {
		return nil, err
	}
	cw, err := p.chunkWriter(rel)
	if err != nil {
		return nil, err
	}
	return &File{cw: cw, rel: rel, p: p}, nil
}

// CreateChunks opens rel for writing as the chunks listed, of their sizes
// in order, instead of chunks cut by content: an import stores a file as
// the chunks its manifest lists, which Commit checks one by one (size and
// sha256), whichever ckpt cut them.
func (p *Pending) CreateChunks(rel string, chunks []format.Chunk) (*File, error) {
	f, err := p.CreateChunked(rel)
	if err != nil {
		return nil, err
	}
	f.cw.plan = make([]int64, len(chunks))
	for i, c := range chunks {
		f.cw.plan[i] = c.Size
	}
	return f, nil
}

// emptySHA256 is the sha256 of no bytes.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func (f *File) Write(b []byte) (int, error) {
	if f.cw != nil {
		// A chunked file's sha256 is that of its chunk list, from Close.
		n, err := f.cw.Write(b)
		f.n += int64(n)
		return n, err
	}
	n, err := f.f.Write(b)
	f.h.Write(b[:n])
	f.n += int64(n)
	return n, err
}

// ReadFrom writes what r holds. A chunked file reads it straight into its
// chunk buffers (chunkWriter.ReadFrom), with no copy between.
func (f *File) ReadFrom(r io.Reader) (int64, error) {
	if f.cw == nil {
		return io.Copy(struct{ io.Writer }{f}, r)
	}
	n, err := f.cw.ReadFrom(r)
	f.n += n
	return n, err
}

// Close flushes the file to disk and records it in the manifest. Closing
// twice is harmless; a file whose Close failed is not recorded.
func (f *File) Close() error {
	if f.done {
		return nil
	}
	f.done = true
	if f.cw != nil {
		return f.closeChunked()
	}
	err := f.f.Sync()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	f.p.add(format.File{Path: f.rel, Size: f.n, SHA256: hex.EncodeToString(f.h.Sum(nil))})
	return nil
}

func (f *File) closeChunked() error {
	chunks, err := f.cw.Close()
	if err != nil {
		return err
	}
	if len(chunks) == 0 {
		// No bytes: an empty file in the directory, as before chunks.
		f.sum = emptySHA256
		g, err := f.p.Create(f.rel)
		if err != nil {
			return err
		}
		return g.Close()
	}
	f.sum = format.ChunksSHA256(chunks)
	f.p.add(format.File{Path: f.rel, Size: f.n, SHA256: f.sum, Chunks: chunks})
	return nil
}

// Cut ends the current chunk of a chunked file here (chunkWriter.Cut); it
// does nothing for a whole file.
func (f *File) Cut() error {
	if f.cw == nil {
		return nil
	}
	return f.cw.Cut()
}

// Size is the number of bytes written so far.
func (f *File) Size() int64 { return f.n }

// WriteJSON writes v as indented JSON to rel.
func (p *Pending) WriteJSON(rel string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := p.Create(rel)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.f.Close()
		return err
	}
	return f.Close()
}

// Adopt takes in the tree at rel written by someone else (the engine writes
// the CRIU images): it tightens permissions to 0700/0600, flushes every file
// to disk, and records its size and sha256. A file that follow (nil for
// none) took in whole while it was written is not read again. It returns
// the files recorded.
func (p *Pending) Adopt(rel string, follow *Follow) ([]format.File, error) {
	taken := follow.Finish()
	root := p.Path(rel)
	var paths []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Chmod(path, DirMode)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: unexpected %s in checkpoint images", path, d.Type())
		}
		paths = append(paths, path)
		return os.Chmod(path, FileMode)
	})
	if err != nil {
		return nil, err
	}
	// Each file is hashed while the kernel writes it back (fsync), and
	// files are taken in parallel: a save waits for the slower of the two,
	// not for their sum.
	added := make([]format.File, len(paths))
	errs := forEach(len(paths), func(i int) (err error) {
		if f, ok := taken[paths[i]]; ok && f.Size > 0 {
			if st, err := os.Stat(paths[i]); err == nil && st.Size() == f.Size {
				p.replace(f.Path)
				added[i] = f
				return nil
			}
		}
		added[i], err = p.adoptFile(paths[i])
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p.add(added...)
	return added, syncTree(root)
}

// Forget drops the files rel (as Create or CreateChunked wrote them) from
// the pending checkpoint, for them to be written again: a save whose
// capture began while an attempt at its checkpoint ran, which then failed.
// Their chunks stay in the store until a collection.
func (p *Pending) Forget(rels ...string) error {
	p.mu.Lock()
	p.files = slices.DeleteFunc(p.files, func(f format.File) bool { return slices.Contains(rels, f.Path) })
	p.mu.Unlock()
	for _, rel := range rels {
		if err := os.Remove(p.Path(rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// add records files written into the pending checkpoint.
func (p *Pending) add(files ...format.File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files = append(p.files, files...)
}

// replace records that the engine's file rel is held in chunks now: it
// goes at the commit.
func (p *Pending) replace(rel string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replaced = append(p.replaced, rel)
}

// adoptFile returns the file list entry of the file at path, a file of
// the pending checkpoint, once its contents are on disk: in the store's
// chunks for the files format.Chunked names, else where it is.
func (p *Pending) adoptFile(path string) (format.File, error) {
	r, err := filepath.Rel(p.dir, path)
	if err != nil {
		return format.File{}, err
	}
	rel := filepath.ToSlash(r)
	f, err := os.Open(path)
	if err != nil {
		return format.File{}, err
	}
	defer f.Close()
	if format.Chunked(rel) {
		cw, err := p.chunkWriter(rel)
		if err != nil {
			return format.File{}, err
		}
		n, err := cw.ReadFrom(f)
		chunks, cerr := cw.Close()
		if err == nil {
			err = cerr
		}
		if err != nil {
			return format.File{}, err
		}
		if n > 0 {
			p.replace(rel)
			return format.File{Path: rel, Size: n, SHA256: format.ChunksSHA256(chunks), Chunks: chunks}, nil
		}
	}
	synced := make(chan error, 1)
	go func() { synced <- f.Sync() }()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if serr := <-synced; err == nil {
		err = serr
	}
	if err != nil {
		return format.File{}, err
	}
	return format.File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Abort removes the pending checkpoint, and the chunks it wrote that no
// checkpoint lists (unless another save or import writes chunks at the
// time: then the next collection removes them).
func (p *Pending) Abort() error {
	defer func() {
		if p.release() {
			p.store.CollectChunks()
		}
	}()
	if _, err := os.Lstat(p.dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return os.RemoveAll(p.dir)
}

// syncTree fsyncs every directory under root (files are synced as they are
// written), so that their entries are durable before the commit rename.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return atomicfile.SyncDir(path)
	})
}

// ExistsError is the error of a save under a name its container's
// checkpoints already have.
type ExistsError struct {
	Container, Name string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("checkpoint %q of %s already exists", e.Name, e.Container)
}
