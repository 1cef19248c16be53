package store

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// TestCollectManifestErrors: a checkpoint whose manifest is damaged loses
// the chunks only it lists; one whose manifest cannot be read (an I/O
// error: here a directory in its place, EISDIR) stops the collection,
// which names it and removes nothing, not even chunks no one lists.
func TestCollectManifestErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, s *Store, ck *Checkpoint)
		want   string // the collection's error, "" for none
		kept   bool   // cp1's chunks are still there
	}{
		{"whole", func(*testing.T, *Store, *Checkpoint) {}, "", true},
		{"manifest is a directory", func(t *testing.T, _ *Store, ck *Checkpoint) {
			must(t, os.Remove(ck.Path(format.ManifestFile)))
			must(t, os.Mkdir(ck.Path(format.ManifestFile), DirMode))
		}, "checkpoint web:cp1: cannot read its manifest, so no chunk was removed: manifest.json: is a directory", true},
		{"sum file is a directory", func(t *testing.T, _ *Store, ck *Checkpoint) {
			must(t, os.Remove(ck.Path(format.ManifestSumFile)))
			must(t, os.Mkdir(ck.Path(format.ManifestSumFile), DirMode))
		}, "checkpoint web:cp1: cannot read its manifest, so no chunk was removed: manifest.json.sha256: is a directory", true},
		{"checkpoints of another container unreadable", func(t *testing.T, s *Store, _ *Checkpoint) {
			must(t, os.MkdirAll(s.containerDir("db"), DirMode))
			must(t, os.WriteFile(s.checkpointsDir("db"), nil, FileMode))
		}, "cannot list the checkpoints of db, so no chunk was removed", true},
		{"not JSON, its sha256 matching", func(t *testing.T, _ *Store, ck *Checkpoint) {
			writeRawManifest(t, ck.Dir, []byte("{not json\n"))
		}, "", false},
		{"sha256 mismatch", func(t *testing.T, _ *Store, ck *Checkpoint) {
			must(t, os.WriteFile(ck.Path(format.ManifestSumFile), []byte(sum("other")+"\n"), FileMode))
		}, "", false},
		{"missing manifest", func(t *testing.T, _ *Store, ck *Checkpoint) {
			must(t, os.Remove(ck.Path(format.ManifestFile)))
		}, "", false},
		{"missing sum file", func(t *testing.T, _ *Store, ck *Checkpoint) {
			must(t, os.Remove(ck.Path(format.ManifestSumFile)))
		}, "", false},
		// Its sha256 matches: a ckpt committed it, one whose checks may
		// have been others.
		{"refused by this ckpt's checks", func(t *testing.T, _ *Store, ck *Checkpoint) {
			m := *ck.Manifest
			m.Files = append(m.Files, format.File{Path: "../x", Size: 1, SHA256: sum("x")})
			writeManifest(t, ck.Dir, m)
		}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			ck1 := saveChunked(t, s, "cp1", "criu/pages-1.img", random(11, 3<<20))
			ck2 := saveChunked(t, s, "cp2", "criu/pages-1.img", random(12, 3<<20))
			ck3 := saveChunked(t, s, "cp3", "criu/pages-1.img", random(13, 3<<20))
			own1, own2, own3 := ck1.Stored("criu/pages-1.img"), ck2.Stored("criu/pages-1.img"), ck3.Stored("criu/pages-1.img")
			must(t, s.Remove("web", "cp3")) // its chunks are no one's
			_, before := poolBytes(t, s)
			tc.damage(t, s, ck1)

			n, _, busy, err := s.CollectChunks()
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("CollectChunks: err = %v, want %q", err, tc.want)
				}
				if _, after := poolBytes(t, s); n != 0 || after != before {
					t.Errorf("the collection stopped, and removed %d of %d chunks (%d left)", n, before, after)
				}
				return
			}
			if err != nil || busy {
				t.Fatalf("CollectChunks: busy %v, %v", busy, err)
			}
			exist := func(paths []string) (n int) {
				for _, p := range paths {
					if _, err := os.Lstat(p); err == nil {
						n++
					} else if !errors.Is(err, fs.ErrNotExist) {
						t.Fatal(err)
					}
				}
				return n
			}
			if got := exist(own3); got != 0 {
				t.Errorf("%d chunks of the removed checkpoint left", got)
			}
			if got := exist(own2); got != len(own2) {
				t.Errorf("%d of the %d chunks of a whole checkpoint left", got, len(own2))
			}
			want := 0
			if tc.kept {
				want = len(own1)
			}
			if got := exist(own1); got != want {
				t.Errorf("%d of the %d chunks of cp1 left, want %d", got, len(own1), want)
			}
		})
	}
}

// TestZerosCutAtMaxChunk: a run of zero bytes is cut into chunks of
// MaxChunk bytes, all the same, as format.MaxChunkRepeats counts on: the
// gear hash of zero bytes never has the zero bits a boundary needs.
func TestZerosCutAtMaxChunk(t *testing.T) {
	zeros := make([]byte, 3*format.MaxChunk+pageSize)
	for _, tc := range []struct {
		name string
		cut  func([]byte) []int
	}{
		{"bytes", chunksOf},
		{"pages", pageChunksOf},
	} {
		got := tc.cut(zeros)
		want := []int{format.MaxChunk, format.MaxChunk, format.MaxChunk, pageSize}
		if !slices.Equal(got, want) {
			t.Errorf("%s: zeros cut into %v, want %v", tc.name, got, want)
		}
	}
}
