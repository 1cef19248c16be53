package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/progress"
	"github.com/ckpt-dev/ckpt/internal/sign"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/transfer"
	"github.com/ckpt-dev/ckpt/internal/units"
)

// Kinds of references Pull refuses; test with errors.Is.
var (
	// ErrNotCheckpoint is a reference to something else than a checkpoint
	// pushed by ckpt push (a container image, another artifact).
	ErrNotCheckpoint = errors.New("not a ckpt checkpoint")
	// ErrNewer is a checkpoint of a newer format than this ckpt reads.
	ErrNewer = errors.New("the checkpoint was pushed by a newer ckpt")
	// ErrInvalid is a checkpoint whose manifests do not agree with each
	// other or with the layout, or whose blobs are not what they list.
	ErrInvalid = errors.New("the checkpoint in the registry is invalid")
)

var pullHints = map[error]string{
	ErrNotCheckpoint: "ckpt pull reads what ckpt push writes; nothing was pulled",
	ErrNewer:         "nothing was pulled; pull it with a ckpt at least as new as the one that pushed it",
	ErrInvalid:       "nothing was pulled; ckpt push never writes such checkpoints: it was made or altered by something else, or damaged in the registry",
}

func refuse(kind error, f string, args ...any) error {
	return hint.Wrap(fmt.Errorf("%w: %s", kind, fmt.Sprintf(f, args...)), pullHints[kind])
}

// Limits on what Pull holds in memory.
const (
	maxOCIManifest = 64 << 20
	maxConfig      = 64 << 20
)

// PullOptions adds to Options what Pull needs.
type PullOptions struct {
	Options
	// Free returns the bytes free in the store's file system (default:
	// statfs).
	Free func(dir string) (int64, error)
}

// Pull brings the checkpoint at the registry reference ref (with a tag or
// a digest) into st, under the container and checkpoint names it was
// pushed with, and returns it. It fetches only the chunks the store lacks
// and checks every blob against the manifest before it is stored, and the
// manifest itself as ckpt import does; the checkpoint is marked imported,
// with the signature the artifact carries (AnnotationSignature), so that it
// comes back whole only when a key the store trusts signed it
// (store.Trust). Nothing is added unless all of it arrived and matched. When
// the store has the very same checkpoint already, Pull returns it and
// fetches nothing more.
func Pull(ctx context.Context, st *store.Store, ref string, o PullOptions) (*store.Checkpoint, Stats, error) {
	start := time.Now()
	var stats Stats
	repoRef, tag, err := ParseRef(ref)
	if err != nil {
		return nil, stats, err
	}
	if tag == "" {
		return nil, stats, hint.New(fmt.Sprintf("%s names no tag or digest", ref), "give HOST/REPOSITORY:TAG or HOST/REPOSITORY@sha256:...; ckpt push tags with the checkpoint's name unless told otherwise")
	}
	repo, err := repository(repoRef, o.Options)
	if err != nil {
		return nil, stats, err
	}
	host := repo.Reference.Registry
	fail := func(err error) (*store.Checkpoint, Stats, error) {
		if errors.Is(err, errdef.ErrNotFound) {
			err = hint.Wrap(err, "ckpt push REF puts it there; check the repository and the tag")
		}
		return nil, stats, explain(err, host)
	}

	desc, rc, err := repo.FetchReference(ctx, tag)
	if err != nil {
		return fail(err)
	}
	omRaw, err := readAll(rc, desc, maxOCIManifest)
	if err != nil {
		return fail(err)
	}
	if d, err := digest.Parse(tag); err == nil && d != desc.Digest {
		return fail(refuse(ErrInvalid, "the registry answered %s with %s", d, desc.Digest))
	}
	var om ocispec.Manifest
	if err := json.Unmarshal(omRaw, &om); err != nil {
		return fail(refuse(ErrNotCheckpoint, "its manifest: %v", err))
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return fail(refuse(ErrNotCheckpoint, "it is a %s, not an OCI image manifest", desc.MediaType))
	}
	n, err := checkOCI(&om)
	if err != nil {
		return fail(refuse(ErrNotCheckpoint, "%v", err))
	}
	if n.version > format.Version {
		return fail(refuse(ErrNewer, "format version %d; this ckpt reads 1 to %d", n.version, format.Version))
	}
	if !store.ValidName(n.container) || !store.ValidName(n.checkpoint) {
		return fail(refuse(ErrInvalid, "it names checkpoint %q:%q, which a store cannot hold", n.container, n.checkpoint))
	}
	if om.Config.Size > maxConfig {
		return fail(refuse(ErrInvalid, "its config has %d bytes, more than %d", om.Config.Size, maxConfig))
	}
	encrypted := om.Config.MediaType == ConfigMediaType+EncryptedSuffix
	var seal *sealer
	if encrypted {
		if len(om.Layers) == 0 || keyVersion(om.Layers[0].MediaType) == 0 || om.Layers[0].Size > maxKeyBlob {
			return fail(refuse(ErrInvalid, "it is encrypted, and its first layer is not a data key of at most %d bytes", maxKeyBlob))
		}
		kb, err := fetchAll(ctx, repo, om.Layers[0], maxKeyBlob)
		if err != nil {
			return fail(err)
		}
		k, err := openKey(kb, o.Decrypt)
		if err != nil {
			return fail(err)
		}
		if seal, err = newSealer(k, om.Layers[0].MediaType); err != nil {
			return fail(err)
		}
	}
	raw, err := fetchAll(ctx, repo, om.Config, maxConfig)
	if err != nil {
		return fail(err)
	}
	if seal != nil {
		if raw, err = seal.open(raw, format.ManifestFile); err != nil {
			return fail(refuse(ErrInvalid, "its config does not open with its data key: %v", err))
		}
	}
	m, err := transfer.CheckManifest(raw, "the OCI manifest", n.container, n.checkpoint, n.version, n.created)
	if me := (*transfer.ManifestError)(nil); errors.As(err, &me) {
		if me.Newer {
			return fail(refuse(ErrNewer, "%s", me.Detail))
		}
		return fail(refuse(ErrInvalid, "%s", me.Detail))
	}
	if err := checkLayers(&om, m, encrypted); err != nil {
		return fail(refuse(ErrInvalid, "%v", err))
	}
	sig := []byte(om.Annotations[AnnotationSignature])
	if len(sig) > sign.MaxSignature {
		return fail(refuse(ErrInvalid, "its signature has %d bytes, more than %d", len(sig), sign.MaxSignature))
	}
	stats.Digest = desc.Digest.String()

	lock, err := st.Lock(n.container, "pull")
	if err != nil {
		return fail(err)
	}
	defer lock.Unlock()
	if ck, err := st.Load(n.container, n.checkpoint); err == nil {
		if have, err := ck.RawManifest(); err == nil && bytes.Equal(have, raw) {
			stats.Elapsed = time.Since(start)
			return ck, stats, nil // the same checkpoint: nothing to pull
		}
		return fail(hint.New(fmt.Sprintf("checkpoint %s:%s already exists in the store, and is another one", n.container, n.checkpoint),
			fmt.Sprintf("nothing was pulled; to replace it, remove it first with ckpt rm %s:%s", n.container, n.checkpoint)))
	} else if _, lerr := os.Lstat(filepath.Join(st.Root, format.ContainersDir, n.container, format.CheckpointsDir, n.checkpoint)); !errors.Is(lerr, fs.ErrNotExist) {
		return fail(err)
	}

	p, err := st.Begin(n.container, n.checkpoint)
	if err != nil {
		return fail(err)
	}
	committed := false
	defer func() {
		if !committed {
			p.Abort()
		}
	}()
	// A chunk the store holds is skipped only when a checkpoint of the
	// same trust lists it; any other is fetched and compared, so that the
	// artifact proves it has the bytes (store.ChunksHeldFor).
	held, err := st.ChunksHeldFor(st.CheckSignature(raw, sig))
	if err != nil {
		return fail(err)
	}
	bs := blobs(m)
	stats.Blobs = len(bs)
	var need []blob
	var all, needSizes []int64
	for i, b := range bs {
		if encrypted {
			b.sealed = &om.Layers[i+1]
		}
		all = append(all, b.desc.Size)
		if b.path == "" && held[b.chunk.SHA256] {
			have, err := p.HasChunk(b.chunk)
			if err != nil {
				return fail(err)
			}
			if have {
				stats.Skipped++
				stats.SkippedBytes += b.desc.Size
				continue
			}
		}
		need = append(need, b)
		needSizes = append(needSizes, b.desc.Size)
	}
	if stats.Bytes, err = preflight.SumSizes(all...); err != nil {
		return fail(refuse(ErrInvalid, "its blobs: %v", err))
	}
	needBytes, err := preflight.SumSizes(needSizes...)
	if err != nil {
		return fail(refuse(ErrInvalid, "its blobs: %v", err))
	}
	if err := (preflight.Host{Free: o.Free}).Space(st.Root, n.container, needBytes); err != nil {
		return fail(err)
	}

	var got, done atomic.Int64
	stop := ticker(o.Progress, func() progress.Event {
		return progress.Event{Container: n.container, Phase: "pull", Bytes: got.Load(),
			Message: fmt.Sprintf("%d of %d blobs, %s received (%s), %d the store had", done.Load(), len(need), units.Bytes(got.Load()), units.Rate(got.Load(), time.Since(start)), stats.Skipped)}
	})
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(o.Options))
	for _, b := range need {
		g.Go(func() error {
			defer done.Add(1)
			var cr io.Reader
			if b.sealed != nil {
				sealed, err := fetchAll(gctx, repo, *b.sealed, maxSealed+1<<10)
				if err != nil {
					return fmt.Errorf("blob %s: %w", b.sealed.Digest, err)
				}
				got.Add(int64(len(sealed)))
				clear, err := seal.open(sealed, b.desc.Digest.Encoded())
				if err != nil {
					return refuse(ErrInvalid, "blob %s does not open with its data key as %s: %v", b.sealed.Digest, b.desc.Digest, err)
				}
				cr = bytes.NewReader(clear)
			} else {
				r, err := repo.Fetch(gctx, b.desc)
				if err != nil {
					return fmt.Errorf("blob %s: %w", b.desc.Digest, err)
				}
				defer r.Close()
				cr = &countReader{r: io.LimitReader(r, b.desc.Size+1), n: &got}
			}
			var err error
			if b.path == "" {
				err = p.PutChunk(b.chunk, cr)
			} else {
				err = putFile(p, b, cr)
			}
			if errors.Is(err, store.ErrChunkSize) || errors.Is(err, store.ErrChunkSum) {
				return refuse(ErrInvalid, "blob %s: %v", b.desc.Digest, err)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}
	for _, f := range m.Files {
		switch {
		case f.Chunks != nil:
			err = p.AddChunked(f)
		case f.Size == 0:
			err = putFile(p, blob{path: f.Path, desc: ocispec.Descriptor{Digest: digest.NewDigestFromEncoded(digest.SHA256, f.SHA256)}}, strings.NewReader(""))
		}
		if err != nil {
			return fail(err)
		}
	}
	p.Imported = true
	if len(sig) > 0 {
		p.Signature = sig
	}
	ck, err := p.Commit(raw)
	if err != nil {
		return fail(err)
	}
	committed = true
	stats.Elapsed = time.Since(start)
	return ck, stats, nil
}

// putFile writes blob b, a file, from r into p and checks it.
func putFile(p *store.Pending, b blob, r io.Reader) error {
	f, err := p.Create(b.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(f, r, make([]byte, 1<<20)); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if f.Size() != b.desc.Size || f.SHA256() != b.desc.Digest.Encoded() {
		return fmt.Errorf("%s: %w", b.path, store.ErrChunkSum)
	}
	return nil
}

// fetchAll fetches the blob desc, at most limit bytes, and checks it.
func fetchAll(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size > limit {
		return nil, refuse(ErrInvalid, "%s has %d bytes, more than %d", desc.Digest, desc.Size, limit)
	}
	rc, err := repo.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	return readAll(rc, desc, limit)
}

// readAll reads what desc describes, at most limit bytes, and checks its
// size and digest.
func readAll(rc io.ReadCloser, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	defer rc.Close()
	if desc.Size > limit {
		return nil, refuse(ErrInvalid, "%s has %d bytes, more than %d", desc.Digest, desc.Size, limit)
	}
	b, err := io.ReadAll(io.LimitReader(rc, desc.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != desc.Size || digest.FromBytes(b) != desc.Digest {
		return nil, refuse(ErrInvalid, "%s: what the registry sent does not match its digest", desc.Digest)
	}
	return b, nil
}
