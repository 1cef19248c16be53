package registry

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// blob is one blob of a checkpoint: a file (path set) or a chunk.
type blob struct {
	desc  ocispec.Descriptor
	path  string // of a file
	chunk format.Chunk
	// sealed is its layer in an encrypted checkpoint.
	sealed *ocispec.Descriptor
}

// blobs lists the blobs of the checkpoint whose manifest is m, in the
// layout's order: the files without chunks (empty ones have no blob: the
// manifest says all there is to say of them), then the distinct chunks.
func blobs(m *format.Manifest) []blob {
	var out []blob
	for _, f := range m.Files {
		if f.Chunks == nil && f.Size > 0 {
			out = append(out, blob{path: f.Path, desc: ocispec.Descriptor{
				MediaType:   FileMediaType,
				Digest:      digest.NewDigestFromEncoded(digest.SHA256, f.SHA256),
				Size:        f.Size,
				Annotations: map[string]string{ocispec.AnnotationTitle: f.Path},
			}})
		}
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		for _, c := range f.Chunks {
			if !seen[c.SHA256] {
				seen[c.SHA256] = true
				out = append(out, blob{chunk: c, desc: ocispec.Descriptor{
					MediaType: ChunkMediaType,
					Digest:    digest.NewDigestFromEncoded(digest.SHA256, c.SHA256),
					Size:      c.Size,
				}})
			}
		}
	}
	return out
}

// configDesc is the descriptor of the config blob, the manifest raw.
func configDesc(raw []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ConfigMediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
}

// ociManifest is the OCI manifest of checkpoint m of container, with
// config and layers as described (clear or encrypted).
func ociManifest(container string, m *format.Manifest, config ocispec.Descriptor, layers []ocispec.Descriptor, sig []byte) ([]byte, error) {
	om := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    layers,
		Annotations: map[string]string{
			AnnotationContainer:       container,
			AnnotationCheckpoint:      m.Name,
			AnnotationFormat:          strconv.Itoa(m.FormatVersion),
			ocispec.AnnotationCreated: m.Created.UTC().Format(time.RFC3339Nano),
		},
	}
	if len(sig) > 0 {
		om.Annotations[AnnotationSignature] = string(sig)
	}
	return json.Marshal(om)
}

// clearLayers are the layers of the clear checkpoint m.
func clearLayers(m *format.Manifest) []ocispec.Descriptor {
	var layers []ocispec.Descriptor
	for _, b := range blobs(m) {
		layers = append(layers, b.desc)
	}
	return layers
}

// named is what an OCI manifest's annotations say of the checkpoint.
type named struct {
	container, checkpoint string
	version               int
	created               time.Time
}

// checkOCI checks that om is a checkpoint's OCI manifest and returns what
// its annotations say.
func checkOCI(om *ocispec.Manifest) (named, error) {
	var n named
	if om.SchemaVersion != 2 || (om.MediaType != "" && om.MediaType != ocispec.MediaTypeImageManifest) {
		return n, fmt.Errorf("its manifest is of media type %q, schema %d, not an OCI image manifest", om.MediaType, om.SchemaVersion)
	}
	if om.Config.MediaType != ConfigMediaType && om.Config.MediaType != ConfigMediaType+EncryptedSuffix {
		what := ""
		switch om.Config.MediaType {
		case ocispec.MediaTypeImageConfig, "application/vnd.docker.container.image.v1+json":
			what = ": it is a container image"
		}
		return n, fmt.Errorf("its config is of media type %q, not %q%s", om.Config.MediaType, ConfigMediaType, what)
	}
	a := om.Annotations
	n.container, n.checkpoint = a[AnnotationContainer], a[AnnotationCheckpoint]
	v, err := strconv.Atoi(a[AnnotationFormat])
	if err != nil {
		return n, fmt.Errorf("annotation %s: %q is not a format version", AnnotationFormat, a[AnnotationFormat])
	}
	n.version = v
	if n.created, err = time.Parse(time.RFC3339Nano, a[ocispec.AnnotationCreated]); err != nil {
		return n, fmt.Errorf("annotation %s: %v", ocispec.AnnotationCreated, err)
	}
	return n, nil
}

// checkLayers checks that the layers of om are exactly the blobs of the
// checkpoint whose manifest is m, in order: as they are, or sealed after
// the data key when encrypted (whose digests are checked as each is
// opened).
func checkLayers(om *ocispec.Manifest, m *format.Manifest, encrypted bool) error {
	want := blobs(m)
	layers := om.Layers
	if encrypted {
		if len(layers) == 0 || keyVersion(layers[0].MediaType) == 0 || layers[0].Size > maxKeyBlob {
			return fmt.Errorf("its first layer is not a data key of at most %d bytes", maxKeyBlob)
		}
		layers = layers[1:]
	}
	if len(layers) != len(want) {
		return fmt.Errorf("it has %d layers, and its checkpoint has %d blobs", len(layers), len(want))
	}
	for i, l := range layers {
		w := want[i].desc
		if encrypted {
			w.MediaType += EncryptedSuffix
			w.Size = sealedSize(w.Size)
			w.Digest = l.Digest
		}
		if l.MediaType != w.MediaType || l.Digest != w.Digest || l.Size != w.Size {
			return fmt.Errorf("layer %d is %s %s (%d bytes), not %s %s (%d bytes) as its checkpoint's manifest says",
				i, l.MediaType, l.Digest, l.Size, w.MediaType, w.Digest, w.Size)
		}
	}
	return nil
}

// maxKeyBlob is the largest data key blob a pull reads (age with a few
// hundred recipients).
const maxKeyBlob = 1 << 20
