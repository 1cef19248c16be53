package inspect

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// testdata/store holds a checkpoint ckpt made of internal/testapp (a Go
// HTTP server listening on :8080, holding /tmp/held.txt open and appending
// to /data/history.log on a volume, with one client connected), without
// its memory pages (1 MiB) and without the images inspect does not read.
// testdata/pages-1-page252.bin is the one page of its pages-1.img that holds
// the command line.
const (
	fixtureContainer = "fixture"
	fixtureName      = "20261127T122619Z"
	// argvPage is the index of pages-1-page252.bin in pages-1.img, whose
	// size was pagesSize.
	argvPage  = 252
	pagesSize = 1036288
)

func fixtureDir() string {
	return filepath.Join("testdata", "store", format.ContainersDir, fixtureContainer, format.CheckpointsDir, fixtureName)
}

// loadFixture loads the fixture checkpoint from the test data, or from a
// copy of it in dir when dir is not "".
func loadFixture(t testing.TB, root string) *store.Checkpoint {
	t.Helper()
	if root == "" {
		root = filepath.Join("testdata", "store")
	}
	ck, err := (&store.Store{Root: root}).Load(fixtureContainer, fixtureName)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// copyFixture copies the fixture's store to a temporary directory and
// returns its root.
func copyFixture(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join("testdata", "store")
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(root, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func imagesDir(root string) string {
	return filepath.Join(root, format.ContainersDir, fixtureContainer, format.CheckpointsDir, fixtureName, format.ImagesDir)
}

func TestReadFixture(t *testing.T) {
	ck := loadFixture(t, "")
	r, err := Read(ck)
	if err != nil {
		t.Fatal(err)
	}
	if r.Container != "fixture" || r.Name != fixtureName || r.Mode != "hot" || r.Host.CRIUVersion != "4.2.1" || r.Host.Kernel != "6.18.44-fc-v657" {
		t.Errorf("header: %+v", r)
	}
	if len(r.Processes) != 1 {
		t.Fatalf("%d processes, want 1: %+v", len(r.Processes), r.Processes)
	}
	p := r.Processes[0]
	if p.PID != 1 || p.PPID != 0 || p.Comm != "app" || p.State != "alive" || len(p.Threads) != 4 {
		t.Errorf("process: pid %d ppid %d comm %q state %q threads %v", p.PID, p.PPID, p.Comm, p.State, p.Threads)
	}
	// The memory in the page map is what the manifest counted from the
	// pages image.
	if p.MemoryBytes <= 0 || p.MemoryBytes != ck.Manifest.MemoryBytes || p.MemoryPages*4096 != p.MemoryBytes || r.MemoryBytes != p.MemoryBytes {
		t.Errorf("memory: process %d pages %d bytes, report %d bytes, manifest %d bytes", p.MemoryPages, p.MemoryBytes, r.MemoryBytes, ck.Manifest.MemoryBytes)
	}
	// The pages are not in the test data.
	if p.Command != nil || p.CommandUnavailable != "criu/pages-1.img is missing" {
		t.Errorf("command %q, unavailable %q", p.Command, p.CommandUnavailable)
	}
	files := map[string]File{}
	var listening, established *Socket
	for _, f := range p.Files {
		if f.Path != "" {
			files[f.Path] = f
		}
		if s := f.Socket; s != nil && s.Protocol == "tcp" {
			switch s.State {
			case "listening":
				listening = s
			case "established":
				established = s
			}
		}
	}
	for _, path := range []string{"/tmp/held.txt", "/data/history.log", "/dev/null"} {
		if f, ok := files[path]; !ok || f.Type != "file" {
			t.Errorf("open file %s: %+v (files %+v)", path, f, p.Files)
		}
	}
	if f := p.Files[0]; f.FD != 0 || f.Path != "/dev/null" {
		t.Errorf("fd 0: %+v", f)
	}
	if f := p.Files[1]; f.Type != "pipe" || !strings.HasPrefix(f.Path, "pipe:[") {
		t.Errorf("fd 1: %+v", f)
	}
	if listening == nil || listening.Local != "[::]:8080" || listening.Peer != "" || listening.Family != "ipv6" || listening.Type != "stream" {
		t.Errorf("listening socket: %+v", listening)
	}
	if established == nil || established.Local != "172.17.0.2:8080" || established.Peer != "172.17.0.1:42126" {
		t.Errorf("established socket: %+v", established)
	}
	if len(r.Volumes) != 1 || r.Volumes[0].Name != "fixturedata" || r.Volumes[0].Destination != "/data" || r.Volumes[0].Bytes != 60 {
		t.Errorf("volumes: %+v", r.Volumes)
	}
	if r.Layer.Entries != 3 || len(r.Timings) == 0 || r.Timings[len(r.Timings)-1].Phase != "total" {
		t.Errorf("layer %+v, timings %+v", r.Layer, r.Timings)
	}
	// The JSON document has the fields people and scripts look for.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"comm":"app"`, `"state":"listening"`, `"local":"[::]:8080"`, `"path":"/tmp/held.txt"`, `"criuVersion":"4.2.1"`, `"binds":[]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
}

// The command line comes from the process's memory: only its page is read.
func TestReadCommandLine(t *testing.T) {
	root := copyFixture(t)
	page, err := os.ReadFile(filepath.Join("testdata", "pages-1-page252.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// A sparse pages-1.img of the original's size with only that page.
	f, err := os.Create(filepath.Join(imagesDir(root), "pages-1.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(pagesSize); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(page, argvPage*4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, err := Read(loadFixture(t, root))
	if err != nil {
		t.Fatal(err)
	}
	p := r.Processes[0]
	if len(p.Command) != 1 || p.Command[0] != "/app" || p.CommandUnavailable != "" || p.CommandTruncated {
		t.Errorf("command %q (truncated %v), unavailable %q", p.Command, p.CommandTruncated, p.CommandUnavailable)
	}

	// A pages image shorter than the page map says.
	if err := os.Truncate(filepath.Join(imagesDir(root), "pages-1.img"), argvPage*4096); err != nil {
		t.Fatal(err)
	}
	r, err = Read(loadFixture(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Processes[0]; p.Command != nil || p.CommandUnavailable != "criu/pages-1.img is shorter than pagemap-1.img says" {
		t.Errorf("short pages: command %q, unavailable %q", p.Command, p.CommandUnavailable)
	}
}

func TestReadCold(t *testing.T) {
	ck := loadFixture(t, "")
	m := *ck.Manifest
	m.Mode = format.ModeCold
	ck.Manifest = &m
	ck.Dir = t.TempDir() // no images at all
	r, err := Read(ck)
	if err != nil {
		t.Fatal(err)
	}
	if r.ProcessState != "no process state (cold checkpoint)" || len(r.Processes) != 0 || r.MemoryBytes != 0 {
		t.Errorf("cold: %+v", r)
	}
}

// Damaged images give errors that name them, never a panic.
func TestReadCorrupt(t *testing.T) {
	files, err := os.ReadFile(filepath.Join(fixtureDir(), "criu", "files.img"))
	if err != nil {
		t.Fatal(err)
	}
	pstree, err := os.ReadFile(filepath.Join(fixtureDir(), "criu", "pstree.img"))
	if err != nil {
		t.Fatal(err)
	}
	fdinfo, err := os.ReadFile(filepath.Join(fixtureDir(), "criu", "fdinfo-2.img"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		image string
		data  []byte // nil: remove the image
		want  string
	}{
		{"missing pstree", "pstree.img", nil, "criu/pstree.img: missing from the checkpoint"},
		{"empty pstree", "pstree.img", []byte{}, "criu/pstree.img: truncated: 0 bytes, not even a CRIU image header"},
		{"truncated pstree", "pstree.img", pstree[:len(pstree)-3], "criu/pstree.img: truncated: entry 1 needs 16 bytes, 13 left"},
		{"stray bytes", "pstree.img", append(append([]byte{}, pstree...), 1, 2), "criu/pstree.img: truncated: 2 stray bytes after entry 1"},
		{"wrong kind", "pstree.img", files, "criu/pstree.img: holds a FILES image where a PSTREE image belongs"},
		{"not an image", "pstree.img", []byte("hello, world"), "criu/pstree.img: not a CRIU image: unknown magic"},
		{"no process", "pstree.img", pstree[:8], "criu/pstree.img: holds no process"},
		{"bad entry", "pstree.img", append(append([]byte{}, pstree[:8]...), 2, 0, 0, 0, 0xff, 0xff), "criu/pstree.img: cannot decode: "},
		{"huge entry", "files.img", append(append([]byte{}, files[:8]...), 0xff, 0xff, 0xff, 0xff), "criu/files.img: truncated: entry 1 needs 4294967295 bytes, 0 left"},
		{"missing core", "core-1.img", nil, "criu/core-1.img: missing from the checkpoint"},
		{"missing pagemap", "pagemap-1.img", nil, "criu/pagemap-1.img: missing from the checkpoint"},
		{"truncated fdinfo", "fdinfo-2.img", fdinfo[:9], "criu/fdinfo-2.img: truncated: 1 stray bytes after entry 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := copyFixture(t)
			p := filepath.Join(imagesDir(root), tc.image)
			if tc.data == nil {
				os.Remove(p)
			} else if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Read(loadFixture(t, root))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if Image(err) != "criu/"+tc.image {
				t.Errorf("Image(err) = %q", Image(err))
			}
		})
	}
}

// FuzzRead feeds corrupted pstree.img and files.img images to Read: it must
// return a report or an error naming an image, and never panic.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"pstree.img", "files.img"} {
		b, err := os.ReadFile(filepath.Join(fixtureDir(), "criu", name))
		if err != nil {
			f.Fatal(err)
		}
		isFiles := name == "files.img"
		f.Add(isFiles, b)
		f.Add(isFiles, b[:len(b)/2])
		f.Add(isFiles, b[:8])
		f.Add(isFiles, []byte{})
		flipped := append([]byte{}, b...)
		flipped[len(flipped)-1] ^= 0xff
		f.Add(isFiles, flipped)
	}
	root := copyFixture(f)
	dir := imagesDir(root)
	orig := map[string][]byte{}
	for _, name := range []string{"pstree.img", "files.img"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		orig[name] = b
	}
	ck := loadFixture(f, root)
	f.Fuzz(func(t *testing.T, isFiles bool, data []byte) {
		target, other := "pstree.img", "files.img"
		if isFiles {
			target, other = other, target
		}
		if err := os.WriteFile(filepath.Join(dir, target), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, other), orig[other], 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Read(ck)
		if err != nil {
			img := Image(err)
			if img == "" || !strings.HasPrefix(err.Error(), img+": ") {
				t.Fatalf("error does not name the image: %v", err)
			}
			return
		}
		if r == nil || len(r.Processes) == 0 {
			t.Fatalf("no error and no processes: %+v", r)
		}
		json.NewEncoder(io.Discard).Encode(r)
	})
}
