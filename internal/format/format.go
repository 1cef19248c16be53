// Package format holds the names and types of ckpt's on-disk store, as
// specified in docs/format.md. Everything that reads or writes the store uses
// these names; change them only together with that document and Version.
package format

import "time"

// Version is the store format this build writes. A manifest with a higher
// version is refused.
const Version = 2

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
	// HooksDir, at the store's root, holds the host hooks' records.
	HooksDir = "hooks"
	// ShutdownRecord, in HooksDir, lists what the last shutdown hook saved,
	// for the boot hook to resume. The boot hook renames it to
	// ShutdownRecord + ".done" when it has run.
	ShutdownRecord = "last-shutdown.json"
	// LayerFile is a tar archive of the container's writable layer in the
	// OCI layer convention (deleted paths as .wh.<name> entries).
	LayerFile = "layer.tar"
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
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
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
