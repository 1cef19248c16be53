package registry

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ckpt-dev/ckpt/internal/format"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct{ in, repo, tag, err string }{
		{"127.0.0.1:5000/team/web:before", "127.0.0.1:5000/team/web", "before", ""},
		{"registry.example/web", "registry.example/web", "", ""},
		{"team/web:v1", "registry-1.docker.io/team/web", "v1", ""},
		{"localhost:5000/web@sha256:" + strings.Repeat("a", 64), "localhost:5000/web", "sha256:" + strings.Repeat("a", 64), ""},
		{"Bad/Upper", "", "", "not a registry reference"},
		{"", "", "", "not a registry reference"},
	} {
		repo, tag, err := ParseRef(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || repo != tc.repo || tag != tc.tag {
			t.Errorf("%q: %q %q %v, want %q %q", tc.in, repo, tag, err, tc.repo, tc.tag)
		}
	}
}

func sum(c byte) string { return strings.Repeat(string(c), 64) }

// testManifest has a plain file, an empty one, and two chunked files that
// share a chunk.
func testManifest() *format.Manifest {
	a, b, c := format.Chunk{SHA256: sum('a'), Size: 10}, format.Chunk{SHA256: sum('b'), Size: 20}, format.Chunk{SHA256: sum('c'), Size: 30}
	return &format.Manifest{FormatVersion: 3, Name: "cp", Created: time.Unix(1e9, 0).UTC(), Files: []format.File{
		{Path: "config.json", Size: 5, SHA256: sum('1')},
		{Path: "empty", Size: 0, SHA256: sum('2')},
		{Path: "images/pages-1.img", Size: 30, SHA256: format.ChunksSHA256([]format.Chunk{a, b}), Chunks: []format.Chunk{a, b}},
		{Path: "layer.tar", Size: 40, SHA256: format.ChunksSHA256([]format.Chunk{b, c}), Chunks: []format.Chunk{b, c}},
	}}
}

func TestBlobs(t *testing.T) {
	bs := blobs(testManifest())
	var got []string
	for _, b := range bs {
		got = append(got, b.desc.MediaType+" "+b.desc.Digest.Encoded()[:1]+" "+b.path)
	}
	want := []string{FileMediaType + " 1 config.json", ChunkMediaType + " a ", ChunkMediaType + " b ", ChunkMediaType + " c "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("blobs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if bs[0].desc.Annotations[ocispec.AnnotationTitle] != "config.json" {
		t.Fatal("a file blob has no title")
	}
}

func TestCheckOCI(t *testing.T) {
	m := testManifest()
	raw := []byte(`{"name":"cp"}`)
	b, err := ociManifest("web", m, configDesc(raw), clearLayers(m), nil)
	if err != nil {
		t.Fatal(err)
	}
	om := parseOCI(t, b)
	n, err := checkOCI(om)
	if err != nil || n.container != "web" || n.checkpoint != "cp" || n.version != 3 || !n.created.Equal(m.Created) {
		t.Fatalf("%+v %v", n, err)
	}
	if err := checkLayers(om, m, false); err != nil {
		t.Fatal(err)
	}
	if om.Config.Digest != configDesc(raw).Digest {
		t.Fatal("the config is not the manifest")
	}

	for _, tc := range []struct {
		name   string
		change func(*ocispec.Manifest)
		err    string
	}{
		{"image", func(o *ocispec.Manifest) { o.Config.MediaType = ocispec.MediaTypeImageConfig }, "it is a container image"},
		{"index", func(o *ocispec.Manifest) { o.MediaType = ocispec.MediaTypeImageIndex }, "not an OCI image manifest"},
		{"no format", func(o *ocispec.Manifest) { delete(o.Annotations, AnnotationFormat) }, AnnotationFormat},
		{"no date", func(o *ocispec.Manifest) { o.Annotations[ocispec.AnnotationCreated] = "yesterday" }, ocispec.AnnotationCreated},
	} {
		om := parseOCI(t, b)
		tc.change(om)
		if _, err := checkOCI(om); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*ocispec.Manifest)
	}{
		{"one less", func(o *ocispec.Manifest) { o.Layers = o.Layers[1:] }},
		{"other size", func(o *ocispec.Manifest) { o.Layers[2].Size++ }},
		{"other order", func(o *ocispec.Manifest) { o.Layers[1], o.Layers[2] = o.Layers[2], o.Layers[1] }},
		{"other type", func(o *ocispec.Manifest) { o.Layers[0].MediaType = ChunkMediaType }},
	} {
		om := parseOCI(t, b)
		tc.change(om)
		if err := checkLayers(om, m, false); err == nil {
			t.Errorf("%s: layers accepted", tc.name)
		}
	}
}

func parseOCI(t *testing.T, b []byte) *ocispec.Manifest {
	t.Helper()
	var om ocispec.Manifest
	if err := json.Unmarshal(b, &om); err != nil {
		t.Fatal(err)
	}
	return &om
}
