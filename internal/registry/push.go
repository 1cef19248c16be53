package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/progress"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// Push uploads checkpoint ck to the registry reference ref
// (HOST/REPOSITORY[:TAG]; the tag defaults to the checkpoint's name) and
// returns what it sent. It uploads only the blobs the registry lacks,
// checking each against the manifest as it reads it, then the config, and
// the manifest under the tag last: an interrupted push publishes nothing
// under the tag, and the next one sends only what is still missing.
func Push(ctx context.Context, ck *store.Checkpoint, ref string, o Options) (Stats, error) {
	start := time.Now()
	repoRef, tag, err := ParseRef(ref)
	if err != nil {
		return Stats{}, err
	}
	switch {
	case tag == "":
		tag = ck.Name
	case strings.Contains(tag, ":"):
		return Stats{}, hint.New(fmt.Sprintf("%s names a digest: a push needs a tag", ref), "give HOST/REPOSITORY[:TAG]")
	}
	repo, err := repository(repoRef, o)
	if err != nil {
		return Stats{}, err
	}
	host := repo.Reference.Registry
	raw, err := ck.RawManifest()
	if err != nil {
		return Stats{}, err
	}
	var seal *sealer
	var key []byte
	if o.Encrypt != nil {
		k, err := dataKey(repoRef, o.Encrypt)
		if err != nil {
			return Stats{}, err
		}
		if key, err = keyBlob(k, o.Encrypt); err != nil {
			return Stats{}, err
		}
		if seal, err = newSealer(k, KeyMediaTypeV2); err != nil {
			return Stats{}, err
		}
	}

	bs := blobs(ck.Manifest)
	layers := make([]ocispec.Descriptor, len(bs))
	// Files with the same bytes are one blob, sent once (chunks are
	// distinct already).
	first := map[digest.Digest]int{}
	var send []int
	for i, b := range bs {
		if _, ok := first[b.desc.Digest]; !ok {
			first[b.desc.Digest] = i
			send = append(send, i)
		}
	}
	st := Stats{Blobs: len(send)}
	for _, i := range send {
		st.Bytes += bs[i].desc.Size
	}
	var sent, skipped, skippedBytes, done atomic.Int64
	stop := ticker(o.Progress, func() progress.Event {
		return progress.Event{Container: ck.Container, Phase: "push", Bytes: sent.Load(),
			Message: fmt.Sprintf("%d of %d blobs, %s sent (%s), %d the registry had", done.Load(), len(send), units.Bytes(sent.Load()), units.Rate(sent.Load(), time.Since(start)), skipped.Load())}
	})
	defer stop()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(o))
	for _, i := range send {
		b := bs[i]
		g.Go(func() error {
			defer done.Add(1)
			layers[i] = b.desc
			var sealed []byte
			if seal != nil {
				// The blob is known once sealed: its digest is the
				// sealed bytes'.
				clear, err := readBlob(ck, b)
				if err != nil {
					return err
				}
				sealed = seal.seal(clear, b.desc.Digest.Encoded())
				layers[i] = ocispec.Descriptor{MediaType: b.desc.MediaType + EncryptedSuffix, Digest: digest.FromBytes(sealed), Size: int64(len(sealed))}
			}
			ok, err := repo.Exists(gctx, layers[i])
			if err != nil {
				return err
			}
			if ok {
				skipped.Add(1)
				skippedBytes.Add(b.desc.Size)
				return nil
			}
			if sealed != nil {
				return repo.Push(gctx, layers[i], &countReader{r: bytes.NewReader(sealed), n: &sent})
			}
			r, err := openBlob(ck, b)
			if err != nil {
				return err
			}
			defer r.Close()
			return repo.Push(gctx, b.desc, &countReader{r: r, n: &sent})
		})
	}
	err = g.Wait()
	st.Skipped, st.SkippedBytes = int(skipped.Load()), skippedBytes.Load()
	if err != nil {
		return st, pushErr(err, host)
	}
	for i, b := range bs {
		layers[i] = layers[first[b.desc.Digest]]
		if seal == nil {
			layers[i].Annotations = b.desc.Annotations // its own path
		}
	}
	config := configDesc(raw)
	if seal != nil {
		raw = seal.seal(raw, format.ManifestFile)
		config = ocispec.Descriptor{MediaType: ConfigMediaType + EncryptedSuffix, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
		kd := ocispec.Descriptor{MediaType: KeyMediaTypeV2, Digest: digest.FromBytes(key), Size: int64(len(key))}
		if err := pushSmall(ctx, repo, kd, key); err != nil {
			return st, pushErr(err, host)
		}
		layers = append([]ocispec.Descriptor{kd}, layers...)
	}
	if err := pushSmall(ctx, repo, config, raw); err != nil {
		return st, pushErr(err, host)
	}
	om, err := ociManifest(ck.Container, ck.Manifest, config, layers, o.Signature)
	if err != nil {
		return st, err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(om), Size: int64(len(om))}
	if err := repo.PushReference(ctx, desc, bytes.NewReader(om), tag); err != nil {
		return st, pushErr(err, host)
	}
	st.Digest, st.Elapsed = desc.Digest.String(), time.Since(start)
	return st, nil
}

// pushErr is err, explained, and saying that the tag was not touched.
func pushErr(err error, host string) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return explain(fmt.Errorf("push: %w (the tag was not changed; pushing again sends only what is missing)", err), host)
}

// pushSmall pushes content unless the registry has it.
func pushSmall(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, content []byte) error {
	ok, err := repo.Exists(ctx, desc)
	if err != nil || ok {
		return err
	}
	return repo.Push(ctx, desc, bytes.NewReader(content))
}

// readBlob reads blob b of ck whole, checked against the manifest.
func readBlob(ck *store.Checkpoint, b blob) ([]byte, error) {
	if b.desc.Size > maxSealed {
		return nil, hint.New(fmt.Sprintf("%s has %d bytes: an encrypted push takes files of at most %d", b.path, b.desc.Size, maxSealed),
			"checkpoints of store format 3 and later keep large files in chunks: save the container again, or push without encryption")
	}
	r, err := openBlob(ck, b)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// openBlob opens blob b of ck, checked against the manifest as it is read.
func openBlob(ck *store.Checkpoint, b blob) (io.ReadCloser, error) {
	if b.path == "" {
		return ck.OpenChunk(b.chunk)
	}
	f, err := os.Open(ck.Path(b.path))
	if err != nil {
		return nil, err
	}
	return &verifyReader{f: f, h: sha256.New(), want: b.desc.Digest.Encoded(), left: b.desc.Size, name: b.path}, nil
}

// verifyReader reads a file of a checkpoint and fails at its end unless it
// has the size and sha256 the manifest gives.
type verifyReader struct {
	f    *os.File
	h    hash.Hash
	want string
	left int64
	name string
}

func (v *verifyReader) Read(b []byte) (int, error) {
	n, err := v.f.Read(b)
	v.h.Write(b[:n])
	v.left -= int64(n)
	if err == io.EOF && (v.left != 0 || hex.EncodeToString(v.h.Sum(nil)) != v.want) {
		return n, fmt.Errorf("%s does not match the checkpoint's manifest: %w", v.name, store.ErrChunkSum)
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.f.Close() }

// countReader counts what is read through it.
type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func concurrency(o Options) int {
	if o.Concurrency > 0 {
		return o.Concurrency
	}
	return 4
}

// ticker reports event() to r every second until stop is called.
func ticker(r progress.Reporter, event func() progress.Event) (stop func()) {
	if r == nil {
		return func() {}
	}
	t := time.NewTicker(time.Second)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-t.C:
				r.Report(event())
			case <-quit:
				return
			}
		}
	}()
	return func() {
		t.Stop()
		close(quit)
		<-finished
	}
}
