package engine

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// RemoveLeakedCopy removes the copy of a checkpoint that containerd leaves
// in its temporary directory (/tmp/ctrd-checkpoint*) for every container it
// restores (containerd issue 10166): without this, every resume would leave
// a second copy of the container's memory behind. images is the directory that
// holds the engine's output; only a directory holding exactly the same files
// with the same sizes, whose small files are byte for byte the same, is
// removed, and so is one of symbolic links to them (symlinkTree). It returns
// the number of bytes freed.
func RemoveLeakedCopy(images string) (int64, error) {
	want, err := listFiles(images)
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, d := range LeakDirs() {
		cands, _ := filepath.Glob(filepath.Join(d, LeakPattern))
		for _, c := range cands {
			n := int64(0)
			switch {
			case sameImages(images, want, c):
				for _, f := range want {
					n += f.size
				}
			case !linksTo(images, want, c):
				continue
			}
			if err := os.RemoveAll(c); err != nil {
				return freed, err
			}
			freed += n
		}
	}
	return freed, nil
}

// LeakPattern names containerd's leftover copies inside LeakDirs.
const LeakPattern = "ctrd-checkpoint*"

// LeakDirs are where containerd leaves them: its temporary directory, /tmp
// or $TMPDIR.
func LeakDirs() []string {
	dirs := []string{"/tmp"}
	if t := os.Getenv("TMPDIR"); t != "" && filepath.Clean(t) != "/tmp" {
		dirs = append(dirs, t)
	}
	return dirs
}

type fileInfo struct {
	name string
	size int64
}

func listFiles(dir string) ([]fileInfo, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []fileInfo
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, fileInfo{e.Name(), info.Size()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// sameImages reports whether dir holds the same image files as images.
func sameImages(images string, want []fileInfo, dir string) bool {
	got, err := listFiles(dir)
	if err != nil || len(got) != len(want) {
		return false
	}
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	// Small files (process trees, registers, file tables) tell dumps apart.
	for _, f := range want {
		if f.size > 64<<10 {
			continue
		}
		a, err1 := os.ReadFile(filepath.Join(images, f.name))
		b, err2 := os.ReadFile(filepath.Join(dir, f.name))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			return false
		}
	}
	return true
}

// linksTo reports whether dir holds symbolic links to the image files of
// images, as symlinkTree makes them, and nothing else.
func linksTo(images string, want []fileInfo, dir string) bool {
	abs, err := filepath.Abs(images)
	if err != nil {
		return false
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != len(want) {
		return false
	}
	for i, e := range ents { // both sorted by name
		if e.Name() != want[i].name || e.Type() != fs.ModeSymlink {
			return false
		}
		if t, err := os.Readlink(filepath.Join(dir, e.Name())); err != nil || t != linkTo(filepath.Join(abs, e.Name())) {
			return false
		}
	}
	return true
}
