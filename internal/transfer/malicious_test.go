package transfer

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// tarEntry is one entry of a hand-made archive.
type tarEntry struct {
	hdr  tar.Header
	data []byte
}

// reg is a regular-file entry as Export writes it.
func reg(name string, data []byte) tarEntry {
	return tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o600,
		ModTime: created, Format: tar.FormatPAX}, data}
}

func special(typ byte, name, link string) tarEntry {
	return tarEntry{tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o600, Devmajor: 1, Devminor: 3,
		ModTime: created, Format: tar.FormatPAX}, nil}
}

func buildTar(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// exportEntries returns the entries of ck's export, and its header and
// manifest decoded, for tests to alter and rebuild with buildEntries.
func exportEntries(t testing.TB, ck *store.Checkpoint) (*header, map[string]any, []tarEntry) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(export(t, ck, ExportOptions{Compression: None})))
	var files []tarEntry
	var hdr header
	var m map[string]any
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case HeaderFile:
			err = json.Unmarshal(data, &hdr)
		case format.ManifestFile:
			err = json.Unmarshal(data, &m)
		case format.ManifestSumFile:
		default:
			files = append(files, reg(h.Name, data))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &hdr, m, files
}

// buildEntries returns the entries of an export with header hdr, manifest m
// (its checksums made to match) and then files.
func buildEntries(t testing.TB, hdr *header, m map[string]any, files []tarEntry) []tarEntry {
	t.Helper()
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	h := *hdr
	if h.ManifestSHA256 != "keep" {
		h.ManifestSHA256 = hex.EncodeToString(sum[:])
	}
	hj, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return append([]tarEntry{reg(HeaderFile, hj), reg(format.ManifestFile, raw),
		reg(format.ManifestSumFile, []byte(hex.EncodeToString(sum[:])+"\n"))}, files...)
}

// snapshot lists every path under root.
func snapshot(t testing.TB, root string) map[string]bool {
	t.Helper()
	paths := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths[path] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

func TestImportRefusesMalicious(t *testing.T) {
	ck := sample(t)
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("not to be touched"), 0o644); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewSource(1))
	random := make([]byte, 10000)
	rnd.Read(random)

	// valid returns the parts of a valid export, to spoil.
	valid := func() (*header, map[string]any, []tarEntry) { return exportEntries(t, ck) }
	with := func(f func(h *header, m map[string]any, files []tarEntry) []tarEntry) []byte {
		h, m, files := valid()
		files = f(h, m, files)
		return buildTar(t, buildEntries(t, h, m, files))
	}
	insert := func(e tarEntry) []byte {
		return with(func(_ *header, _ map[string]any, files []tarEntry) []tarEntry {
			return append(files[:2:2], append([]tarEntry{e}, files[2:]...)...)
		})
	}
	setFiles := func(m map[string]any, f func(files []any) []any) {
		m["files"] = f(m["files"].([]any))
	}

	for _, tc := range []struct {
		name    string
		archive []byte
		kind    error
		want    string
	}{
		{"absolute path", insert(reg(outside, []byte("evil"))), ErrUnsafe, `entry "` + outside + `" has an absolute path`},
		{"dot-dot", insert(reg("../escape", []byte("evil"))), ErrUnsafe, `entry "../escape" leaves the checkpoint directory`},
		{"deep dot-dot", insert(reg("criu/../../../../../../escape", []byte("evil"))), ErrUnsafe, `leaves the checkpoint directory`},
		{"symlink", insert(special(tar.TypeSymlink, "criu/link", outside)), ErrUnsafe, `entry "criu/link" is a symbolic link (to "` + outside + `")`},
		{"symlink then through it", with(func(_ *header, _ map[string]any, files []tarEntry) []tarEntry {
			return append([]tarEntry{special(tar.TypeSymlink, "criu", filepath.Dir(outside)), reg("criu/outside", []byte("evil"))}, files...)
		}), ErrUnsafe, `entry "criu" is a symbolic link`},
		{"hard link", insert(special(tar.TypeLink, "criu/hardlink", outside)), ErrUnsafe, `entry "criu/hardlink" is a hard link (to "` + outside + `")`},
		{"character device", insert(special(tar.TypeChar, "criu/null", "")), ErrUnsafe, `entry "criu/null" is a character device`},
		{"block device", insert(special(tar.TypeBlock, "criu/sda", "")), ErrUnsafe, `entry "criu/sda" is a block device`},
		{"fifo", insert(special(tar.TypeFifo, "criu/fifo", "")), ErrUnsafe, `entry "criu/fifo" is a FIFO`},
		{"directory", insert(special(tar.TypeDir, "criu/", "")), ErrUnsafe, `entry "criu/" is a directory`},
		{"global header", insert(tarEntry{tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"comment": "x"}, Format: tar.FormatPAX}, nil}),
			ErrInvalid, `entry "g" has tar type 'g'`},
		{"duplicate", with(func(_ *header, _ map[string]any, files []tarEntry) []tarEntry {
			return append(files, files[1])
		}), ErrInvalid, `entry "criu/descriptors.json" appears twice`},
		{"duplicate header", insert(reg(HeaderFile, []byte("{}"))), ErrInvalid, `entry "ckpt-export.json" appears twice`},
		{"not in the manifest", insert(reg("criu/extra.img", []byte("extra"))), ErrInvalid, `entry "criu/extra.img" is not listed in the manifest`},
		{"size", with(func(_ *header, _ map[string]any, files []tarEntry) []tarEntry {
			files[2] = reg(files[2].hdr.Name, append(files[2].data, "more"...))
			return files
		}), ErrDamaged, `entry "criu/empty.img" has 4 bytes, the manifest says 0`},
		{"content", with(func(_ *header, _ map[string]any, files []tarEntry) []tarEntry {
			files[3].data = []byte("INVENTORY")
			return files
		}), ErrDamaged, `entry "criu/inventory.img": sha256 mismatch`},
		{"missing file", with(func(_ *header, _ map[string]any, files []tarEntry) []tarEntry {
			return files[:len(files)-1]
		}), ErrInvalid, `it lacks "volumes/webdata.tar", which the manifest lists`},
		{"mtime", with(func(_ *header, _ map[string]any, files []tarEntry) []tarEntry {
			files[0].hdr.ModTime = created.Add(1)
			return files
		}), ErrDamaged, `entry "container.json" has modification time 2026-11-27T12:26:19.467972171Z, not the checkpoint's creation time 2026-11-27T12:26:19.46797217Z`},
		{"PAX record", with(func(_ *header, _ map[string]any, files []tarEntry) []tarEntry {
			files[0].hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.x": "y"}
			return files
		}), ErrDamaged, `entry "container.json" has a PAX record "SCHILY.xattr.user.x"`},
		{"GNU long name", with(func(_ *header, m map[string]any, files []tarEntry) []tarEntry {
			long := "criu/" + strings.Repeat("l", 120)
			files[0].hdr.Name, files[0].hdr.Format = long, tar.FormatGNU
			setFiles(m, func(fs []any) []any {
				fs[0].(map[string]any)["path"] = long
				return fs
			})
			return files
		}), ErrDamaged, "a GNU long name header"},
		{"newer header", with(func(h *header, _ map[string]any, files []tarEntry) []tarEntry {
			h.FormatVersion = format.Version + 1
			return files
		}), ErrNewer, fmt.Sprintf("the archive was written by a newer ckpt: format version %d; this ckpt reads 1 to %d", format.Version+1, format.Version)},
		{"newer manifest", with(func(_ *header, m map[string]any, files []tarEntry) []tarEntry {
			m["formatVersion"] = format.Version + 1
			return files
		}), ErrNewer, fmt.Sprintf("the archive was written by a newer ckpt: its manifest has format version %d", format.Version+1)},
		{"other kind", with(func(h *header, _ map[string]any, files []tarEntry) []tarEntry {
			h.Kind = "other"
			return files
		}), ErrNotExport, `not a ckpt export archive: ckpt-export.json has kind "other", not "ckpt-export"`},
		{"header not JSON", buildTar(t, []tarEntry{reg(HeaderFile, []byte("kind: ckpt-export"))}), ErrNotExport, "not a ckpt export archive: ckpt-export.json: invalid character"},
		{"header keys", buildTar(t, []tarEntry{reg(HeaderFile, []byte(`{"Kind": "ckpt-export", "formatVersion": 1, "container": "web", "checkpoint": "cp1", "created": "2026-11-27T12:26:19.46797217Z", "manifestSha256": "00"}`))}),
			ErrNotExport, `not a ckpt export archive: ckpt-export.json: no "kind"`},
		{"manifest first", func() []byte {
			h, m, files := valid()
			e := buildEntries(t, h, m, files)
			e[0], e[1] = e[1], e[0]
			return buildTar(t, e)
		}(), ErrNotExport, `not a ckpt export archive: its first entry is "manifest.json", not ckpt-export.json`},
		{"random tar", buildTar(t, []tarEntry{reg("etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"))}), ErrNotExport, `not a ckpt export archive: its first entry is "etc/passwd", not ckpt-export.json`},
		{"random tar with a dot-dot", buildTar(t, []tarEntry{reg("../etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"))}), ErrNotExport, `its first entry is "../etc/passwd"`},
		{"empty tar", buildTar(t, nil), ErrNotExport, "not a ckpt export archive: it holds no entries"},
		{"random bytes", random, ErrNotExport, "not a ckpt export archive: it is not a tar archive, nor compressed with zstd or gzip, nor encrypted with age"},
		{"random short", random[:100], ErrNotExport, "not a ckpt export archive: it is not a tar archive"},
		{"empty", nil, ErrNotExport, "not a ckpt export archive: it is empty"},
		{"random gzip", append(bytes.Clone(gzipMagic), random...), ErrDamaged, "the archive is damaged: gzip: "},
		{"random zstd", append(bytes.Clone(zstdMagic), random...), ErrDamaged, "the archive is damaged: decoding zstd: "},
		{"random age", append(append(bytes.Clone(ageMagic), '\n'), random...), ErrEncrypted, "the archive is encrypted"},
		{"manifest sha", with(func(h *header, _ map[string]any, files []tarEntry) []tarEntry {
			h.ManifestSHA256 = "keep"
			return files
		}), ErrInvalid, `manifestSha256 "keep" is not a sha256`},
		{"manifest changed", func() []byte {
			h, m, files := valid()
			e := buildEntries(t, h, m, files)
			e[1].data = bytes.Replace(e[1].data, []byte(`"hot"`), []byte(`"HOT"`), 1)
			return buildTar(t, e)
		}(), ErrDamaged, "the archive is damaged: manifest.json does not match the sha256 in ckpt-export.json"},
		{"manifest sum file", func() []byte {
			h, m, files := valid()
			e := buildEntries(t, h, m, files)
			e[2].data = []byte(strings.ToUpper(string(e[2].data)))
			return buildTar(t, e)
		}(), ErrDamaged, "the archive is damaged: manifest.json.sha256 does not match manifest.json"},
		{"volume archive elsewhere", with(func(_ *header, m map[string]any, files []tarEntry) []tarEntry {
			m["volumes"].([]any)[0].(map[string]any)["archive"] = "../../../db/checkpoints/cp1/volumes/dbdata.tar"
			return files
		}), ErrInvalid, `the archive "../../../db/checkpoints/cp1/volumes/dbdata.tar" of volume webdata is not one of its files`},
		{"layer archive elsewhere", with(func(_ *header, m map[string]any, files []tarEntry) []tarEntry {
			m["layer"].(map[string]any)["archive"] = "/etc/shadow"
			return files
		}), ErrInvalid, `the layer's archive "/etc/shadow" is not one of its files`},
		{"dated in the future", func() []byte {
			future := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
			h, m, files := valid()
			h.Created, m["created"] = future, future
			e := buildEntries(t, h, m, files)
			for i := range e {
				e[i].hdr.ModTime = future
			}
			return buildTar(t, e)
		}(), ErrInvalid, "it is dated 2099-01-01T00:00:00Z, in the future"},
		{"manifest path", with(func(_ *header, m map[string]any, files []tarEntry) []tarEntry {
			setFiles(m, func(fs []any) []any {
				fs[0].(map[string]any)["path"] = "../container.json"
				return fs
			})
			files[0].hdr.Name = "../container.json"
			return files
		}), ErrInvalid, `manifest.json: file "../container.json": path leaves the checkpoint directory`},
		{"manifest reserved name", with(func(_ *header, m map[string]any, files []tarEntry) []tarEntry {
			setFiles(m, func(fs []any) []any {
				fs[0].(map[string]any)["path"] = format.ManifestFile
				return fs
			})
			return files
		}), ErrInvalid, `manifest.json: file "manifest.json": a reserved name`},
		{"manifest file and directory", with(func(_ *header, m map[string]any, files []tarEntry) []tarEntry {
			setFiles(m, func(fs []any) []any {
				fs[0].(map[string]any)["path"] = "criu"
				return fs
			})
			return files
		}), ErrInvalid, `"criu" is listed as a file and is a directory of "criu/descriptors.json"`},
		{"container name", with(func(h *header, _ map[string]any, files []tarEntry) []tarEntry {
			h.Container = "../web"
			return files
		}), ErrInvalid, `ckpt-export.json: "../web" is not a valid container name`},
		{"checkpoint name", with(func(h *header, m map[string]any, files []tarEntry) []tarEntry {
			h.Checkpoint, m["name"] = ".tmp-cp1", ".tmp-cp1"
			return files
		}), ErrInvalid, `ckpt-export.json: ".tmp-cp1" is not a valid checkpoint name`},
		{"other container", with(func(h *header, _ map[string]any, files []tarEntry) []tarEntry {
			h.Container = "db"
			return files
		}), ErrInvalid, `manifest.json names container "web", ckpt-export.json says "db"`},
		{"other checkpoint", with(func(h *header, _ map[string]any, files []tarEntry) []tarEntry {
			h.Checkpoint = "cp2"
			return files
		}), ErrInvalid, `manifest.json names checkpoint "cp1", ckpt-export.json says "cp2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			st, err := store.Open(filepath.Join(root, "a", "b", "store"))
			if err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, root)
			_, _, err = importBytes(st, tc.archive, ImportOptions{})
			wantRefused(t, err, tc.kind, tc.want)
			assertNothingImported(t, st)
			// Nothing appeared anywhere but the container's lock and empty
			// checkpoints directory.
			allowed := filepath.Join(st.Root, format.ContainersDir) + "/"
			for path := range snapshot(t, root) {
				if before[path] {
					continue
				}
				rel := strings.TrimPrefix(path, allowed)
				if rel == path || strings.Count(rel, "/") > 1 ||
					(strings.Contains(rel, "/") && !strings.HasSuffix(rel, "/"+format.LockFile) && !strings.HasSuffix(rel, "/"+format.CheckpointsDir)) {
					t.Errorf("import wrote %s", path)
				}
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != "not to be touched" {
				t.Errorf("%s: %q, %v", outside, b, err)
			}
		})
	}
}
