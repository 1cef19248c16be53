package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
)

// FillingDir, inside a container's directory, holds one marker per volume
// that a resume is filling: a volume whose marker outlives the resume was
// filled only partly, and is not live data.
const FillingDir = "filling"

func (s *Store) fillMarker(container, volume string) string {
	return filepath.Join(s.containerDir(container), FillingDir, volume)
}

// BeginFill records, durably, that a resume of container starts filling
// volume, created at created (the engine's CreatedAt, which tells the
// volume from a later one of the same name). The caller holds the
// container's lock.
func (s *Store) BeginFill(container, volume, created string) error {
	if !ValidName(container) || !ValidName(volume) {
		return errors.New("invalid container or volume name")
	}
	if err := os.MkdirAll(filepath.Dir(s.fillMarker(container, volume)), DirMode); err != nil {
		return err
	}
	return atomicfile.WriteFile(s.fillMarker(container, volume), []byte(created), FileMode, atomicfile.Replace)
}

// EndFill records that volume is whole again (filled, or removed).
func (s *Store) EndFill(container, volume string) error {
	err := os.Remove(s.fillMarker(container, volume))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(s.fillMarker(container, volume)))
}

// PartlyFilled reports whether volume, created at created, was left partly
// filled by a resume of container that did not finish.
func (s *Store) PartlyFilled(container, volume, created string) bool {
	b, err := os.ReadFile(s.fillMarker(container, volume))
	return err == nil && string(b) == created
}
