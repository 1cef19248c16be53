package store

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/format"
)

func (s *Store) recordPath() string {
	return filepath.Join(s.Root, format.HooksDir, format.ShutdownRecord)
}

// WriteShutdownRecord records what the shutdown hook saved, atomically.
func (s *Store) WriteShutdownRecord(doc *format.ShutdownRecordDoc) error {
	dir := filepath.Join(s.Root, format.HooksDir)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.recordPath(), append(b, '\n'), FileMode, atomicfile.Replace)
}

// ReadShutdownRecord returns what the last shutdown hook saved, or nil when
// there is nothing left to resume.
func (s *Store) ReadShutdownRecord() (*format.ShutdownRecordDoc, error) {
	b, err := os.ReadFile(s.recordPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var doc format.ShutdownRecordDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

// FinishShutdownRecord marks the record as handled by the boot hook.
func (s *Store) FinishShutdownRecord() error {
	return os.Rename(s.recordPath(), s.recordPath()+".done")
}

// SetAsideShutdownRecord renames a shutdown record that cannot be read out
// of the way, so that a new one can be written without losing it, and
// returns its new path.
func (s *Store) SetAsideShutdownRecord() (string, error) {
	aside := s.recordPath() + ".unreadable-" + time.Now().UTC().Format("20060102T150405Z")
	return aside, os.Rename(s.recordPath(), aside)
}
