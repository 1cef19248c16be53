package criu

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// runaway matches CRIU's line for a Unix socket that is not among the dumped
// processes' but is connected to one of theirs: "unix: Runaway socket: ino
// 101546 peer_ino 101213 ...", ino the outside end, peer_ino the inside one.
var runaway = regexp.MustCompile(`Runaway socket: ino (\d+) peer_ino (\d+)`)

// procRoot is where /proc is; tests point it elsewhere.
var procRoot = "/proc"

// Process is a process named in an explanation.
type Process struct {
	PID     int
	Command string // its command line, arguments separated by spaces
}

func (p Process) String() string {
	if p.PID == 0 {
		return "a process that has exited"
	}
	return fmt.Sprintf("pid %d (%s)", p.PID, p.Command)
}

// ExternalPeer is a Unix-socket connection CRIU refused to dump: Inside is
// the dumped process's end, Outside the process holding the other end, which
// is not in the container's process tree (a docker exec session, typically).
type ExternalPeer struct {
	Inside, Outside Process
}

// ExternalUnixPeers finds, for each "Runaway socket" line of a CRIU dump log,
// the processes holding the two ends, by the socket inodes in /proc/*/fd. It
// must run while they still exist (right after the failed dump; the
// container keeps running).
func ExternalUnixPeers(log []byte) []ExternalPeer {
	var want []uint64
	var pairs [][2]uint64
	seen := map[[2]uint64]bool{}
	for _, m := range runaway.FindAllStringSubmatch(string(log), -1) {
		ino, _ := strconv.ParseUint(m[1], 10, 64)
		peer, _ := strconv.ParseUint(m[2], 10, 64)
		if seen[[2]uint64{ino, peer}] {
			continue
		}
		seen[[2]uint64{ino, peer}] = true
		pairs = append(pairs, [2]uint64{ino, peer})
		want = append(want, ino, peer)
	}
	if len(pairs) == 0 {
		return nil
	}
	owners := socketOwners(want)
	out := make([]ExternalPeer, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, ExternalPeer{Outside: owners[p[0]], Inside: owners[p[1]]})
	}
	return out
}

// socketOwners maps each socket inode to the first process found holding it.
func socketOwners(inodes []uint64) map[uint64]Process {
	want := make(map[uint64]bool, len(inodes))
	for _, i := range inodes {
		want[i] = true
	}
	owners := make(map[uint64]Process)
	eachFD(nil, func(pid int, link string) bool {
		s, ok := strings.CutPrefix(link, "socket:[")
		if !ok {
			return true
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
		if err != nil || !want[ino] {
			return true
		}
		if _, done := owners[ino]; !done {
			owners[ino] = Process{PID: pid, Command: cmdline(pid)}
		}
		return true
	})
	return owners
}

// eachFD calls fn with the target of every open file descriptor in procRoot,
// process by process, skipping the processes keep rejects (nil keeps all).
// fn returns false to skip the rest of that process's descriptors. Processes
// and descriptors that vanish meanwhile are skipped.
func eachFD(keep func(pid int) bool, fn func(pid int, link string) bool) {
	procs, _ := os.ReadDir(procRoot)
	for _, d := range procs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || (keep != nil && !keep(pid)) {
			continue
		}
		fdDir := filepath.Join(procRoot, d.Name(), "fd")
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err == nil && !fn(pid, link) {
				break
			}
		}
	}
}

// cmdline returns a process's command line, shortened for a message.
func cmdline(pid int) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return "?"
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// explainExternal says which connections made the dump fail and what to do.
func explainExternal(log []byte) string {
	peers := ExternalUnixPeers(log)
	var who []string
	for _, p := range peers {
		who = append(who, p.Outside.String()+" is connected to "+p.Inside.String())
	}
	s := "a process outside the container's process tree, usually a docker exec session, holds a Unix-socket connection to a process inside it"
	if len(who) > 0 {
		s += ": " + strings.Join(who, "; ")
	}
	return s + "; CRIU cannot dump one end of a connection without the other: end that session (or connect it over TCP, which ckpt checkpoints) and save again"
}

// IOURingUsers returns the processes in the pid namespace of process pid
// (a container's init, as the host sees it) that hold an io_uring instance,
// which CRIU cannot dump ("Unknown shit 600 (anon_inode:[io_uring])").
func IOURingUsers(pid int) []Process {
	ns, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "ns", "pid"))
	if err != nil {
		return nil
	}
	var users []Process
	sameNS := func(pid int) bool {
		other, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "ns", "pid"))
		return err == nil && other == ns
	}
	eachFD(sameNS, func(pid int, link string) bool {
		if link != "anon_inode:[io_uring]" {
			return true
		}
		users = append(users, Process{PID: pid, Command: cmdline(pid)})
		return false
	})
	return users
}
