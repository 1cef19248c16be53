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
)

// Verify checks the size and sha256 of every file the manifest lists. The
// error names the first file that does not match.
func (c *Checkpoint) Verify(ctx context.Context) error {
	damaged := func(format string, args ...any) error {
		return &DamagedError{Container: c.Container, Name: c.Name, Files: true, Err: fmt.Errorf(format, args...)}
	}
	buf := make([]byte, 1<<20)
	for _, want := range c.Manifest.Files {
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
		h := sha256.New()
		_, err = io.CopyBuffer(h, f, buf)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", want.Path, err)
		}
		if hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
			return damaged("%s: sha256 mismatch", want.Path)
		}
	}
	return nil
}
