package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/format"
)

// JournalFile, inside a container's directory, records a save in flight:
// written and synced before the save changes anything in the engine,
// removed once the save has finished or been undone. One that outlives its
// save (ckpt was killed) tells the next ckpt run what to put back.
const JournalFile = "journal.json"

// Journal is the content of JournalFile.
type Journal struct {
	// Op is what was in flight: JournalSave or JournalResume.
	Op string `json:"op"`
	// ContainerID is the container's id.
	ContainerID string `json:"containerId"`
	// Checkpoint is the name of the checkpoint being written.
	Checkpoint string `json:"checkpoint"`
	// RestartPolicy is the container's restart policy before the save.
	RestartPolicy format.RestartPolicy `json:"restartPolicy"`
	// Stops is true when the save stops the container (not left running).
	Stops bool `json:"stops"`
	// Hot is true when the save checkpoints memory.
	Hot bool `json:"hot"`
	// Containers, Networks and Volumes are what a resume created so far
	// (ids, ids, names), for a later run to remove.
	Containers []string `json:"containers,omitempty"`
	Networks   []string `json:"networks,omitempty"`
	Volumes    []string `json:"volumes,omitempty"`
	// MemoryRestored is true once a resume started the container with its
	// memory: a recovery that finds it running says so.
	MemoryRestored bool `json:"memoryRestored,omitempty"`
}

// Operations a journal records.
const (
	JournalSave   = "save"
	JournalResume = "resume"
)

func (s *Store) journalPath(container string) string {
	return filepath.Join(s.containerDir(container), JournalFile)
}

// WriteJournal records, durably, an operation on container in flight. The
// caller holds the container's lock.
func (s *Store) WriteJournal(container string, j *Journal) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.journalPath(container), b, FileMode, atomicfile.Replace)
}

// ReadJournal returns the operation on container left in flight, nil when
// there is none. The caller holds the container's lock, so it is one whose
// process is gone.
func (s *Store) ReadJournal(container string) (*Journal, error) {
	b, err := os.ReadFile(s.journalPath(container))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", s.journalPath(container), err)
	}
	return &j, nil
}

// ClearJournal removes container's journal.
func (s *Store) ClearJournal(container string) error {
	err := os.Remove(s.journalPath(container))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	return atomicfile.SyncDir(s.containerDir(container))
}

// PendingImages returns the directory of CRIU images of checkpoint name of
// container that was being written, "" when there is none.
func (s *Store) PendingImages(container, name string) string {
	dir := filepath.Join(s.checkpointsDir(container), format.TempPrefix+name, format.ImagesDir)
	if st, err := os.Stat(filepath.Join(dir, "inventory.img")); err == nil && st.Mode().IsRegular() {
		return dir
	}
	return ""
}
