package registry

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/sign"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// saveWith saves checkpoint web:name of st whose memory image is pages,
// signed by the store as a save signs.
func saveWith(t *testing.T, st *store.Store, name string, pages []byte) *store.Checkpoint {
	t.Helper()
	p, err := st.Begin("web", name)
	must(t, err)
	if p.Signer, err = st.Identity(); err != nil {
		t.Fatal(err)
	}
	w, err := p.CreateChunked("criu/pages-1.img")
	must(t, err)
	w.Write(pages)
	must(t, w.Close())
	raw, err := p.Manifest(&format.Manifest{Created: time.Now().UTC().Add(-time.Hour), Mode: format.ModeCold, Container: format.Container{Name: "web"}})
	must(t, err)
	ck, err := p.Commit(raw)
	must(t, err)
	return ck
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pullInto(st *store.Store, ref string) (*store.Checkpoint, error) {
	ck, _, err := Pull(context.Background(), st, ref, PullOptions{Options: Options{PlainHTTP: true},
		Free: func(string) (int64, error) { return 1 << 40, nil }})
	return ck, err
}

// A pull carries the pusher's signature: the checkpoint is trusted where
// the pushing store is, and only there.
func TestPullSignature(t *testing.T) {
	ctx := context.Background()
	reg, host := newMemRegistry(t)
	a, err := store.Open(t.TempDir())
	must(t, err)
	pages := make([]byte, 1<<20)
	rand.Read(pages)
	ck := saveWith(t, a, "cp1", pages)
	sig, err := a.SignatureFor(ck)
	must(t, err)
	if _, err := Push(ctx, ck, host+"/team/web:cp1", Options{PlainHTTP: true, Signature: sig}); err != nil {
		t.Fatal(err)
	}
	var om ocispec.Manifest
	must(t, json.Unmarshal(reg.manifests["cp1"], &om))
	if om.Annotations[AnnotationSignature] != string(sig) {
		t.Fatalf("the OCI manifest carries no signature: %v", om.Annotations)
	}
	aKey, err := a.PublicKey()
	must(t, err)

	b, err := store.Open(t.TempDir())
	must(t, err)
	got, err := pullInto(b, host+"/team/web:cp1")
	must(t, err)
	if got.Trust.Trusted() || got.Trust.Key != sign.Fingerprint(aKey) {
		t.Errorf("pulled into a store that does not trust the pusher: %+v", got.Trust)
	}
	c, err := store.Open(t.TempDir())
	must(t, err)
	must(t, c.AddSigner(sign.Signer{Name: "a", Key: aKey}))
	if got, err = pullInto(c, host+"/team/web:cp1"); err != nil || got.Trust.String() != "signed by a" {
		t.Errorf("pulled into a store that trusts the pusher: %+v, %v", got, err)
	}

	// An altered signature annotation: the checkpoint is still pulled,
	// and not trusted.
	om.Annotations[AnnotationSignature] = strings.Replace(string(sig), "A", "B", 1)
	raw, _ := json.Marshal(om)
	reg.putManifest("forged", raw)
	d, err := store.Open(t.TempDir())
	must(t, err)
	must(t, d.AddSigner(sign.Signer{Name: "a", Key: aKey}))
	if got, err = pullInto(d, host+"/team/web:forged"); err != nil || got.Trust.Trusted() {
		t.Errorf("forged signature: %+v, %v", got, err)
	}
}

// A chunk the store holds is skipped only for an artifact of the same
// trust: an unsigned artifact that lists the digest of a chunk of a local
// checkpoint, without the bytes, gets nothing.
func TestPullChunksOfAnotherTrust(t *testing.T) {
	ctx := context.Background()
	reg, host := newMemRegistry(t)
	st, err := store.Open(t.TempDir())
	must(t, err)
	pages := make([]byte, 1<<20)
	rand.Read(pages)
	saveWith(t, st, "cp1", pages)
	cp2 := saveWith(t, st, "cp2", pages) // the same chunks as cp1
	sig, err := st.SignatureFor(cp2)
	must(t, err)
	for tag, s := range map[string][]byte{"unsigned": nil, "signed": sig} {
		if _, err := Push(ctx, cp2, host+"/team/web:"+tag, Options{PlainHTTP: true, Signature: s}); err != nil {
			t.Fatal(err)
		}
	}
	// The registry lacks the chunk's bytes: whoever pushed the artifact
	// only knew its digest.
	chunk := cp2.Manifest.Files[0].Chunks[0]
	delete(reg.blobs, digest.NewDigestFromEncoded(digest.SHA256, chunk.SHA256))
	lock, err := st.Lock("web", "test")
	must(t, err)
	must(t, st.Remove("web", "cp2"))
	lock.Unlock()

	if _, err := pullInto(st, host+"/team/web:unsigned"); err == nil || !strings.Contains(err.Error(), chunk.SHA256) {
		t.Fatalf("an unsigned artifact got a local checkpoint's chunk: %v", err)
	}
	if _, err := st.Load("web", "cp2"); err == nil {
		t.Fatal("the refused pull left a checkpoint")
	}
	// Signed by the store itself: trusted, as cp1 is; the chunk is
	// skipped.
	got, err := pullInto(st, host+"/team/web:signed")
	must(t, err)
	if !got.Trust.Trusted() || got.Name != "cp2" {
		t.Errorf("signed pull: %s %+v", got.Name, got.Trust)
	}
}
