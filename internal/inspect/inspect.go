// Package inspect describes a stored checkpoint: what its manifest says, and
// what its CRIU images hold (processes, their memory, their open files and
// sockets), decoded with go-criu's image decoders, without running CRIU.
package inspect

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"time"

	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"

	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// Report describes one checkpoint.
type Report struct {
	Container string      `json:"container"`
	Name      string      `json:"name"`
	Created   time.Time   `json:"created"`
	Mode      format.Mode `json:"mode"`
	// Imported is true for a checkpoint brought by ckpt import.
	Imported bool `json:"imported"`
	// Trust says whether it comes back whole, and why not.
	Trust store.Trust `json:"trust"`
	// Asks lists what it asks for beyond a plain container (restore.Powers),
	// filled in by the caller.
	Asks          []string             `json:"asks,omitempty"`
	LeftRunning   bool                 `json:"leftRunning"`
	SizeBytes     int64                `json:"sizeBytes"`
	RestartPolicy format.RestartPolicy `json:"restartPolicy"`
	// Saved is what the manifest says about the container: id, image.
	Saved format.Container `json:"saved"`
	// Host is the machine the checkpoint was made on.
	Host Host `json:"host"`

	// ProcessState says why Processes is empty ("cold checkpoint"); it is
	// "" when the images were decoded.
	ProcessState string `json:"processState,omitempty"`
	// Processes are the processes of the container, parents first.
	Processes []Process `json:"processes"`
	// PageSize is the size of a memory page on the machine that made the
	// checkpoint, as inspect takes it from its architecture.
	PageSize int64 `json:"pageSize,omitempty"`
	// MemoryPages and MemoryBytes are the totals over all processes.
	MemoryPages int64 `json:"memoryPages"`
	MemoryBytes int64 `json:"memoryBytes"`

	Volumes []format.Volume `json:"volumes"`
	Binds   []format.Bind   `json:"binds"`
	Skipped []string        `json:"skipped"`
	Layer   format.Layer    `json:"layer"`
	Timings []format.Timing `json:"timings"`
}

// Host describes the machine and software that made the checkpoint.
type Host struct {
	Hostname      string `json:"hostname"`
	Kernel        string `json:"kernel"`
	Arch          string `json:"arch"`
	EngineVersion string `json:"engineVersion"`
	APIVersion    string `json:"apiVersion"`
	CRIUVersion   string `json:"criuVersion"`
	StorageDriver string `json:"storageDriver"`
	CgroupVersion string `json:"cgroupVersion,omitempty"`
}

// Process is one process of the checkpoint.
type Process struct {
	PID  uint32 `json:"pid"`
	PPID uint32 `json:"ppid"`
	PGID uint32 `json:"pgid"`
	SID  uint32 `json:"sid"`
	// Comm is the kernel's name of the process (15 bytes at most).
	Comm string `json:"comm"`
	// State is alive, zombie, stopped or helper (a process CRIU adds to
	// restore sessions and process groups).
	State string `json:"state"`
	// Command is the process's argv, read from its memory.
	Command []string `json:"command,omitempty"`
	// CommandTruncated is set when argv was longer than inspect reads.
	CommandTruncated bool `json:"commandTruncated,omitempty"`
	// CommandUnavailable says why Command is empty.
	CommandUnavailable string `json:"commandUnavailable,omitempty"`
	// Threads are the thread ids, the process's own first.
	Threads []uint32 `json:"threads"`
	// MemoryPages is the number of pages in the process's page map, and
	// MemoryBytes their size.
	MemoryPages int64 `json:"memoryPages"`
	MemoryBytes int64 `json:"memoryBytes"`
	// Files are the process's open file descriptors, by number.
	Files []File `json:"files"`
}

// File is one open file descriptor.
type File struct {
	FD uint32 `json:"fd"`
	// Type is file, dir, pipe, fifo, tcp, tcp6, udp, udp6, unix, or the
	// kind of descriptor (eventfd, eventpoll, inotify, timerfd, ...).
	Type string `json:"type"`
	// Path is the file's path for files, directories and FIFOs, and
	// pipe:[N] for pipes.
	Path string `json:"path,omitempty"`
	// Socket is set for sockets.
	Socket *Socket `json:"socket,omitempty"`
}

// Socket describes a socket.
type Socket struct {
	// Family is ipv4, ipv6, unix, netlink or packet.
	Family string `json:"family"`
	// Protocol is tcp, udp, ... for inet sockets.
	Protocol string `json:"protocol,omitempty"`
	// Type is stream, dgram, seqpacket or raw.
	Type string `json:"type,omitempty"`
	// State is listening, established, connected, unconnected, ...
	State string `json:"state,omitempty"`
	// Local is the address:port the socket is bound to (the path or
	// @abstract name for unix sockets).
	Local string `json:"local,omitempty"`
	// Peer is the remote address:port (for unix sockets, the name of the
	// peer socket when it is in the checkpoint too).
	Peer string `json:"peer,omitempty"`
}

// ColdState is Report.ProcessState for a cold checkpoint.
const ColdState = "no process state (cold checkpoint)"

// Read describes checkpoint ck. It reads the manifest's record and decodes
// the CRIU images; it reads the memory pages only for the page(s) holding
// each process's command line. Errors name the image at fault.
func Read(ck *store.Checkpoint) (*Report, error) {
	m := ck.Manifest
	r := &Report{
		Container:     ck.Container,
		Name:          ck.Name,
		Created:       m.Created,
		Mode:          m.Mode,
		Imported:      ck.Origin.Imported,
		Trust:         ck.Trust,
		LeftRunning:   m.LeftRunning,
		SizeBytes:     ck.Size(),
		RestartPolicy: m.RestartPolicy,
		Saved:         m.Container,
		Host: Host{
			Hostname:      m.Host.Hostname,
			Kernel:        m.Host.Kernel,
			Arch:          m.Host.Arch,
			EngineVersion: m.Host.EngineVersion,
			APIVersion:    m.Host.APIVersion,
			StorageDriver: m.Host.StorageDriver,
			CgroupVersion: m.Host.CgroupVersion,
		},
		Volumes:   nonNil(m.Volumes),
		Binds:     nonNil(m.Binds),
		Skipped:   nonNil(m.Skipped),
		Layer:     m.Layer,
		Timings:   nonNil(m.Timings),
		Processes: []Process{},
	}
	if m.Host.CRIUVersion > 0 {
		r.Host.CRIUVersion = criu.FormatVersion(m.Host.CRIUVersion)
	}
	if m.Mode == format.ModeCold {
		r.ProcessState = ColdState
		return r, nil
	}
	r.PageSize = pageSize(m.Host.Arch)
	procs, err := readImages(ck.Dir, m.Host.Arch, r.PageSize, ck.OpenAt)
	if err != nil {
		return nil, err
	}
	r.Processes = procs
	for _, p := range procs {
		r.MemoryPages += p.MemoryPages
		r.MemoryBytes += p.MemoryBytes
	}
	return r, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// pageSize is the page size of the machine that made the checkpoint: the
// page map counts pages, and CRIU restores only where pages have the same
// size. Architectures where it varies (arm64, ppc64le) take this machine's
// when it has the same architecture.
func pageSize(arch string) int64 {
	switch arch {
	case "amd64", "386", "s390x":
		return 4096
	}
	if arch == runtime.GOARCH || arch == "" {
		return int64(os.Getpagesize())
	}
	switch arch {
	case "ppc64le", "ppc64":
		return 65536
	}
	return 4096
}

// Task states of core_entry.tc.task_state (criu/include/task-state.h, a
// stable part of the image format).
const (
	taskAlive   = 1
	taskDead    = 2
	taskStopped = 3
	taskHelper  = 4
)

func taskState(s uint32) string {
	switch s {
	case taskAlive:
		return "alive"
	case taskDead:
		return "zombie"
	case taskStopped:
		return "stopped"
	case taskHelper:
		return "helper"
	}
	return fmt.Sprintf("state %d", s)
}

// readImages decodes the process tree and, for each process, its memory
// map and open files.
func readImages(dir, arch string, pageSize int64, open opener) ([]Process, error) {
	tree, err := decodeAs[*pstree.PstreeEntry](dir, "pstree.img", "PSTREE")
	if err != nil {
		return nil, err
	}
	if len(tree) == 0 {
		return nil, imgErr("pstree.img", "holds no process")
	}
	seen := make(map[uint32]bool, len(tree))
	for _, e := range tree {
		if seen[e.GetPid()] {
			return nil, imgErr("pstree.img", "process %d appears twice", e.GetPid())
		}
		seen[e.GetPid()] = true
	}
	fi := &fileIndex{dir: dir, order: byteOrder(arch), fdinfo: map[uint32][]File{}}
	procs := make([]Process, 0, len(tree))
	for _, e := range tree {
		p := Process{
			PID: e.GetPid(), PPID: e.GetPpid(), PGID: e.GetPgid(), SID: e.GetSid(),
			Threads: nonNil(e.GetThreads()),
			Files:   []File{},
		}
		if len(p.Threads) == 0 {
			p.Threads = []uint32{p.PID}
		}
		if p.PPID != 0 && !seen[p.PPID] {
			return nil, imgErr("pstree.img", "process %d has parent %d, which is not in the tree", p.PID, p.PPID)
		}
		coreName := fmt.Sprintf("core-%d.img", p.PID)
		core, err := decodeOne[*criu_core.CoreEntry](dir, coreName, "CORE")
		if err != nil {
			return nil, err
		}
		tc := core.GetTc()
		if tc == nil {
			return nil, imgErr(coreName, "has no task core entry")
		}
		p.Comm = tc.GetComm()
		p.State = taskState(tc.GetTaskState())
		if s := tc.GetTaskState(); s == taskDead || s == taskHelper {
			// No memory, no files: CRIU recreates such processes bare.
			p.CommandUnavailable = p.State + ": no memory"
			procs = append(procs, p)
			continue
		}
		mem, err := readMemory(dir, p.PID, pageSize)
		if err != nil {
			return nil, err
		}
		p.MemoryPages = mem.pages
		p.MemoryBytes = mem.pages * pageSize
		mmName := fmt.Sprintf("mm-%d.img", p.PID)
		mme, err := decodeOne[*mm.MmEntry](dir, mmName, "MM")
		if err != nil {
			return nil, err
		}
		p.Command, p.CommandTruncated, p.CommandUnavailable = readCommand(open, mem, mme.GetMmArgStart(), mme.GetMmArgEnd(), pageSize)
		filesID, err := filesID(dir, p.PID, core)
		if err != nil {
			return nil, err
		}
		if p.Files, err = fi.files(filesID); err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	return parentsFirst(procs), nil
}

// filesID returns the id of the file table of process pid: its
// fdinfo-<id>.img lists its descriptors.
func filesID(dir string, pid uint32, core *criu_core.CoreEntry) (uint32, error) {
	name := fmt.Sprintf("ids-%d.img", pid)
	ids, err := decodeOne[*criu_core.TaskKobjIdsEntry](dir, name, "IDS")
	if err == nil {
		return ids.GetFilesId(), nil
	}
	if isMissing(err) && core.GetIds() != nil {
		return core.GetIds().GetFilesId(), nil
	}
	return 0, err
}

func isMissing(err error) bool {
	ie, ok := err.(*imageError)
	return ok && ie.Err == errMissing
}

// parentsFirst orders processes depth first from the root, children by
// pid, so that the tree reads top-down.
func parentsFirst(procs []Process) []Process {
	children := map[uint32][]int{}
	var roots []int
	for i, p := range procs {
		if p.PPID == 0 {
			roots = append(roots, i)
		} else {
			children[p.PPID] = append(children[p.PPID], i)
		}
	}
	byPID := func(s []int) {
		sort.Slice(s, func(a, b int) bool { return procs[s[a]].PID < procs[s[b]].PID })
	}
	out := make([]Process, 0, len(procs))
	done := make([]bool, len(procs))
	var walk func(i int)
	walk = func(i int) {
		if done[i] {
			return
		}
		done[i] = true
		out = append(out, procs[i])
		kids := children[procs[i].PID]
		byPID(kids)
		for _, k := range kids {
			walk(k)
		}
	}
	byPID(roots)
	for _, i := range roots {
		walk(i)
	}
	// Processes in a cycle (a corrupt tree) come last.
	for i := range procs {
		if !done[i] {
			walk(i)
		}
	}
	return out
}
