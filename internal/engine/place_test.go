package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSymlinkTree: the links resolve to the store's files wherever the
// directory holding them is moved (containerd unpacks them into a
// temporary directory of its own), and the leaked directory of links that
// containerd leaves is recognised and removed, while another is kept.
func TestSymlinkTree(t *testing.T) {
	root := t.TempDir()
	images := filepath.Join(root, "store", "images")
	must(t, os.MkdirAll(images, 0o700))
	must(t, os.WriteFile(filepath.Join(images, "pages-1.img"), []byte("pages"), 0o600))
	must(t, os.WriteFile(filepath.Join(images, "core-1.img"), []byte("core"), 0o600))

	placed := filepath.Join(root, "engine", "checkpoints", "ckpt-1")
	must(t, os.MkdirAll(filepath.Dir(placed), 0o700))
	must(t, symlinkTree(images, placed))
	tmp := t.TempDir()
	for _, dst := range []string{placed, filepath.Join(tmp, "ctrd-checkpoint1"), filepath.Join(tmp, "ctrd-checkpoint2")} {
		if dst != placed {
			must(t, os.MkdirAll(filepath.Dir(dst), 0o700))
			must(t, os.Rename(placed, dst))
			placed = dst
		}
		b, err := os.ReadFile(filepath.Join(dst, "pages-1.img"))
		if err != nil || string(b) != "pages" {
			t.Fatalf("%s: read %q, %v", dst, b, err)
		}
	}

	// A directory of links to other images is not containerd's leak of
	// these.
	other := filepath.Join(tmp, "ctrd-checkpoint3")
	must(t, os.Mkdir(other, 0o700))
	must(t, os.Symlink(linkTo("/elsewhere/core-1.img"), filepath.Join(other, "core-1.img")))
	must(t, os.Symlink(linkTo("/elsewhere/pages-1.img"), filepath.Join(other, "pages-1.img")))
	t.Setenv("TMPDIR", tmp)
	freed, err := RemoveLeakedCopy(images)
	must(t, err)
	if _, err := os.Stat(placed); !errors.Is(err, os.ErrNotExist) || freed != 0 {
		t.Errorf("the leaked links: %v, freed %d", err, freed)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("links to other images were removed: %v", err)
	}
}

func TestLinksNotFollowed(t *testing.T) {
	for _, tt := range []struct {
		err  string
		log  string
		want bool
	}{
		{err: "failed to apply checkpoint", want: true},
		{err: "criu failed", log: "(00.16) 1: No pagemap-1.img image\n(00.17) Error (criu/cr-restore.c:2331): Restoring FAILED.", want: true},
		{err: "criu failed", log: "Error (criu/image.c:427): Unable to open inventory.img: No such file or directory", want: true},
		{err: "criu failed", log: "Error (criu/sk-inet.c:1025): Can't bind inet socket (id 9): Address already in use", want: false},
	} {
		var log []byte
		if tt.log != "" {
			log = []byte(tt.log)
		}
		if got := linksNotFollowed(errors.New(tt.err), log); got != tt.want {
			t.Errorf("linksNotFollowed(%q, %q) = %v, want %v", tt.err, tt.log, got, tt.want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
