// Package store keeps checkpoints on the host: one directory per container
// name, one directory per checkpoint, written under a temporary name and
// renamed into place only when complete. See docs/format.md.
package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
	"github.com/ckpt-dev/ckpt/internal/fault"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
)

// DefaultRoot is where checkpoints live unless --store or CKPT_STORE say
// otherwise.
const DefaultRoot = "/var/lib/ckpt"

// Permissions of everything ckpt writes: checkpoints hold process memory, and
// process memory holds secrets.
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// nameLayout is the time layout of default checkpoint names.
const nameLayout = "20060102T150405Z"

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ValidName reports whether s can name a container directory or a checkpoint.
func ValidName(s string) bool { return validName.MatchString(s) }

// ParseRef splits a checkpoint reference, CONTAINER or CONTAINER:NAME, into
// its container and checkpoint names. name is "" when ref names no
// checkpoint (commands then take the container's latest). Both names must
// be ValidName; an empty one is an error, so "web:" is.
func ParseRef(ref string) (container, name string, err error) {
	container, name, hasName := strings.Cut(ref, ":")
	switch {
	case container == "" && hasName:
		return "", "", fmt.Errorf("missing container name before \":\" in %q", ref)
	case container == "":
		return "", "", errors.New("missing container name")
	case !ValidName(container):
		return "", "", fmt.Errorf("invalid container name %q", container)
	case hasName && name == "":
		return "", "", fmt.Errorf("missing checkpoint name after \":\" in %q", ref)
	case hasName && !ValidName(name):
		return "", "", fmt.Errorf("invalid checkpoint name %q", name)
	}
	return container, name, nil
}

// ErrCannotCreate is a store directory that Open cannot create; with
// fs.ErrPermission, the command line says where else to put the store.
var ErrCannotCreate = errors.New("cannot create the store")

// DamagedError is a checkpoint whose manifest or files are not what was
// saved: Load and Verify refuse it before anything uses it. It carries no
// hint: the command line says which checkpoint to use instead, and how.
type DamagedError struct {
	Container, Name string
	// Files is whether one of the files the manifest lists is wrong (found
	// by Verify), rather than the manifest itself (found by Load).
	Files bool
	Err   error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("checkpoint %s:%s is damaged: %v", e.Container, e.Name, e.Err)
}
func (e *DamagedError) Unwrap() error { return e.Err }

// Store is a checkpoint store rooted at a directory.
type Store struct {
	// Root is the store's directory.
	Root string
}

// Open returns the store at root, creating it (mode 0700) when missing.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := checkRoot(abs); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, format.ContainersDir), DirMode); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCannotCreate, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, format.ContainersDir)} {
		if err := os.Chmod(d, DirMode); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	return &Store{Root: abs}, nil
}

// checkRoot refuses a root that exists and is not a store: a directory
// with other contents (Open would make it root's only, 0700, and fill it),
// or not a directory at all.
func checkRoot(root string) error {
	st, err := os.Lstat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("%w: %w", ErrCannotCreate, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s exists and is not a directory", ErrCannotCreate, root)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCannotCreate, err)
	}
	for _, e := range ents {
		switch e.Name() {
		case format.ContainersDir, format.HooksDir, format.ChunksDir, format.KeysDir:
		default:
			return fmt.Errorf("%w: %s holds %s, which a store does not", ErrNotStore, root, e.Name())
		}
	}
	return nil
}

// ErrNotStore is the error of a store directory that holds something else.
var ErrNotStore = errors.New("not a checkpoint store")

func (s *Store) containerDir(container string) string {
	return filepath.Join(s.Root, format.ContainersDir, container)
}

func (s *Store) checkpointsDir(container string) string {
	return filepath.Join(s.containerDir(container), format.CheckpointsDir)
}

// Containers lists the container names that have a directory in the store.
func (s *Store) Containers() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.Root, format.ContainersDir))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && ValidName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// NewName returns a fresh checkpoint name for container based on t: its UTC
// time to the second, with a numeric suffix when that name is taken. Names
// sort in creation order.
func (s *Store) NewName(container string, t time.Time) string {
	base := t.UTC().Format(nameLayout)
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(filepath.Join(s.checkpointsDir(container), name)); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// Checkpoint is a complete checkpoint whose manifest has been read and its
// checksum checked. The other files are checked by Verify.
type Checkpoint struct {
	// Container is the container name the checkpoint is stored under.
	Container string
	// Name is the checkpoint's name.
	Name string
	// Dir is the checkpoint's directory.
	Dir string
	// Manifest is the parsed manifest.
	Manifest *format.Manifest
	// Origin says whether it was made here or imported.
	Origin format.Origin
	// Trust says whether it may come back whole (made here, or signed by
	// a key the store trusts), decided when it was loaded.
	Trust Trust
	// chunks is the store's chunks, which chunked files are made of.
	chunks *chunkPool
}

// Path returns the absolute path of a file of the checkpoint.
func (c *Checkpoint) Path(rel string) string { return filepath.Join(c.Dir, filepath.FromSlash(rel)) }

// Size is the sum of the sizes of the checkpoint's files.
func (c *Checkpoint) Size() int64 {
	var n int64
	for _, f := range c.Manifest.Files {
		n += f.Size
	}
	return n
}

// ReadJSON decodes the checkpoint file rel into v.
func (c *Checkpoint) ReadJSON(rel string, v any) error {
	b, err := os.ReadFile(c.Path(rel))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

// Load reads checkpoint name of container and checks its manifest.
func (s *Store) Load(container, name string) (*Checkpoint, error) {
	if !ValidName(container) || !ValidName(name) {
		return nil, fmt.Errorf("invalid checkpoint name %q", container+":"+name)
	}
	dir := filepath.Join(s.checkpointsDir(container), name)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, hint.New(fmt.Sprintf("no checkpoint %q for container %s", name, container), "ckpt ls "+container+" lists its checkpoints")
	}
	m, err := readManifest(dir)
	var newer *newerFormatError
	if errors.As(err, &newer) {
		return nil, hint.New(fmt.Sprintf("checkpoint %s:%s has format version %d; this ckpt reads 1 to %d", container, name, newer.version, format.Version),
			"resume it with a newer ckpt")
	}
	if err != nil {
		return nil, &DamagedError{Container: container, Name: name, Err: err}
	}
	origin, err := readOrigin(dir)
	if err != nil {
		return nil, &DamagedError{Container: container, Name: name, Err: err}
	}
	ck := &Checkpoint{Container: container, Name: name, Dir: dir, Manifest: m, Origin: origin, chunks: s.chunks()}
	ck.Trust = s.trustOf(ck)
	return ck, nil
}

// readOrigin reads the checkpoint's origin; one without is from this host.
func readOrigin(dir string) (format.Origin, error) {
	var o format.Origin
	raw, err := os.ReadFile(filepath.Join(dir, format.OriginFile))
	if errors.Is(err, fs.ErrNotExist) {
		return o, nil
	} else if err != nil {
		return o, err
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return o, fmt.Errorf("%s: %w", format.OriginFile, err)
	}
	return o, nil
}

// readManifest reads and checks the manifest of the checkpoint in dir. Its
// errors are a *newerFormatError, a *damagedManifestError when the
// manifest is damaged, or any other error when the manifest or its sum
// file could not be read (an I/O error, too many open files): such an
// error says nothing of the checkpoint, which may be whole.
func readManifest(dir string) (*format.Manifest, error) {
	raw, err := readRawManifest(dir)
	if err != nil {
		// readRawManifest wraps the error of reading a file, and only
		// that: a sha256 mismatch has no cause. A file that is not there
		// is damage: a checkpoint's directory gets its name with both
		// files, and loses it before it loses them (Remove).
		if cause := errors.Unwrap(err); cause == nil || errors.Is(cause, fs.ErrNotExist) {
			return nil, &damagedManifestError{err: err}
		}
		return nil, err
	}
	var m format.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &damagedManifestError{err: fmt.Errorf("%s: %w", format.ManifestFile, err)}
	}
	if m.FormatVersion > format.Version {
		return nil, &newerFormatError{m.FormatVersion}
	}
	if m.FormatVersion < 1 {
		return nil, &damagedManifestError{err: fmt.Errorf("%s: format version %d is not valid", format.ManifestFile, m.FormatVersion), parsed: &m}
	}
	if err := m.Check(); err != nil {
		return nil, &damagedManifestError{err: err, parsed: &m}
	}
	return &m, nil
}

// damagedManifestError is a checkpoint's manifest that was read and is not
// one this ckpt takes: missing, or its sum file missing, not matching its
// sha256, not JSON, or refused by format.Manifest.Check. It reads as the
// error it wraps.
type damagedManifestError struct {
	err error
	// parsed is the manifest when it matched its sha256 and parsed, and
	// only its checks failed. Some ckpt committed it as it is, one whose
	// checks may have differed (before a limit of format.Manifest.Check):
	// CollectChunks keeps what it lists.
	parsed *format.Manifest
}

func (e *damagedManifestError) Error() string { return e.err.Error() }
func (e *damagedManifestError) Unwrap() error { return e.err }

// readRawManifest returns the manifest in dir, byte for byte, once it has
// checked it against its sha256 file.
func readRawManifest(dir string) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(dir, format.ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format.ManifestFile, errors.Unwrap(err))
	}
	want, err := os.ReadFile(filepath.Join(dir, format.ManifestSumFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format.ManifestSumFile, errors.Unwrap(err))
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != strings.TrimSpace(string(want)) {
		return nil, fmt.Errorf("%s: sha256 mismatch", format.ManifestFile)
	}
	return raw, nil
}

// newerFormatError is a manifest written by a newer ckpt: not damaged, but
// not for this ckpt either.
type newerFormatError struct{ version int }

func (e *newerFormatError) Error() string {
	return fmt.Sprintf("%s: format version %d is newer than this ckpt's", format.ManifestFile, e.version)
}

// State of a stored checkpoint, as ls shows it.
const (
	StateComplete   = "complete"
	StateIncomplete = "incomplete"
	StateDamaged    = "damaged"
	StateNewer      = "newer-format"
)

// Entry is one checkpoint directory, complete or not.
type Entry struct {
	// Container and Name identify the checkpoint.
	Container, Name string
	// State is StateComplete, StateIncomplete (a save in progress or one
	// that was killed), StateDamaged (its manifest cannot be read) or
	// StateNewer (written by a newer ckpt).
	State string
	// Checkpoint is set for complete checkpoints.
	Checkpoint *Checkpoint
	// Err says what is wrong with a damaged checkpoint.
	Err error
}

// List returns the checkpoints of container, or of every container when
// container is "", complete ones oldest first, then the others.
func (s *Store) List(container string) ([]Entry, error) {
	names := []string{container}
	if container == "" {
		var err error
		if names, err = s.Containers(); err != nil {
			return nil, err
		}
	}
	var out []Entry
	for _, c := range names {
		ents, err := os.ReadDir(s.checkpointsDir(c))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		for _, e := range ents {
			switch {
			case !e.IsDir():
			case strings.HasPrefix(e.Name(), format.TempPrefix):
				out = append(out, Entry{Container: c, Name: strings.TrimPrefix(e.Name(), format.TempPrefix), State: StateIncomplete})
			default:
				ck, err := s.Load(c, e.Name())
				if err != nil {
					state := StateDamaged
					if _, nerr := readManifest(filepath.Join(s.checkpointsDir(c), e.Name())); errors.As(nerr, new(*newerFormatError)) {
						state = StateNewer
					}
					out = append(out, Entry{Container: c, Name: e.Name(), State: state, Err: err})
					continue
				}
				out = append(out, Entry{Container: c, Name: e.Name(), State: StateComplete, Checkpoint: ck})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Container != b.Container {
			return a.Container < b.Container
		}
		if (a.State == StateComplete) != (b.State == StateComplete) {
			return a.State == StateComplete
		}
		if a.Checkpoint != nil && b.Checkpoint != nil && !a.Checkpoint.Manifest.Created.Equal(b.Checkpoint.Manifest.Created) {
			return a.Checkpoint.Manifest.Created.Before(b.Checkpoint.Manifest.Created)
		}
		return a.Name < b.Name
	})
	return out, nil
}

// Latest returns the newest complete checkpoint of container that is
// trusted (Trust), or, when it has none, its newest untrusted one: a
// checkpoint from elsewhere, which picks its own name and date, never
// takes the place of the container's own. When a damaged checkpoint is
// newer than the one chosen, Latest returns that one's error rather than
// silently going back to older state.
func (s *Store) Latest(container string) (*Checkpoint, error) {
	ents, err := s.List(container)
	if err != nil {
		return nil, err
	}
	var latest *Checkpoint
	for _, e := range ents {
		if e.State == StateComplete && (latest == nil || e.Checkpoint.Trust.Trusted() || !latest.Trust.Trusted()) {
			latest = e.Checkpoint
		}
	}
	for _, e := range ents {
		if e.State == StateComplete || e.State == StateIncomplete {
			continue
		}
		if latest == nil || s.madeAt(container, e.Name).After(latest.Manifest.Created) {
			return nil, e.Err
		}
	}
	if latest == nil {
		return nil, hint.New("no checkpoint for container "+container+" in "+s.Root, "save one first with ckpt save "+container+"; ckpt ls lists the checkpoints in the store")
	}
	return latest, nil
}

// madeAt tells when a checkpoint whose manifest cannot be read was made:
// from its name when it is a default one (the UTC time), else from its
// directory's modification time.
func (s *Store) madeAt(container, name string) time.Time {
	if t, err := time.Parse(nameLayout, strings.SplitN(name, "-", 2)[0]); err == nil {
		return t
	}
	if st, err := os.Stat(filepath.Join(s.checkpointsDir(container), name)); err == nil {
		return st.ModTime()
	}
	return time.Time{}
}

// Find returns checkpoint name of container, or its newest complete
// checkpoint when name is "".
func (s *Store) Find(container, name string) (*Checkpoint, error) {
	if name == "" {
		return s.Latest(container)
	}
	return s.Load(container, name)
}

// Remove deletes checkpoint name of container, complete or not. The caller
// must hold the container's lock.
func (s *Store) Remove(container, name string) error {
	if !ValidName(container) || !ValidName(name) {
		return fmt.Errorf("invalid checkpoint name %q", container+":"+name)
	}
	dir := s.checkpointsDir(container)
	tmp := filepath.Join(dir, format.TempPrefix+name)
	// Renamed first, in one step, to a name that is never complete: a crash
	// while the files are deleted leaves an incomplete checkpoint (the next
	// save of the container removes it), never a damaged one in the way.
	if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
		if err := os.RemoveAll(tmp); err != nil { // an unfinished save's leftovers
			return err
		}
		if err := os.Rename(filepath.Join(dir, name), tmp); err != nil {
			return err
		}
		if err := atomicfile.SyncDir(dir); err != nil {
			return err
		}
	} else if _, err := os.Lstat(tmp); err != nil {
		return hint.New(fmt.Sprintf("no checkpoint %q for container %s", name, container), "ckpt ls "+container+" lists its checkpoints")
	}
	fault.Point("store:remove")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}

// RemoveIncomplete deletes the temporary directories of saves that did not
// finish. The caller must hold the container's lock, so no save is running.
func (s *Store) RemoveIncomplete(container string) error {
	ents, err := os.ReadDir(s.checkpointsDir(container))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), format.TempPrefix) {
			if err := os.RemoveAll(filepath.Join(s.checkpointsDir(container), e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
