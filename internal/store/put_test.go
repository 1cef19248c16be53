package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// A checkpoint that arrives as chunks (ckpt pull): chunks the store has are
// found, others are checked as they are put, and a file is recorded only
// once all its chunks are there; the result reads back whole.
func TestPutChunks(t *testing.T) {
	s := newStore(t)
	data := random(7, 6<<20)
	src := saveChunked(t, s, "src", "criu/pages-1.img", data)
	f := src.Manifest.Files[0]
	other := newStore(t)
	lock, err := other.Lock("web", "test")
	must(t, err)
	defer lock.Unlock()
	p, err := other.Begin("web", "src")
	must(t, err)
	defer p.Abort()
	if err := p.AddChunked(f); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file whose chunks are missing was recorded: %v", err)
	}
	c0 := f.Chunks[0]
	if ok, err := p.HasChunk(c0); ok || err != nil {
		t.Fatalf("HasChunk of a chunk not there: %v %v", ok, err)
	}
	chunk := func(i int) []byte {
		var off int64
		for _, c := range f.Chunks[:i] {
			off += c.Size
		}
		return data[off : off+f.Chunks[i].Size]
	}
	bad := bytes.Clone(chunk(0))
	bad[100] ^= 1
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"flipped", bad, ErrChunkSum},
		{"short", chunk(0)[1:], ErrChunkSize},
		{"long", append(bytes.Clone(chunk(0)), 0), ErrChunkSize},
	} {
		if err := p.PutChunk(c0, bytes.NewReader(tc.b)); !errors.Is(err, tc.want) {
			t.Errorf("%s chunk: %v, want %v", tc.name, err, tc.want)
		}
	}
	if ok, _ := p.HasChunk(c0); ok {
		t.Fatal("a refused chunk is in the store")
	}
	for i, c := range f.Chunks {
		must(t, p.PutChunk(c, bytes.NewReader(chunk(i))))
	}
	must(t, p.PutChunk(c0, bytes.NewReader(chunk(0)))) // twice is harmless
	if ok, err := p.HasChunk(c0); !ok || err != nil {
		t.Fatalf("HasChunk of a chunk put: %v %v", ok, err)
	}
	wrong := f
	wrong.SHA256 = strings.Repeat("0", 64)
	if err := p.AddChunked(wrong); err == nil {
		t.Fatal("a file whose sha256 is not that of its chunk list was recorded")
	}
	must(t, p.AddChunked(f))
	raw, err := src.RawManifest()
	must(t, err)
	ck, err := p.Commit(raw)
	must(t, err)
	must(t, ck.Verify(context.Background()))
	if got := readAll(t, ck, f.Path); got != string(data) {
		t.Fatal("the checkpoint put together from chunks reads other bytes")
	}
	r, err := ck.OpenChunk(c0)
	must(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	must(t, err)
	if !bytes.Equal(b, chunk(0)) {
		t.Fatal("OpenChunk read other bytes")
	}
}
