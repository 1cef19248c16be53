package inspect

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// Flags of a page map entry (criu/include/pagemap.h). Entries written
// before there were flags say in_parent instead.
const (
	peParent  = 1 << 0 // the pages are in the parent checkpoint's images
	peLazy    = 1 << 1 // the pages may be restored lazily
	pePresent = 1 << 2 // the pages are in pages-<id>.img
)

// maxArgv bounds how much of a command line inspect reads.
const maxArgv = 32 << 10

// pageRun is one entry of a page map: pages consecutive in memory.
type pageRun struct {
	vaddr uint64
	pages uint64
	flags uint32
	// off is where the run's pages start in pages-<id>.img, when present.
	off int64
}

// memory is the page map of one process.
type memory struct {
	name    string // pagemap-<pid>.img
	pagesID uint32
	runs    []pageRun
	pages   int64
}

// readMemory decodes pagemap-<pid>.img. It does not read the pages.
func readMemory(dir string, pid uint32, pageSize int64) (*memory, error) {
	name := fmt.Sprintf("pagemap-%d.img", pid)
	msgs, err := decode(dir, name, "PAGEMAP", &pagemap.PagemapEntry{})
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, imgErr(name, "has no header entry")
	}
	head, ok := msgs[0].(*pagemap.PagemapHead)
	if !ok {
		return nil, imgErr(name, "unexpected header entry of type %T", msgs[0])
	}
	m := &memory{name: name, pagesID: head.GetPagesId()}
	maxPages := uint64(math.MaxInt64 / pageSize)
	var off int64
	for i, msg := range msgs[1:] {
		pe, ok := msg.(*pagemap.PagemapEntry)
		if !ok {
			return nil, imgErr(name, "unexpected entry of type %T", msg)
		}
		n := nrPages(pe)
		flags := pe.GetFlags()
		if pe.GetInParent() {
			flags |= peParent
		} else if pe.Flags == nil {
			flags = pePresent
		}
		if n > maxPages-uint64(m.pages) {
			return nil, imgErr(name, "entry %d: %d pages is more than any memory", i+1, n)
		}
		m.runs = append(m.runs, pageRun{vaddr: pe.GetVaddr(), pages: n, flags: flags, off: off})
		m.pages += int64(n)
		if flags&pePresent != 0 {
			off += int64(n) * pageSize
		}
	}
	return m, nil
}

// nrPages is the number of pages of a page map entry. CRIU 4 writes it as a
// 64-bit nr_pages, field 5, and leaves field 2 (once nr_pages, now
// compat_nr_pages) 0; go-criu's message may not know field 5 yet, so it is
// read from the unknown fields then. Fields are taken by number, whatever
// go-criu names them.
func nrPages(pe *pagemap.PagemapEntry) uint64 {
	r := pe.ProtoReflect()
	fields := r.Descriptor().Fields()
	if fd := fields.ByNumber(5); fd != nil && r.Has(fd) && isUint(fd) {
		return r.Get(fd).Uint()
	}
	if v, ok := unknownVarint(r.GetUnknown(), 5); ok {
		return v
	}
	if fd := fields.ByNumber(2); fd != nil && isUint(fd) {
		return r.Get(fd).Uint()
	}
	return 0
}

func isUint(fd protoreflect.FieldDescriptor) bool {
	k := fd.Kind()
	return fd.Cardinality() != protoreflect.Repeated && (k == protoreflect.Uint32Kind || k == protoreflect.Uint64Kind)
}

// unknownVarint returns the last varint field num in raw protobuf bytes.
func unknownVarint(b []byte, num protowire.Number) (uint64, bool) {
	var v uint64
	found := false
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			break
		}
		b = b[l:]
		if n == num && typ == protowire.VarintType {
			x, l := protowire.ConsumeVarint(b)
			if l < 0 {
				break
			}
			v, found = x, true
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			break
		}
		b = b[l:]
	}
	return v, found
}

// find returns the run holding the page at addr, or nil.
func (m *memory) find(addr uint64, pageSize int64) *pageRun {
	for i := range m.runs {
		r := &m.runs[i]
		if addr >= r.vaddr && (addr-r.vaddr)/uint64(pageSize) < r.pages {
			return r
		}
	}
	return nil
}

// read returns the bytes of memory from start to end, read from
// pages-<id>.img page by page, or why it cannot.
func (m *memory) read(open opener, start, end uint64, pageSize int64) ([]byte, string) {
	pagesName := fmt.Sprintf("pages-%d.img", m.pagesID)
	rel := filepath.ToSlash(filepath.Join(format.ImagesDir, pagesName))
	f, err := open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, rel + " is missing"
	} else if err != nil {
		return nil, rel + ": " + pathErr(err).Error()
	}
	defer f.Close()
	buf := make([]byte, end-start)
	ps := uint64(pageSize)
	for addr := start; addr < end; {
		page := addr &^ (ps - 1)
		r := m.find(page, pageSize)
		switch {
		case r == nil:
			return nil, fmt.Sprintf("the page at 0x%x is not in %s", page, m.name)
		case r.flags&pePresent == 0 && r.flags&peParent != 0:
			return nil, "its pages are in the parent checkpoint's images"
		case r.flags&pePresent == 0:
			return nil, "its pages were left for lazy restore"
		}
		next := end
		if page+ps > page && page+ps < end {
			next = page + ps
		}
		off := r.off + int64(addr-r.vaddr)
		if _, err := f.ReadAt(buf[addr-start:next-start], off); err == io.EOF {
			return nil, rel + " is shorter than " + m.name + " says"
		} else if err != nil {
			return nil, rel + ": " + err.Error()
		}
		addr = next
	}
	return buf, ""
}

// opener opens a checkpoint file (slash-separated, relative to the
// checkpoint) for reading at offsets: Checkpoint.OpenAt, which reads
// chunked files too, or dirOpener's plain files.
type opener func(rel string) (store.ReaderAtCloser, error)

// dirOpener opens the files of the checkpoint directory dir.
func dirOpener(dir string) opener {
	return func(rel string) (store.ReaderAtCloser, error) {
		return os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	}
}

// readCommand reads argv (from argStart to argEnd in the process's memory).
func readCommand(open opener, m *memory, argStart, argEnd uint64, pageSize int64) (argv []string, truncated bool, unavailable string) {
	if argEnd <= argStart {
		return nil, false, "the process has no command line"
	}
	end := argEnd
	if end-argStart > maxArgv {
		end, truncated = argStart+maxArgv, true
	}
	b, why := m.read(open, argStart, end, pageSize)
	if why != "" {
		return nil, false, why
	}
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil, false, "the command line is empty"
	}
	return strings.Split(s, "\x00"), truncated, ""
}
