package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// file returns the manifest's entry of rel, or nil.
func (c *Checkpoint) file(rel string) *format.File {
	for i := range c.Manifest.Files {
		if c.Manifest.Files[i].Path == rel {
			return &c.Manifest.Files[i]
		}
	}
	return nil
}

// Open opens the checkpoint file rel for reading: the file in the
// checkpoint's directory, or its chunks one after the other.
func (c *Checkpoint) Open(rel string) (io.ReadCloser, error) {
	if f := c.file(rel); f != nil && f.Chunks != nil {
		if c.chunks == nil {
			return nil, fmt.Errorf("%s is in chunks, and the checkpoint is not in a store", rel)
		}
		return &chunkReader{pool: c.chunks, chunks: f.Chunks}, nil
	}
	return os.Open(c.Path(rel))
}

// OpenVerified is Open, and for a chunked file checks each chunk's sha256
// as it reads it: a damaged chunk is an error (ErrChunkSum) before the
// next one is read. (A file in the directory is the caller's to check.)
func (c *Checkpoint) OpenVerified(rel string) (io.ReadCloser, error) {
	r, err := c.Open(rel)
	if cr, ok := r.(*chunkReader); ok {
		cr.verify = true
	}
	return r, err
}

// OpenAt opens the checkpoint file rel for reading at offsets.
func (c *Checkpoint) OpenAt(rel string) (ReaderAtCloser, error) {
	if f := c.file(rel); f != nil && f.Chunks != nil {
		if c.chunks == nil {
			return nil, fmt.Errorf("%s is in chunks, and the checkpoint is not in a store", rel)
		}
		return newChunkReaderAt(c.chunks, f.Chunks), nil
	}
	return os.Open(c.Path(rel))
}

// Place returns a directory that holds the checkpoint's files under the
// directory rel as plain files, for readers that need files (CRIU reads
// its images): rel itself when none of them is chunked; else a scratch
// directory beside the checkpoint, whose name starts with
// format.TempPrefix (what a crash leaves there is never taken for a
// checkpoint, and the next save removes it), with hard links to the
// plain files and the chunked ones put together. done removes the scratch
// directory. Place does not check sums: Verify does, before.
func (c *Checkpoint) Place(ctx context.Context, rel string) (dir string, done func(), err error) {
	var plain, chunked []format.File
	for _, f := range c.Manifest.Files {
		if strings.HasPrefix(f.Path, rel+"/") {
			if f.Chunks != nil {
				chunked = append(chunked, f)
			} else {
				plain = append(plain, f)
			}
		}
	}
	if len(chunked) == 0 {
		return c.Path(rel), func() {}, nil
	}
	scratch := filepath.Join(filepath.Dir(c.Dir), format.TempPrefix+c.Name+".placed")
	done = func() { os.RemoveAll(scratch) }
	if err := os.RemoveAll(scratch); err != nil {
		return "", nil, err
	}
	if err := os.Mkdir(scratch, DirMode); err != nil {
		return "", nil, err
	}
	dst := func(f format.File) string { return filepath.Join(scratch, filepath.FromSlash(f.Path)) }
	for _, f := range append(plain, chunked...) {
		if err := os.MkdirAll(filepath.Dir(dst(f)), DirMode); err != nil {
			done()
			return "", nil, err
		}
	}
	for _, f := range plain {
		if err := os.Link(c.Path(f.Path), dst(f)); err != nil {
			done()
			return "", nil, err
		}
	}
	if err := c.assemble(ctx, chunked, dst); err != nil {
		done()
		return "", nil, err
	}
	return filepath.Join(scratch, filepath.FromSlash(rel)), done, nil
}

// assemble writes the chunked files, several chunks at once.
func (c *Checkpoint) assemble(ctx context.Context, files []format.File, dst func(format.File) string) error {
	type unit struct {
		out *os.File
		off int64
		ch  format.Chunk
	}
	var units []unit
	var outs []*os.File
	defer func() {
		for _, o := range outs {
			o.Close()
		}
	}()
	for _, f := range files {
		out, err := os.OpenFile(dst(f), os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
		if err != nil {
			return err
		}
		outs = append(outs, out)
		if err := out.Truncate(f.Size); err != nil {
			return err
		}
		var off int64
		for _, ch := range f.Chunks {
			units = append(units, unit{out, off, ch})
			off += ch.Size
		}
	}
	errs := forEach(len(units), func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		u := units[i]
		r := c.chunks.read(u.ch, false)
		defer putBuf(r.buf)
		if r.err != nil {
			return r.err
		}
		_, err := u.out.WriteAt(r.buf, u.off)
		return err
	})
	return errors.Join(errs...)
}

// Stored returns where the bytes of the checkpoint file rel are: the file
// in the checkpoint's directory, or its chunks in the store, in order.
func (c *Checkpoint) Stored(rel string) []string {
	f := c.file(rel)
	if f == nil || f.Chunks == nil || c.chunks == nil {
		return []string{c.Path(rel)}
	}
	paths := make([]string, len(f.Chunks))
	for i, ch := range f.Chunks {
		paths[i] = c.chunks.path(ch.SHA256)
	}
	return paths
}

// forEach calls do(i) for each i in [0, n) on twice as many goroutines as
// there are CPUs (at least four) and returns each call's error. Each call
// reads a file or a chunk and hashes it: the reads are direct (openDirect),
// without the kernel's read-ahead, so half the goroutines may wait for the
// disk while the others hash.
func forEach(n int, do func(i int) error) []error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, max(2*runtime.GOMAXPROCS(0), 4)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = do(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// OpenChunk opens chunk ch of the checkpoint's store for reading, and
// checks its size and sha256 as it reads it (ErrChunkSize, ErrChunkSum).
func (c *Checkpoint) OpenChunk(ch format.Chunk) (io.ReadCloser, error) {
	if c.chunks == nil {
		return nil, errors.New("the checkpoint is not in a store")
	}
	return &chunkReader{pool: c.chunks, chunks: []format.Chunk{ch}, verify: true}, nil
}

// RawManifest returns the checkpoint's manifest.json as stored, byte for
// byte, once it has checked it against manifest.json.sha256 (as Load
// does).
func (c *Checkpoint) RawManifest() ([]byte, error) {
	raw, err := readRawManifest(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s:%s: %w", c.Container, c.Name, err)
	}
	return raw, nil
}
