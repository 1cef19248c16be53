package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// Verify checks the size and sha256 of every file the manifest lists,
// several files at once. The error names the first file in the manifest's
// order that does not match.
// A chunked file is checked chunk by chunk: each chunk's size and sha256
// (the manifest, itself checked, lists them in order, so they make the
// file's bytes).
func (c *Checkpoint) Verify(ctx context.Context) error {
	type unit struct {
		file  int
		chunk int // -1: a whole file
	}
	var units []unit
	for i, f := range c.Manifest.Files {
		if f.Chunks == nil {
			units = append(units, unit{i, -1})
		}
		for j := range f.Chunks {
			units = append(units, unit{i, j})
		}
	}
	errs := forEach(len(units), func(i int) error {
		u := units[i]
		if u.chunk >= 0 {
			return c.verifyChunk(ctx, c.Manifest.Files[u.file], u.chunk)
		}
		buf := getBuf()
		defer putBuf(buf)
		return c.verifyFile(ctx, c.Manifest.Files[u.file], buf[:cap(buf)])
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// verifyFile checks one file against its manifest entry.
func (c *Checkpoint) verifyFile(ctx context.Context, want format.File, buf []byte) error {
	damaged := func(format string, args ...any) error {
		return &DamagedError{Container: c.Container, Name: c.Name, Files: true, Err: fmt.Errorf(format, args...)}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	path := c.Path(want.Path)
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return damaged("%s is missing", want.Path)
	} else if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return damaged("%s is not a regular file", want.Path)
	}
	if st.Size() != want.Size {
		return damaged("%s has %d bytes, the manifest says %d", want.Path, st.Size(), want.Size)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return fmt.Errorf("%s: %w", want.Path, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
		return damaged("%s: sha256 mismatch", want.Path)
	}
	return nil
}

// verifyChunk checks chunk i of the chunked file f.
func (c *Checkpoint) verifyChunk(ctx context.Context, f format.File, i int) error {
	damaged := func(format string, args ...any) error {
		return &DamagedError{Container: c.Container, Name: c.Name, Files: true, Err: fmt.Errorf(format, args...)}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	want := f.Chunks[i]
	if c.chunks == nil {
		return damaged("%s is in chunks, and the checkpoint is not in a store", f.Path)
	}
	path := c.chunks.path(want.SHA256)
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return damaged("%s: chunk %d (%s) is missing from the store", f.Path, i, want.SHA256[:12])
	} else if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Size() != want.Size {
		return damaged("%s: chunk %d (%s) has %d bytes, the manifest says %d", f.Path, i, want.SHA256[:12], st.Size(), want.Size)
	}
	r := c.chunks.read(want, true)
	putBuf(r.buf)
	switch {
	case errors.Is(r.err, ErrChunkSum):
		return damaged("%s: chunk %d (%s): sha256 mismatch", f.Path, i, want.SHA256[:12])
	case errors.Is(r.err, ErrChunkSize):
		return damaged("%s: chunk %d (%s): %v", f.Path, i, want.SHA256[:12], ErrChunkSize)
	case errors.Is(r.err, fs.ErrNotExist):
		return damaged("%s: chunk %d (%s) is missing from the store", f.Path, i, want.SHA256[:12])
	case r.err != nil:
		return fmt.Errorf("%s: chunk %d: %w", f.Path, i, r.err)
	}
	return nil
}
