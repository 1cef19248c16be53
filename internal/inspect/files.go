package inspect

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pipe"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	sk_inet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	sk_unix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"golang.org/x/sys/unix"
)

// fileIndex holds the checkpoint's files (files.img, or the per-type images
// of older CRIUs) and the decoded descriptor tables.
type fileIndex struct {
	dir    string
	order  binary.ByteOrder
	loaded bool
	byID   map[uint32]*fdinfo.FileEntry
	regs   map[uint32]*regfile.RegFileEntry
	// unixNames maps the inode of each unix socket to its name.
	unixNames map[uint32]string
	fdinfo    map[uint32][]File
}

// byteOrder is the byte order of the machine that made the checkpoint: CRIU
// stores IP addresses as the 32-bit words it read from the kernel.
func byteOrder(arch string) binary.ByteOrder {
	switch arch {
	case "s390x", "ppc64", "mips", "mips64":
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// load decodes files.img; CRIUs before files.img kept regular files, inet
// and unix sockets and pipes in images of their own, read instead.
func (fi *fileIndex) load() error {
	if fi.loaded {
		return nil
	}
	fi.loaded = true
	fi.byID = map[uint32]*fdinfo.FileEntry{}
	fi.regs = map[uint32]*regfile.RegFileEntry{}
	fi.unixNames = map[uint32]string{}
	add := func(e *fdinfo.FileEntry) {
		if e.GetReg() != nil {
			fi.regs[e.GetId()] = e.GetReg()
		}
		if u := e.GetUsk(); u != nil {
			fi.unixNames[u.GetIno()] = unixName(u)
		}
		if _, dup := fi.byID[e.GetId()]; !dup {
			fi.byID[e.GetId()] = e
		}
	}
	files, err := decodeAs[*fdinfo.FileEntry](fi.dir, "files.img", "FILES")
	if err == nil {
		for _, e := range files {
			add(e)
		}
		return nil
	}
	if !isMissing(err) {
		return err
	}
	regs, err := decodeAs[*regfile.RegFileEntry](fi.dir, "reg-files.img", "REG_FILES")
	if err != nil && !isMissing(err) {
		return err
	}
	for _, r := range regs {
		add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_REG.Enum(), Id: r.Id, Reg: r})
	}
	inets, err := decodeAs[*sk_inet.InetSkEntry](fi.dir, "inetsk.img", "INETSK")
	if err != nil && !isMissing(err) {
		return err
	}
	for _, s := range inets {
		add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_INETSK.Enum(), Id: s.Id, Isk: s})
	}
	unixes, err := decodeAs[*sk_unix.UnixSkEntry](fi.dir, "unixsk.img", "UNIXSK")
	if err != nil && !isMissing(err) {
		return err
	}
	for _, s := range unixes {
		add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Id: s.Id, Usk: s})
	}
	pipes, err := decodeAs[*pipe.PipeEntry](fi.dir, "pipes.img", "PIPES")
	if err != nil && !isMissing(err) {
		return err
	}
	for _, p := range pipes {
		add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_PIPE.Enum(), Id: p.Id, Pipe: p})
	}
	return nil
}

// files returns the descriptors of file table id (fdinfo-<id>.img).
func (fi *fileIndex) files(id uint32) ([]File, error) {
	if fs, ok := fi.fdinfo[id]; ok {
		return fs, nil
	}
	if err := fi.load(); err != nil {
		return nil, err
	}
	fds, err := decodeAs[*fdinfo.FdinfoEntry](fi.dir, fmt.Sprintf("fdinfo-%d.img", id), "FDINFO")
	if err != nil {
		return nil, err
	}
	out := make([]File, 0, len(fds))
	for _, fd := range fds {
		out = append(out, fi.describe(fd))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	fi.fdinfo[id] = out
	return out, nil
}

// describe turns a descriptor into a File.
func (fi *fileIndex) describe(fd *fdinfo.FdinfoEntry) File {
	f := File{FD: fd.GetFd()}
	e := fi.byID[fd.GetId()]
	switch fd.GetType() {
	case fdinfo.FdTypes_REG:
		f.Type = "file"
		if r := fi.regs[fd.GetId()]; r != nil {
			f.Path = r.GetName()
			if r.GetMode()&unix.S_IFMT == unix.S_IFDIR {
				f.Type = "dir"
			}
		}
	case fdinfo.FdTypes_PIPE:
		f.Type = "pipe"
		if p := e.GetPipe(); p != nil {
			f.Path = fmt.Sprintf("pipe:[%d]", p.GetPipeId())
		}
	case fdinfo.FdTypes_FIFO:
		f.Type = "fifo"
		if ff := e.GetFifo(); ff != nil {
			id := ff.GetId()
			if ff.RegfId != nil {
				id = ff.GetRegfId()
			}
			if r := fi.regs[id]; r != nil {
				f.Path = r.GetName()
			}
		}
	case fdinfo.FdTypes_INETSK:
		f.Type = "inet"
		if s := e.GetIsk(); s != nil {
			f.Socket = fi.inet(s)
			if f.Socket.Protocol != "" {
				f.Type = f.Socket.Protocol
			}
			if f.Socket.Family == "ipv6" {
				f.Type += "6"
			}
		}
	case fdinfo.FdTypes_UNIXSK:
		f.Type = "unix"
		if s := e.GetUsk(); s != nil {
			f.Socket = fi.unix(s)
			f.Path = f.Socket.Local
		}
	case fdinfo.FdTypes_NETLINKSK:
		f.Type = "netlink"
		f.Socket = &Socket{Family: "netlink"}
	case fdinfo.FdTypes_PACKETSK:
		f.Type = "packet"
		f.Socket = &Socket{Family: "packet"}
		if s := e.GetPsk(); s != nil {
			f.Socket.Type = sockType(s.GetType())
		}
	case fdinfo.FdTypes_TUNF:
		f.Type = "tun"
	default:
		f.Type = strings.ToLower(fd.GetType().String())
	}
	return f
}

// TCP states (include/net/tcp_states.h), which the kernel uses for the
// state of every socket.
var tcpStates = map[uint32]string{
	1: "established", 2: "syn-sent", 3: "syn-recv", 4: "fin-wait-1", 5: "fin-wait-2",
	6: "time-wait", 7: "closed", 8: "close-wait", 9: "last-ack", 10: "listening",
	11: "closing", 12: "new-syn-recv",
}

const (
	stateEstablished = 1
	stateClose       = 7
	stateListen      = 10
)

func (fi *fileIndex) inet(s *sk_inet.InetSkEntry) *Socket {
	sk := &Socket{
		Family:   family(s.GetFamily()),
		Protocol: protocol(s.GetProto()),
		Type:     sockType(s.GetType()),
		State:    stateName(s.GetState()),
		Local:    fi.addr(s.GetSrcAddr(), s.GetSrcPort()),
	}
	if sk.Protocol != "tcp" {
		// Datagram sockets are connected (to a default peer) or not.
		switch s.GetState() {
		case stateEstablished:
			sk.State = "connected"
		case stateClose:
			sk.State = "unconnected"
		}
	}
	if s.GetState() != stateListen && (s.GetDstPort() != 0 || !zero(s.GetDstAddr())) {
		sk.Peer = fi.addr(s.GetDstAddr(), s.GetDstPort())
	}
	return sk
}

func zero(words []uint32) bool {
	for _, w := range words {
		if w != 0 {
			return false
		}
	}
	return true
}

// addr formats an address as CRIU stores it (one 32-bit word for IPv4,
// four for IPv6, in network byte order in memory) and a port.
func (fi *fileIndex) addr(words []uint32, port uint32) string {
	var ip netip.Addr
	switch len(words) {
	case 1:
		var b [4]byte
		fi.order.PutUint32(b[:], words[0])
		ip = netip.AddrFrom4(b)
	case 4:
		var b [16]byte
		for i, w := range words {
			fi.order.PutUint32(b[4*i:], w)
		}
		// An IPv6 socket talking IPv4 reads better as IPv4.
		ip = netip.AddrFrom16(b).Unmap()
	default:
		return net.JoinHostPort("?", strconv.FormatUint(uint64(port), 10))
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(uint64(port), 10))
}

func (fi *fileIndex) unix(s *sk_unix.UnixSkEntry) *Socket {
	sk := &Socket{Family: "unix", Type: sockType(s.GetType()), State: stateName(s.GetState()), Local: unixName(s)}
	switch s.GetState() {
	case stateEstablished:
		sk.State = "connected"
	case stateClose:
		sk.State = "unconnected"
	}
	if p := s.GetPeer(); p != 0 {
		name, ok := fi.unixNames[p]
		switch {
		case !ok:
			sk.Peer = fmt.Sprintf("socket:[%d]", p)
		case name == "":
			sk.Peer = fmt.Sprintf("socket:[%d] (unnamed)", p)
		default:
			sk.Peer = name
		}
	}
	return sk
}

// unixName is the name a unix socket is bound to: a path, @name for an
// abstract one, "" when it is not bound.
func unixName(s *sk_unix.UnixSkEntry) string {
	n := s.GetName()
	switch {
	case len(n) == 0:
		return ""
	case n[0] == 0:
		return "@" + strings.ReplaceAll(string(n[1:]), "\x00", "@")
	}
	name := strings.TrimRight(string(n), "\x00")
	if !strings.HasPrefix(name, "/") && s.GetNameDir() != "" {
		name = path.Join(s.GetNameDir(), name)
	}
	return name
}

func stateName(s uint32) string {
	if n, ok := tcpStates[s]; ok {
		return n
	}
	return fmt.Sprintf("state %d", s)
}

func family(f uint32) string {
	switch f {
	case unix.AF_INET:
		return "ipv4"
	case unix.AF_INET6:
		return "ipv6"
	case unix.AF_UNIX:
		return "unix"
	case unix.AF_NETLINK:
		return "netlink"
	case unix.AF_PACKET:
		return "packet"
	}
	return fmt.Sprintf("family %d", f)
}

func protocol(p uint32) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_UDPLITE:
		return "udplite"
	case unix.IPPROTO_ICMP:
		return "icmp"
	case unix.IPPROTO_ICMPV6:
		return "icmpv6"
	case unix.IPPROTO_RAW:
		return "raw"
	case unix.IPPROTO_SCTP:
		return "sctp"
	}
	return ""
}

func sockType(t uint32) string {
	switch t {
	case unix.SOCK_STREAM:
		return "stream"
	case unix.SOCK_DGRAM:
		return "dgram"
	case unix.SOCK_RAW:
		return "raw"
	case unix.SOCK_RDM:
		return "rdm"
	case unix.SOCK_SEQPACKET:
		return "seqpacket"
	case unix.SOCK_PACKET:
		return "packet"
	}
	return ""
}
