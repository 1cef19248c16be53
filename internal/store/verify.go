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
	"runtime"
	"sync"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// Verify checks the size and sha256 of every file the manifest lists,
// several files at once. The error names the first file in the manifest's
// order that does not match.
func (c *Checkpoint) Verify(ctx context.Context) error {
	files := c.Manifest.Files
	errs := make([]error, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(len(files), max(runtime.GOMAXPROCS(0), 2)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for i := range next {
				errs[i] = c.verifyFile(ctx, files[i], buf)
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
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
