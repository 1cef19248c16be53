package inspect

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	sk_inet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	sk_unix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Sockets the fixture does not have, described from entries as CRIU writes
// them.
func TestDescribeSockets(t *testing.T) {
	le := binary.LittleEndian
	ipv4 := func(a, b, c, d byte) []uint32 { return []uint32{le.Uint32([]byte{a, b, c, d})} }
	u32 := proto.Uint32
	fi := &fileIndex{order: le, loaded: true, byID: map[uint32]*fdinfo.FileEntry{}, unixNames: map[uint32]string{}}
	add := func(e *fdinfo.FileEntry) {
		fi.byID[e.GetId()] = e
		if u := e.GetUsk(); u != nil {
			fi.unixNames[u.GetIno()] = unixName(u)
		}
	}
	add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Id: u32(1), Usk: &sk_unix.UnixSkEntry{
		Ino: u32(100), Type: u32(1), State: u32(10), Name: []byte("/run/app.sock")}})
	add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Id: u32(2), Usk: &sk_unix.UnixSkEntry{
		Ino: u32(101), Type: u32(1), State: u32(1), Peer: u32(102)}})
	add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Id: u32(3), Usk: &sk_unix.UnixSkEntry{
		Ino: u32(102), Type: u32(1), State: u32(1), Peer: u32(101), Name: []byte("/run/app.sock")}})
	add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_UNIXSK.Enum(), Id: u32(4), Usk: &sk_unix.UnixSkEntry{
		Ino: u32(103), Type: u32(2), State: u32(7), Name: []byte("\x00abstract"), Peer: u32(999)}})
	add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_INETSK.Enum(), Id: u32(5), Isk: &sk_inet.InetSkEntry{
		Family: u32(2), Type: u32(2), Proto: u32(17), State: u32(7), SrcPort: u32(53), SrcAddr: ipv4(0, 0, 0, 0), DstAddr: ipv4(0, 0, 0, 0)}})
	add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_INETSK.Enum(), Id: u32(6), Isk: &sk_inet.InetSkEntry{
		Family: u32(2), Type: u32(1), Proto: u32(6), State: u32(1), SrcPort: u32(40000), DstPort: u32(5432),
		SrcAddr: ipv4(10, 0, 0, 2), DstAddr: ipv4(10, 0, 0, 3)}})
	add(&fdinfo.FileEntry{Type: fdinfo.FdTypes_INETSK.Enum(), Id: u32(7), Isk: &sk_inet.InetSkEntry{
		Family: u32(10), Type: u32(1), Proto: u32(6), State: u32(10), SrcPort: u32(443),
		SrcAddr: []uint32{le.Uint32([]byte{0x20, 0x01, 0x0d, 0xb8}), 0, 0, le.Uint32([]byte{0, 0, 0, 1})}, DstAddr: []uint32{0, 0, 0, 0}}})

	for _, tc := range []struct {
		id   uint32
		typ  fdinfo.FdTypes
		want File
	}{
		{1, fdinfo.FdTypes_UNIXSK, File{Type: "unix", Path: "/run/app.sock", Socket: &Socket{Family: "unix", Type: "stream", State: "listening", Local: "/run/app.sock"}}},
		{2, fdinfo.FdTypes_UNIXSK, File{Type: "unix", Socket: &Socket{Family: "unix", Type: "stream", State: "connected", Peer: "/run/app.sock"}}},
		{3, fdinfo.FdTypes_UNIXSK, File{Type: "unix", Path: "/run/app.sock", Socket: &Socket{Family: "unix", Type: "stream", State: "connected", Local: "/run/app.sock", Peer: "socket:[101] (unnamed)"}}},
		{4, fdinfo.FdTypes_UNIXSK, File{Type: "unix", Path: "@abstract", Socket: &Socket{Family: "unix", Type: "dgram", State: "unconnected", Local: "@abstract", Peer: "socket:[999]"}}},
		{5, fdinfo.FdTypes_INETSK, File{Type: "udp", Socket: &Socket{Family: "ipv4", Protocol: "udp", Type: "dgram", State: "unconnected", Local: "0.0.0.0:53"}}},
		{6, fdinfo.FdTypes_INETSK, File{Type: "tcp", Socket: &Socket{Family: "ipv4", Protocol: "tcp", Type: "stream", State: "established", Local: "10.0.0.2:40000", Peer: "10.0.0.3:5432"}}},
		{7, fdinfo.FdTypes_INETSK, File{Type: "tcp6", Socket: &Socket{Family: "ipv6", Protocol: "tcp", Type: "stream", State: "listening", Local: "[2001:db8::1]:443"}}},
		{8, fdinfo.FdTypes_TIMERFD, File{Type: "timerfd"}},
	} {
		got := fi.describe(&fdinfo.FdinfoEntry{Id: u32(tc.id), Type: tc.typ.Enum(), Fd: u32(tc.id + 2)})
		tc.want.FD = tc.id + 2
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("file %d: %+v %+v, want %+v %+v", tc.id, got, got.Socket, tc.want, tc.want.Socket)
		}
	}
}

// The page count of an entry: field 5 (CRIU 4) when present, else field 2.
func TestNrPages(t *testing.T) {
	old := &pagemap.PagemapEntry{Vaddr: proto.Uint64(0x1000), NrPages: proto.Uint32(7)}
	if n := nrPages(old); n != 7 {
		t.Errorf("compat_nr_pages: %d", n)
	}
	b, err := proto.Marshal(&pagemap.PagemapEntry{Vaddr: proto.Uint64(0x1000), NrPages: proto.Uint32(0)})
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, 5<<32)
	var pe pagemap.PagemapEntry
	if err := proto.Unmarshal(b, &pe); err != nil {
		t.Fatal(err)
	}
	if n := nrPages(&pe); n != 5<<32 {
		t.Errorf("nr_pages: %d", n)
	}
}

// Memory read across pages of two page map entries, and from a parent's.
func TestMemoryRead(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "criu"), 0o700)
	// Runs: 0x10000 (2 pages, present), 0x20000 (1 page, in parent),
	// 0x30000 (1 page, present).
	pages := make([]byte, 3*4096)
	copy(pages[4096-3:], "ab\x00")
	copy(pages[4096:], "cd\x00")
	copy(pages[2*4096:], "xyz\x00")
	os.WriteFile(filepath.Join(dir, "criu", "pages-3.img"), pages, 0o600)
	m := &memory{name: "pagemap-1.img", pagesID: 3, runs: []pageRun{
		{vaddr: 0x10000, pages: 2, flags: pePresent, off: 0},
		{vaddr: 0x20000, pages: 1, flags: peParent},
		{vaddr: 0x30000, pages: 1, flags: pePresent | peLazy, off: 2 * 4096},
	}}
	argv, trunc, why := readCommand(dirOpener(dir), m, 0x10000+4096-3, 0x10000+4096+3, 4096)
	if !reflect.DeepEqual(argv, []string{"ab", "cd"}) || trunc || why != "" {
		t.Errorf("across pages: %q %v %q", argv, trunc, why)
	}
	if argv, _, why := readCommand(dirOpener(dir), m, 0x30000, 0x30004, 4096); !reflect.DeepEqual(argv, []string{"xyz"}) || why != "" {
		t.Errorf("lazy but present: %q %q", argv, why)
	}
	if _, _, why := readCommand(dirOpener(dir), m, 0x20000, 0x20010, 4096); why != "its pages are in the parent checkpoint's images" {
		t.Errorf("parent: %q", why)
	}
	if _, _, why := readCommand(dirOpener(dir), m, 0x40000, 0x40010, 4096); why != "the page at 0x40000 is not in pagemap-1.img" {
		t.Errorf("absent: %q", why)
	}
	if _, _, why := readCommand(dirOpener(dir), m, 0x10000, 0x10000, 4096); why != "the process has no command line" {
		t.Errorf("empty: %q", why)
	}
	if _, _, why := readCommand(dirOpener(dir), m, ^uint64(0)-10, ^uint64(0), 4096); why == "" {
		t.Error("no error at the top of the address space")
	}
	// A (corrupt) run at the very top of the address space: no overflow.
	m.runs = append(m.runs, pageRun{vaddr: ^uint64(0) &^ 4095, pages: 1, flags: pePresent, off: 0})
	if argv, _, why := readCommand(dirOpener(dir), m, ^uint64(0)-10, ^uint64(0), 4096); why != "" || len(argv) == 0 {
		t.Errorf("top of the address space: %q %q", argv, why)
	}
}
