// Package format holds the names and types of ckpt's on-disk store, as
// specified in docs/format.md. Everything that reads or writes the store uses
// these names; change them only together with that document and Version.
package format

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Version is the store format this build writes. A manifest with a higher
// version is refused.
const Version = 4

// FirstChunked is the first format version whose files may be stored as
// chunks (File.Chunks).
const FirstChunked = 3

// Store layout: <store>/containers/<container name>/...
const (
	// ContainersDir holds one directory per container name.
	ContainersDir = "containers"
	// LockFile, inside a container's directory, is flock(2)ed by the process
	// working on that container; it holds a line describing the holder.
	LockFile = "lock"
	// CheckpointsDir, inside a container's directory, holds complete
	// checkpoints, one directory each, named after the checkpoint.
	CheckpointsDir = "checkpoints"
	// TempPrefix starts the name of a checkpoint being written (inside
	// CheckpointsDir). Such a directory is never complete; it becomes one only
	// by an atomic rename to its final name.
	TempPrefix = ".tmp-"
)

// Files inside one checkpoint directory.
const (
	// ManifestFile describes the checkpoint and lists every other file with
	// its size and sha256.
	ManifestFile = "manifest.json"
	// ManifestSumFile holds the hex sha256 of ManifestFile and a newline.
	ManifestSumFile = "manifest.json.sha256"
	// ContainerFile is the engine's inspect document of the container.
	ContainerFile = "container.json"
	// NetworksFile holds the engine's inspect documents of the user-defined
	// networks the container was attached to (a JSON array).
	NetworksFile = "networks.json"
	// HolderFile is the engine's inspect document of the network holder
	// container whose network namespace the saved container shared, when it
	// did (Container.NetNS is NetNSHolder).
	HolderFile = "holder.json"
	// ImagesDir holds the CRIU images written by the engine.
	ImagesDir = "criu"
	// VolumesDir holds one tar archive per named volume: <volume name>.tar.
	VolumesDir = "volumes"
	// ChunksDir, at the store's root, holds the chunks that checkpoint files
	// are made of (format 3): ChunksDir/sha256/<hex sha256>, shared by every
	// checkpoint whose files hold the same bytes.
	ChunksDir = "chunks"
	// KeysDir, at the store's root, holds the data keys of encrypted pushes
	// to registries (ckpt push --recipient): one per repository and set of
	// recipients, so that the next push encrypts the same chunks the same
	// way and the registry shares them.
	KeysDir = "keys"
	// HooksDir, at the store's root, holds the host hooks' records.
	HooksDir = "hooks"
	// ShutdownRecord, in HooksDir, lists what the last shutdown hook saved,
	// for the boot hook to resume. The boot hook renames it to
	// ShutdownRecord + ".done" when it has run.
	ShutdownRecord = "last-shutdown.json"
	// LayerFile is a tar archive of the container's writable layer in the
	// OCI layer convention (deleted paths as .wh.<name> entries).
	LayerFile = "layer.tar"
	// OriginFile says where the checkpoint came from: written by ckpt beside
	// the manifest when it commits the checkpoint, never listed in it, so an
	// archive cannot bring its own. A checkpoint without one was made before
	// ckpt wrote it, on this host.
	OriginFile = "origin.json"
	// SignatureFile is the signature of ManifestFile by the store that made
	// the checkpoint (an SSH signature, internal/sign): written beside the
	// manifest by a save, or kept from the archive or registry artifact an
	// imported checkpoint came with. Like OriginFile it is never listed in
	// the manifest, which it signs.
	SignatureFile = "manifest.json.sig"
	// IdentityDir, inside KeysDir, holds the store's signing key,
	// IdentityKey (an OpenSSH ed25519 private key, made on first use) and
	// IdentityKey + ".pub". (Under KeysDir, which every ckpt since format 3
	// knows, so that an older ckpt still opens the store.)
	IdentityDir = "identity"
	IdentityKey = "ckpt_ed25519"
	// AllowedSignersFile, inside KeysDir, lists the keys whose checkpoints
	// this store resumes whole, as ssh-keygen's allowed signers (managed
	// with ckpt trust).
	AllowedSignersFile = "allowed_signers"
)

// Origin is the content of OriginFile.
type Origin struct {
	// Imported is true for a checkpoint that ckpt import brought from an
	// archive: made elsewhere, by someone else. Resume then refuses the
	// settings that give a container more power than a plain one, unless
	// told to trust it (docs/security.md).
	Imported bool `json:"imported"`
	// Time is when the checkpoint was committed to this store.
	Time time.Time `json:"time"`
}

// Trust levels of a checkpoint (store.Trust): made here, signed by a key
// the store trusts, or neither. Only the first two come back whole.
const (
	TrustLocal     = "local"
	TrustSigned    = "signed"
	TrustUntrusted = "untrusted"
)

// Manifest describes one checkpoint. It is written last, and a checkpoint
// without a manifest whose checksum matches ManifestSumFile is not a
// checkpoint.
type Manifest struct {
	// FormatVersion is Version at the time of writing.
	FormatVersion int `json:"formatVersion"`
	// Name is the checkpoint's name, unique per container.
	Name string `json:"name"`
	// Created is when the save started (UTC).
	Created time.Time `json:"created"`
	// Mode is "hot" (process memory and data) or "cold" (data only: the
	// container was stopped gracefully, and there are no CRIU images).
	Mode Mode `json:"mode"`
	// Container identifies what was saved.
	Container Container `json:"container"`
	// LeftRunning is true when the container kept running after the save.
	LeftRunning bool `json:"leftRunning"`
	// RestartPolicy is the container's restart policy before the save; ckpt
	// holds it off while the container is checkpointed and puts it back on
	// resume.
	RestartPolicy RestartPolicy `json:"restartPolicy"`
	// Host describes the machine and software that made the checkpoint.
	Host Host `json:"host"`
	// MemoryBytes is the size of the memory pages in the CRIU images.
	MemoryBytes int64 `json:"memoryBytes"`
	// Volumes lists the named volumes whose contents were captured.
	Volumes []Volume `json:"volumes"`
	// Binds lists bind mounts; their contents are not captured.
	Binds []Bind `json:"binds"`
	// Skipped lists mounts that were neither captured nor recorded as binds,
	// with the reason (volumes of other drivers, for instance).
	Skipped []string `json:"skipped,omitempty"`
	// Layer describes LayerFile.
	Layer Layer `json:"layer"`
	// Files lists every file of the checkpoint except the manifest and its
	// checksum, with paths relative to the checkpoint directory.
	Files []File `json:"files"`
	// Timings says how long each phase of the save took.
	Timings []Timing `json:"timings"`
}

// Container identifies the saved container.
type Container struct {
	// Name is the container's name without the leading slash.
	Name string `json:"name"`
	// ID is the engine's container id at the time of the save.
	ID string `json:"id"`
	// Image is the image reference the container was created from.
	Image string `json:"image"`
	// ImageID is the image's content id (sha256:...).
	ImageID string `json:"imageId"`
	// Project is the compose project the container belongs to, if any.
	Project string `json:"project,omitempty"`
	// NetNS says how the network namespace was saved: empty when CRIU
	// dumped it with the processes (the engine attaches the network anew on
	// restore), NetNSHolder when it was left out as external, so that the
	// processes can only come back inside a network holder container's
	// namespace (engines that cannot restore otherwise, docs/engines.md).
	NetNS string `json:"netns,omitempty"`
}

// NetNSHolder is Container.NetNS of a checkpoint that resumes inside a
// network holder container.
const NetNSHolder = "holder"

// RestartPolicy mirrors the engine's restart policy.
type RestartPolicy struct {
	Name              string `json:"name"`
	MaximumRetryCount int    `json:"maximumRetryCount,omitempty"`
}

// Restarts reports whether the engine would restart a container with this
// policy by itself (anything but none and "no").
func (p RestartPolicy) Restarts() bool { return p.Name != "" && p.Name != "no" }

// Host describes where a checkpoint was made.
type Host struct {
	Hostname      string `json:"hostname"`
	Kernel        string `json:"kernel"`
	Arch          string `json:"arch"`
	EngineVersion string `json:"engineVersion"`
	APIVersion    string `json:"apiVersion"`
	CRIUVersion   int    `json:"criuVersion"`
	StorageDriver string `json:"storageDriver"`
	CgroupVersion string `json:"cgroupVersion,omitempty"`
	// CPUFlags are the CPU's feature flags (/proc/cpuinfo), sorted: a
	// restore on a CPU without one of them may crash the restored code.
	CPUFlags []string `json:"cpuFlags,omitempty"`
}

// Volume is a captured named volume.
type Volume struct {
	Name        string            `json:"name"`
	Driver      string            `json:"driver"`
	DriverOpts  map[string]string `json:"driverOpts,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Destination string            `json:"destination"`
	// Anonymous is true for a volume the engine named itself (-v /path or
	// an image VOLUME); resume re-attaches it by name.
	Anonymous bool `json:"anonymous,omitempty"`
	// Archive is the path of its tar archive, relative to the checkpoint.
	Archive string `json:"archive"`
	// Bytes is the size of its regular-file content.
	Bytes int64 `json:"bytes"`
	// Entries is the number of archive entries.
	Entries int64 `json:"entries"`
}

// Bind is a recorded bind mount.
type Bind struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	ReadWrite   bool   `json:"readWrite"`
}

// Layer describes the writable-layer archive.
type Layer struct {
	Archive string `json:"archive"`
	Entries int64  `json:"entries"`
	Bytes   int64  `json:"bytes"`
	Deleted int64  `json:"deleted"`
}

// File is one file of a checkpoint.
type File struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// SHA256 is the sha256 of the file's bytes; of a chunked file, the
	// sha256 of its chunk list (ChunksSHA256), each chunk having its own.
	SHA256 string `json:"sha256"`
	// Chunks, when present, are the file's contents in order: the file is
	// not in the checkpoint's directory but in the store's chunks
	// (ChunksDir), and its bytes are their concatenation.
	Chunks []Chunk `json:"chunks,omitempty"`
}

// Chunk is a piece of a chunked file, stored once under its sha256.
type Chunk struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// ChunksSHA256 is the sha256 of a chunked file: the hex sha256 of its
// chunks' sha256 digests (32 bytes each), one after the other in order. It
// binds the chunks and their order as the file's own sha256 would, and
// costs no pass over the bytes besides the chunks' own sums.
func ChunksSHA256(chunks []Chunk) string {
	h := sha256.New()
	for _, c := range chunks {
		b, _ := hex.DecodeString(c.SHA256)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// MaxChunk is the largest chunk ckpt writes; a manifest with a larger one
// is refused.
const MaxChunk = 4 << 20

// MaxChunks is the most chunks ckpt cuts a file of size bytes into. A
// chunk cut by content has at least EntryCut (256 KiB) bytes but for the
// last one before a cut or the end, and an archive is cut only before and
// after entries of EntryCut bytes or more: so at most size/EntryCut chunks
// by content, and two more for each such entry, and one. A manifest that
// lists more is refused: its import or pull would create a file in the
// store for every few bytes.
func MaxChunks(size int64) int64 { return 3*((size+EntryCut-1)/EntryCut) + 1 }

// EntryCut is the size from which an archive's entry gets chunks of its
// own (format 4): a chunked archive is cut before the header of each
// regular file of at least EntryCut bytes and after its data, besides the
// boundaries found by content. A file rewritten between two saves then
// costs its own chunks, not also the ones it shared with its neighbours;
// smaller files are packed together.
const EntryCut = 256 << 10

// Chunked says whether a save stores the file at rel as chunks: the CRIU
// images of memory pages, the volumes' archives and the layer's, the
// files that are large and change a little between two saves.
func Chunked(rel string) bool {
	return PagesImage(rel) || strings.HasPrefix(rel, VolumesDir+"/") || rel == LayerFile
}

// PagesImage says whether rel is a CRIU image of memory pages: whole pages,
// one after the other.
func PagesImage(rel string) bool {
	return strings.HasPrefix(rel, ImagesDir+"/pages-")
}

// Timing is the duration of one phase, in milliseconds.
type Timing struct {
	Phase  string `json:"phase"`
	Millis int64  `json:"ms"`
}

// ShutdownRecordDoc is the content of ShutdownRecord.
type ShutdownRecordDoc struct {
	// Time is when the shutdown hook ran.
	Time time.Time `json:"time"`
	// Saved lists the containers saved, in the order they were saved.
	Saved []SavedContainer `json:"saved"`
}

// SavedContainer is one container the shutdown hook saved.
type SavedContainer struct {
	Name       string `json:"name"`
	Mode       Mode   `json:"mode"`
	Checkpoint string `json:"checkpoint"`
	// After lists the containers to resume before this one.
	After []string `json:"after,omitempty"`
}

// Mode is what a checkpoint holds.
type Mode string

// Modes of a checkpoint.
const (
	// ModeHot: process memory and data.
	ModeHot Mode = "hot"
	// ModeCold: data only; the container was stopped gracefully.
	ModeCold Mode = "cold"
)

// PhaseTotal names the last timing of a manifest: the whole save.
const PhaseTotal = "total"

// PhaseFrozen names the timing of a hot save whose volumes and writable
// layer were captured while CRIU dumped: from the start of the checkpoint
// until its processes were seen frozen and the capture began.
const PhaseFrozen = "frozen"

// Check returns an error naming the first thing in m that a checkpoint
// written by ckpt never has: a file list that CheckFiles refuses; an archive
// of a volume or of the layer that is not a listed file; a volume name that
// is a path. Everything resume opens by a name from the manifest is then a
// listed file, checked by Verify.
func (m *Manifest) Check() error {
	if err := CheckFiles(m.Files); err != nil {
		return fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if m.FormatVersion < FirstChunked {
		for _, f := range m.Files {
			if f.Chunks != nil {
				return fmt.Errorf("%s: file %q has chunks, which format version %d does not have", ManifestFile, f.Path, m.FormatVersion)
			}
		}
	}
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[f.Path] = true
	}
	if m.Layer.Archive != "" && !listed[m.Layer.Archive] {
		return fmt.Errorf("%s: the layer's archive %q is not one of its files", ManifestFile, m.Layer.Archive)
	}
	for _, v := range m.Volumes {
		if v.Name == "" || strings.ContainsAny(v.Name, "/\\") || v.Name == "." || v.Name == ".." {
			return fmt.Errorf("%s: invalid volume name %q", ManifestFile, v.Name)
		}
		if !listed[v.Archive] {
			return fmt.Errorf("%s: the archive %q of volume %s is not one of its files", ManifestFile, v.Archive, v.Name)
		}
	}
	return nil
}

// CheckResumable is Check, and returns an error when m lacks what a resume
// needs: a mode of hot or cold, the container's name and id.
func (m *Manifest) CheckResumable() error {
	if err := m.Check(); err != nil {
		return err
	}
	switch {
	case m.Mode != ModeHot && m.Mode != ModeCold:
		return fmt.Errorf("%s: mode %q is neither %s nor %s", ManifestFile, m.Mode, ModeHot, ModeCold)
	case m.Container.Name == "" || m.Container.ID == "":
		return fmt.Errorf("%s: the container has no name or no id", ManifestFile)
	}
	return nil
}

// CheckFiles checks the file list of a manifest: every path is clean,
// slash-separated, relative, inside the checkpoint, listed once, not a name
// ckpt writes itself (ManifestFile, ManifestSumFile, OriginFile,
// SignatureFile), and not also a directory of another path; sizes are not
// negative and sums are hex sha256; chunks add up to their file, name it by
// their sums, and are not more than MaxChunks; and the list is within the
// limits of a checkpoint (MaxFiles, MaxCheckpointChunks, MaxChunkRepeats).
func CheckFiles(files []File) error {
	if err := checkLimits(files); err != nil {
		return err
	}
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if err := checkPath(f.Path); err != nil {
			return fmt.Errorf("file %q: %v", f.Path, err)
		}
		switch f.Path {
		case ManifestFile, ManifestSumFile, OriginFile, SignatureFile:
			return fmt.Errorf("file %q: a reserved name", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("file %q is listed twice", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 {
			return fmt.Errorf("file %q: negative size", f.Path)
		}
		if !IsSHA256(f.SHA256) {
			return fmt.Errorf("file %q: %q is not a sha256", f.Path, f.SHA256)
		}
		if f.Chunks == nil {
			continue
		}
		var sum int64
		for i, c := range f.Chunks {
			if !IsSHA256(c.SHA256) {
				return fmt.Errorf("file %q: chunk %d: %q is not a sha256", f.Path, i, c.SHA256)
			}
			if c.Size <= 0 || c.Size > MaxChunk {
				return fmt.Errorf("file %q: chunk %d has %d bytes, not 1 to %d", f.Path, i, c.Size, MaxChunk)
			}
			sum += c.Size
		}
		if sum != f.Size {
			return fmt.Errorf("file %q has %d bytes and chunks of %d", f.Path, f.Size, sum)
		}
		if n := MaxChunks(f.Size); int64(len(f.Chunks)) > n {
			return fmt.Errorf("file %q has %d chunks for %d bytes; ckpt cuts it into at most %d", f.Path, len(f.Chunks), f.Size, n)
		}
		if f.SHA256 != ChunksSHA256(f.Chunks) {
			return fmt.Errorf("file %q: its sha256 is not that of its chunks", f.Path)
		}
	}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return fmt.Errorf("%q is listed as a file and is a directory of %q", dir, f.Path)
			}
		}
	}
	return nil
}

// IsSHA256 says whether s is a sha256 in lowercase hex.
func IsSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && strings.ToLower(s) == s
}

// checkPath checks that p is a path the store can hold: relative,
// slash-separated, clean, and inside the checkpoint.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.HasPrefix(p, "/"):
		return errors.New("absolute path")
	case p == ".." || strings.HasPrefix(p, "../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "/../"):
		return errors.New("path leaves the checkpoint directory")
	case strings.ContainsRune(p, 0) || strings.ContainsRune(p, '\\'):
		return errors.New("path has a NUL or backslash")
	case path.Clean(p) != p || p == ".":
		return errors.New("path is not clean")
	case !filepath.IsLocal(p):
		return errors.New("path leaves the checkpoint directory")
	}
	return nil
}
