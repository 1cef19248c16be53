package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// A checkpoint that arrives as chunks (ckpt pull) is written with HasChunk,
// PutChunk and AddChunked: the chunks the store lacks are stored as they
// come, each checked, and a file is recorded once all of its chunks are
// there.

// HasChunk reports whether the store holds chunk c, so that a pull need
// not fetch it. From the first call, the pending checkpoint keeps the
// collection of chunks away (as a save does), so the chunk stays.
func (p *Pending) HasChunk(c format.Chunk) (bool, error) {
	if err := p.holdPool(); err != nil {
		return false, err
	}
	st, err := os.Lstat(p.pool.path(c.SHA256))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	return st.Mode().IsRegular() && st.Size() == c.Size, nil
}

// PutChunk reads chunk c from r, all of r, and stores it once it has
// checked its size and sha256 (ErrChunkSize, ErrChunkSum). It is safe for
// concurrent use.
func (p *Pending) PutChunk(c format.Chunk, r io.Reader) error {
	if c.Size < 1 || c.Size > format.MaxChunk || !format.IsSHA256(c.SHA256) {
		return fmt.Errorf("chunk %q of %d bytes: not a chunk", c.SHA256, c.Size)
	}
	if err := p.holdPool(); err != nil {
		return err
	}
	buf := getBuf()
	defer putBuf(buf)
	buf = buf[:c.Size]
	name := c.SHA256[:12]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("chunk %s: %w", name, ErrChunkSize)
		}
		return err
	}
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n > 0 {
		return fmt.Errorf("chunk %s: %w", name, ErrChunkSize)
	}
	if s := sha256.Sum256(buf); hex.EncodeToString(s[:]) != c.SHA256 {
		return fmt.Errorf("chunk %s: %w", name, ErrChunkSum)
	}
	tmp, err := p.pool.write(c.SHA256, buf)
	if err != nil || tmp == "" {
		return err
	}
	return p.pool.settle(tmp, &p.dirs)
}

// AddChunked records the chunked file f (its path, size, sha256 and
// chunks, as a manifest lists them), once every one of its chunks is in
// the store with its size. The sha256 must be that of the chunk list.
func (p *Pending) AddChunked(f format.File) error {
	if err := format.CheckFiles([]format.File{f}); err != nil {
		return err
	}
	if len(f.Chunks) == 0 {
		return fmt.Errorf("%s: no chunks", f.Path)
	}
	for _, c := range f.Chunks {
		ok, err := p.HasChunk(c)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: chunk %s is not in the store: %w", f.Path, c.SHA256[:12], fs.ErrNotExist)
		}
	}
	p.add(f)
	return nil
}
