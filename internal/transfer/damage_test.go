package transfer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"testing"

	"filippo.io/age"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// damageCases are archives of each kind, with what imports them.
func damageCases(t *testing.T) []struct {
	name string
	exp  ExportOptions
	imp  ImportOptions
	step int
} {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return []struct {
		name string
		exp  ExportOptions
		imp  ImportOptions
		step int
	}{
		{"plain", ExportOptions{Compression: None}, ImportOptions{}, 97},
		{"zstd", ExportOptions{Compression: Zstd}, ImportOptions{}, 5},
		{"gzip", ExportOptions{Compression: Gzip}, ImportOptions{}, 5},
		{"age", ExportOptions{Compression: Zstd, Recipients: []age.Recipient{id.Recipient()}}, ImportOptions{Identities: []age.Identity{id}}, 7},
	}
}

// decodeAll returns the tar stream inside an archive, as Import decodes it.
func decodeAll(b []byte, o ImportOptions) ([]byte, error) {
	d, err := decode(bufio.NewReader(bytes.NewReader(b)), o)
	if err != nil {
		return nil, err
	}
	defer d.close()
	return io.ReadAll(d.r)
}

// damageSample is a small checkpoint for the damage tests, which import
// thousands of variants of its archive: files of an odd size, of exactly
// one block, of several blocks, and empty.
func damageSample(t *testing.T) *store.Checkpoint {
	return makeCheckpoint(t, newStore(t), "web", "cp1", map[string][]byte{
		format.ContainerFile: []byte(`{"Name": "/web"}` + "\n"),
		"criu/pagemap-1.img": bytes.Repeat([]byte{1, 2, 3, 4}, 128),
		"criu/pages-1.img":   bytes.Repeat([]byte("memory "), 300),
		"criu/empty.img":     nil,
	})
}

// offsets returns every step-th offset of archive b, and for a plain
// archive those of the fields of every tar header block: name, mode, size,
// mtime, checksum (every byte), type, magic, and the last byte.
func offsets(b []byte, step int, plain bool) []int {
	set := map[int]bool{}
	for i := 0; i < len(b); i += step {
		set[i] = true
	}
	for blk := 0; plain && blk+blockSize <= len(b); blk += blockSize {
		if string(b[blk+257:blk+263]) != "ustar\x00" {
			continue
		}
		for _, o := range []int{0, 99, 100, 107, 124, 135, 136, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 257, 263, 345, 511} {
			set[blk+o] = true
		}
	}
	var out []int
	for i := range set {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// Any change to a byte of an archive fails the import and writes nothing,
// unless the archive decodes to the very same tar stream (some bits of
// gzip and zstd headers, and of deflate streams, change nothing), in which
// case the import is the very same checkpoint. Plain archives are checked at
// every 97th byte and at every header field; set CKPT_EXHAUSTIVE=1 to check
// every byte of every archive (minutes).
func TestImportDamaged(t *testing.T) {
	exhaustive := os.Getenv("CKPT_EXHAUSTIVE") != ""
	ck := damageSample(t)
	for _, tc := range damageCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			b := export(t, ck, tc.exp)
			orig, err := decodeAll(b, tc.imp)
			if err != nil {
				t.Fatal(err)
			}
			step := tc.step
			if exhaustive {
				step = 1
			}
			st := newStore(t)
			refused, same := 0, 0
			for _, off := range offsets(b, step, tc.name == "plain") {
				for _, x := range []byte{0x01, 0x20, 0x80, 0xff} {
					d := bytes.Clone(b)
					d[off] ^= x
					got, _, err := importBytes(st, d, tc.imp)
					if err == nil {
						if dec, derr := decodeAll(d, tc.imp); derr == nil && bytes.Equal(dec, orig) {
							sameCheckpoint(t, ck, got)
							if err := os.RemoveAll(got.Dir); err != nil {
								t.Fatal(err)
							}
							same++
							continue
						}
						t.Fatalf("byte %d of %d ^ %#x: imported", off, len(b), x)
					}
					// A change to an age header can also make the key unfit.
					for _, kind := range []error{ErrDamaged, ErrTruncated, ErrInvalid, ErrUnsafe, ErrNotExport, ErrNewer, ErrNoIdentityMatch} {
						if errors.Is(err, kind) {
							refused++
							break
						}
						if kind == ErrNoIdentityMatch {
							t.Errorf("byte %d ^ %#x: unexpected error %v", off, x, err)
						}
					}
					assertNothingImported(t, st)
				}
			}
			t.Logf("%d bytes: %d changes refused, %d changed nothing", len(b), refused, same)
			if tc.name == "plain" && same != 0 {
				t.Errorf("%d changes to a plain archive were accepted", same)
			}
		})
	}
}

// An archive cut short anywhere fails the import and writes nothing.
func TestImportTruncated(t *testing.T) {
	exhaustive := os.Getenv("CKPT_EXHAUSTIVE") != ""
	ck := damageSample(t)
	for _, tc := range damageCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			b := export(t, ck, tc.exp)
			st := newStore(t)
			step := tc.step
			if exhaustive {
				step = 1
			}
			lengths := offsets(b, step, false)
			// Lengths in the last two blocks, the end-of-archive marker, and
			// at its edges.
			for n := max(len(b)-2*blockSize-1, 0); n < len(b); n += 13 {
				lengths = append(lengths, n)
			}
			for _, back := range []int{2*blockSize + 1, 2 * blockSize, 2*blockSize - 1, blockSize + 1, blockSize, blockSize - 1, 1} {
				lengths = append(lengths, max(len(b)-back, 0))
			}
			kinds := map[string]int{}
			for _, n := range lengths {
				_, _, err := importBytes(st, b[:n], tc.imp)
				switch {
				case err == nil:
					t.Fatalf("%d of %d bytes: imported", n, len(b))
				case errors.Is(err, ErrTruncated):
					kinds["truncated"]++
				case (n < len(armorMagic) || n < blockSize && tc.name == "plain") && errors.Is(err, ErrNotExport):
					kinds["not an export"]++ // too short to tell
				case tc.name == "age" && errors.Is(err, ErrDamaged):
					kinds["damaged"]++ // age cannot tell a cut from damage
				default:
					t.Fatalf("%d of %d bytes: %v", n, len(b), err)
				}
				assertNothingImported(t, st)
			}
			t.Logf("%d bytes: %v", len(b), kinds)
		})
	}
}

// Bytes after the end of a plain tar are ignored; after a compressed or
// encrypted stream they are refused, as the stream's end is checked.
func TestImportTrailingBytes(t *testing.T) {
	ck := sample(t)
	for _, tc := range damageCases(t) {
		b := append(export(t, ck, tc.exp), []byte("trailing garbage")...)
		st := newStore(t)
		got, _, err := importBytes(st, b, tc.imp)
		if tc.name == "plain" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else {
				sameCheckpoint(t, ck, got)
			}
			continue
		}
		wantRefused(t, err, ErrDamaged)
		assertNothingImported(t, st)
	}
}

func ExampleImport_errors() {
	fmt.Println(refuse(ErrTruncated, "it ends inside entry %q", "criu/pages-1.img"))
	fmt.Println(refuse(ErrDamaged, "entry %q: sha256 mismatch", "criu/pages-1.img"))
	// Output:
	// the archive is truncated: it ends inside entry "criu/pages-1.img"
	// the archive is damaged: entry "criu/pages-1.img": sha256 mismatch
}
