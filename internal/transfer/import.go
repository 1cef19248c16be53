package transfer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/sign"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// ImportOptions says how to read an archive.
type ImportOptions struct {
	// Identities decrypt archives encrypted to recipients.
	Identities []age.Identity
	// Passphrase decrypts archives encrypted with a passphrase.
	Passphrase string
	// Free returns the bytes free in the store's file system (default:
	// statfs).
	Free func(dir string) (int64, error)
}

// Magic numbers of the layers.
var (
	ageMagic   = []byte("age-encryption.org/v1")
	armorMagic = []byte("-----BEGIN AGE ENCRYPTED FILE-----")
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic  = []byte{0x1f, 0x8b}
)

const (
	// maxScryptWorkFactor caps the scrypt work a passphrase-encrypted
	// archive can ask for: 2^20 takes about 1 GiB and a few seconds (age,
	// and so ckpt export, use 2^18).
	maxScryptWorkFactor = 20
	// maxZstdWindow caps the memory a zstd stream can ask for (ckpt export
	// uses 8 MiB windows).
	maxZstdWindow = 128 << 20
	// maxHeaderRegion caps the tar header blocks (PAX records included)
	// read for one entry.
	maxHeaderRegion = 1 << 20
	blockSize       = 512
)

// paxAllowed are the PAX records ckpt export can write: long or non-ASCII
// paths, sub-second modification times, sizes of 8 GiB and more.
var paxAllowed = map[string]bool{"path": true, "mtime": true, "size": true}

// Import reads an archive written by Export from r and commits the checkpoint
// it holds into st. It writes only into a pending checkpoint of st (see
// store.Begin), under the container's lock, and commits it only when every
// entry was read and matched the manifest; on any error it removes it.
//
// Import refuses, before writing anything, archives that are not exports,
// that come from a newer ckpt, whose manifest does not match its checksums,
// that name a checkpoint the store cannot hold, or one it already has. While
// reading the files it refuses unsafe entries (absolute paths, "..", links,
// devices, FIFOs, directories), entries the manifest does not list or that
// appear twice, sizes and sha256 that differ from the manifest, files that
// are missing, and archives that are damaged or truncated anywhere.
func Import(ctx context.Context, r io.Reader, st *store.Store, o ImportOptions) (ck *store.Checkpoint, stats Stats, err error) {
	src := &srcReader{r: ctxReader{ctx, r}}
	in, err := decode(bufio.NewReaderSize(src, copyBufferSize), o)
	if err != nil {
		if serr := src.error(); serr != nil {
			return nil, stats, serr
		}
		return nil, stats, err
	}
	defer in.close()
	im := &importer{ctx: ctx, st: st, src: src, in: in, tap: &tapReader{r: in.r}, free: o.Free}
	im.tr = tar.NewReader(im.tap)
	ck, err = im.run()
	return ck, im.stats, err
}

// decoded is the tar stream inside an archive's encryption and compression.
type decoded struct {
	r io.Reader
	// layers describes what was around the tar stream ("age and zstd"), or
	// is "" for a plain tar.
	layers string
	close  func()
}

// decode finds the layers around the tar stream from their magic numbers.
func decode(in *bufio.Reader, o ImportOptions) (*decoded, error) {
	d := &decoded{r: in, close: func() {}}
	var layers []string
	magic, _ := in.Peek(len(armorMagic))
	if armored := bytes.HasPrefix(magic, armorMagic); armored || bytes.HasPrefix(magic, ageMagic) {
		var enc io.Reader = in
		if armored {
			enc = armor.NewReader(in)
		}
		r, err := decrypt(enc, o)
		if err != nil {
			return nil, err
		}
		in = bufio.NewReaderSize(r, copyBufferSize)
		d.r = in
		layers = append(layers, "age")
		magic, _ = in.Peek(len(zstdMagic))
	}
	switch {
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(in,
			zstd.WithDecoderConcurrency(1), // no goroutine left reading the input
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, err
		}
		d.r, d.close = zr, zr.Close
		layers = append(layers, "zstd")
	case bytes.HasPrefix(magic, gzipMagic):
		gr, err := gzip.NewReader(in)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, refuse(ErrTruncated, "it ends inside the gzip header")
			}
			return nil, refuse(ErrDamaged, "gzip: %v", err)
		}
		d.r = gr
		layers = append(layers, "gzip")
	}
	d.layers = strings.Join(layers, " and ")
	return d, nil
}

// decrypt decrypts an age stream with the identities and passphrase of o.
func decrypt(r io.Reader, o ImportOptions) (io.Reader, error) {
	ids := append([]age.Identity(nil), o.Identities...)
	if o.Passphrase != "" {
		id, err := age.NewScryptIdentity(o.Passphrase)
		if err != nil {
			return nil, err
		}
		id.SetMaxWorkFactor(maxScryptWorkFactor)
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		// Say how it is encrypted, if the header can be read.
		e := &DecryptError{Err: ErrEncrypted}
		if hdr, err := age.ExtractHeader(r); err == nil {
			e.describe(stanzaTypes(hdr))
		}
		return nil, e
	}
	dr, err := age.Decrypt(r, ids...)
	var noMatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &noMatch):
		e := &DecryptError{Err: &noMatchError{err}, GotPassphrase: o.Passphrase != "", GotIdentities: len(o.Identities) > 0}
		e.describe(noMatch.StanzaTypes)
		return nil, e
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, refuse(ErrTruncated, "it ends inside the age header")
	case err != nil:
		return nil, refuse(ErrDamaged, "age: %v", err)
	}
	return dr, nil
}

// DecryptError is an encrypted archive that Import cannot decrypt with what
// it was given. It wraps ErrEncrypted when it was given nothing to decrypt
// with, ErrNoIdentityMatch (and age's error) otherwise, and says what the
// archive is encrypted to, so that the caller can say what to give in its
// own terms (flags, for the command line).
type DecryptError struct {
	Err error
	// Known is whether the archive's age header could be read: only then
	// do Passphrase and Recipients say anything.
	Known bool
	// Passphrase is whether the archive is encrypted with a passphrase.
	Passphrase bool
	// Recipients, otherwise, are the types of the recipients it is
	// encrypted to ("X25519", "ssh-ed25519"), without repeats.
	Recipients []string
	// GotPassphrase and GotIdentities say what Import was given.
	GotPassphrase, GotIdentities bool
}

func (e *DecryptError) Error() string { return e.Err.Error() }
func (e *DecryptError) Unwrap() error { return e.Err }

// describe fills in what an archive whose age header has stanzas of the
// given types is encrypted to.
func (e *DecryptError) describe(types []string) {
	e.Known = true
	for _, t := range types {
		if t == "scrypt" {
			e.Passphrase, e.Recipients = true, nil
			return
		}
		if !slices.Contains(e.Recipients, t) {
			e.Recipients = append(e.Recipients, t)
		}
	}
}

// noMatchError is ErrNoIdentityMatch wrapping age's error.
type noMatchError struct{ age error }

func (e *noMatchError) Error() string   { return ErrNoIdentityMatch.Error() }
func (e *noMatchError) Unwrap() []error { return []error{ErrNoIdentityMatch, e.age} }

// stanzaTypes returns the recipient types of an age header ("X25519",
// "scrypt", "ssh-ed25519", ...).
func stanzaTypes(hdr []byte) []string {
	var types []string
	for _, line := range strings.Split(string(hdr), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "->" {
			types = append(types, f[1])
		}
	}
	return types
}

// importer reads one archive.
type importer struct {
	ctx context.Context
	st  *store.Store
	src *srcReader
	in  *decoded
	tap *tapReader
	tr  *tar.Reader
	// entries is the number of entries read; last is the name of the last.
	entries int
	last    string
	// inData is true while the data of the last entry is being read.
	inData bool
	// pad is the length of the padding after the previous entry's data.
	pad int64
	// mtime is every entry's modification time.
	mtime time.Time
	stats Stats
	// free measures the store's free space.
	free func(dir string) (int64, error)
}

func (im *importer) run() (*store.Checkpoint, error) {
	hdr, err := im.readHeader()
	if err != nil {
		return nil, err
	}
	raw, m, err := im.readManifest(hdr)
	if err != nil {
		return nil, err
	}

	// Now that the archive says what it holds, write it into the store.
	lock, err := im.st.Lock(hdr.Container, "import")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	final := filepath.Join(im.st.Root, format.ContainersDir, hdr.Container, format.CheckpointsDir, hdr.Checkpoint)
	if _, err := os.Lstat(final); err == nil {
		return nil, hint.New(fmt.Sprintf("checkpoint %s:%s already exists in the store", hdr.Container, hdr.Checkpoint),
			fmt.Sprintf("nothing was imported; to replace it, remove it first with ckpt rm %s:%s", hdr.Container, hdr.Checkpoint))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := im.checkSpace(m); err != nil {
		return nil, err
	}
	p, err := im.st.Begin(hdr.Container, hdr.Checkpoint)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			p.Abort()
		}
	}()
	if err := im.readFiles(p, m); err != nil {
		return nil, err
	}
	p.Imported = true
	if hdr.Signature != "" {
		p.Signature = []byte(hdr.Signature)
	}
	ck, err := p.Commit(raw)
	if err != nil {
		return nil, err
	}
	committed = true
	return ck, nil
}

// readHeader reads and checks the first entry, HeaderFile.
func (im *importer) readHeader() (*header, error) {
	h, err := im.next()
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, refuse(ErrNotExport, "it holds no entries")
	}
	if h.Name != HeaderFile {
		return nil, refuse(ErrNotExport, "its first entry is %q, not %s", h.Name, HeaderFile)
	}
	b, err := im.readSmall(h, maxHeaderSize)
	if err != nil {
		return nil, err
	}
	hdr, err := parseHeader(b)
	if err != nil {
		return nil, refuse(ErrNotExport, "%s: %v", HeaderFile, err)
	}
	if hdr.Kind != Kind {
		return nil, refuse(ErrNotExport, "%s has kind %q, not %q", HeaderFile, hdr.Kind, Kind)
	}
	if hdr.FormatVersion > format.Version {
		return nil, refuse(ErrNewer, "format version %d; this ckpt reads 1 to %d", hdr.FormatVersion, format.Version)
	}
	if hdr.FormatVersion < 1 {
		return nil, refuse(ErrInvalid, "%s: format version %d is not valid", HeaderFile, hdr.FormatVersion)
	}
	if !store.ValidName(hdr.Container) {
		return nil, refuse(ErrInvalid, "%s: %q is not a valid container name", HeaderFile, hdr.Container)
	}
	if !store.ValidName(hdr.Checkpoint) {
		return nil, refuse(ErrInvalid, "%s: %q is not a valid checkpoint name", HeaderFile, hdr.Checkpoint)
	}
	if !isSHA256(hdr.ManifestSHA256) {
		return nil, refuse(ErrInvalid, "%s: manifestSha256 %q is not a sha256", HeaderFile, hdr.ManifestSHA256)
	}
	if len(hdr.Signature) > sign.MaxSignature {
		return nil, refuse(ErrInvalid, "%s: its signature has %d bytes, more than %d", HeaderFile, len(hdr.Signature), sign.MaxSignature)
	}
	im.mtime = entryTime(hdr.Created)
	if err := im.checkTime(h); err != nil {
		return nil, err
	}
	return hdr, nil
}

// parseHeader parses the content of HeaderFile. Unlike json.Unmarshal, it
// takes the names of the fields only as they are written: "Kind" is not
// "kind". Fields it does not know are ignored.
func parseHeader(b []byte) (*header, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	known := []string{"kind", "formatVersion", "container", "checkpoint", "created", "manifestSha256"}
	for _, k := range known {
		if _, ok := fields[k]; !ok {
			return nil, fmt.Errorf("no %q", k)
		}
	}
	known = append(known, "signature") // optional
	for k := range fields {
		for _, kk := range known {
			if k != kk && strings.EqualFold(k, kk) {
				return nil, fmt.Errorf("%q is not %q", k, kk)
			}
		}
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// readManifest reads and checks the manifest and its checksum, the second
// and third entries.
func (im *importer) readManifest(hdr *header) ([]byte, *format.Manifest, error) {
	read := func(name string, limit int64) ([]byte, error) {
		h, err := im.next()
		if err != nil {
			return nil, err
		}
		if h == nil {
			return nil, refuse(ErrInvalid, "it ends before %s", name)
		}
		if h.Name != name {
			return nil, refuse(ErrInvalid, "entry %q where %s should be", h.Name, name)
		}
		if err := im.checkTime(h); err != nil {
			return nil, err
		}
		return im.readSmall(h, limit)
	}
	raw, err := read(format.ManifestFile, maxManifestSize)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(raw)
	hexSum := hex.EncodeToString(sum[:])
	if hexSum != hdr.ManifestSHA256 {
		return nil, nil, refuse(ErrDamaged, "%s does not match the sha256 in %s", format.ManifestFile, HeaderFile)
	}
	sumFile, err := read(format.ManifestSumFile, 2*sha256.Size+1)
	if err != nil {
		return nil, nil, err
	}
	if string(sumFile) != hexSum+"\n" {
		return nil, nil, refuse(ErrDamaged, "%s does not match %s", format.ManifestSumFile, format.ManifestFile)
	}

	m, err := CheckManifest(raw, HeaderFile, hdr.Container, hdr.Checkpoint, hdr.FormatVersion, hdr.Created)
	if me := (*ManifestError)(nil); errors.As(err, &me) {
		if me.Newer {
			return nil, nil, refuse(ErrNewer, "%s", me.Detail)
		}
		return nil, nil, refuse(ErrInvalid, "%s", me.Detail)
	}
	return raw, m, nil
}

// ManifestError is a manifest brought from elsewhere that a store must
// not take: Newer when it is of a newer format than this ckpt reads,
// invalid otherwise.
type ManifestError struct {
	Newer  bool
	Detail string
}

func (e *ManifestError) Error() string { return e.Detail }

// CheckManifest parses and checks the manifest raw of a checkpoint brought
// from another host (by ckpt import or ckpt pull) that says it is
// checkpoint name of container, of format version, created at created (as
// source, what it came with, says): that it agrees with all of that, that its file list is one a store can
// hold, and that it is not dated in the future. Its errors are
// *ManifestError.
func CheckManifest(raw []byte, source, container, name string, version int, created time.Time) (*format.Manifest, error) {
	bad := func(f string, args ...any) error { return &ManifestError{Detail: fmt.Sprintf(f, args...)} }
	var m format.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, bad("%s: %v", format.ManifestFile, err)
	}
	switch {
	case m.FormatVersion > format.Version:
		return nil, &ManifestError{Newer: true, Detail: fmt.Sprintf("its manifest has format version %d; this ckpt reads 1 to %d", m.FormatVersion, format.Version)}
	case m.FormatVersion != version:
		return nil, bad("%s has format version %d, %s says %d", format.ManifestFile, m.FormatVersion, source, version)
	case m.Name != name:
		return nil, bad("%s names checkpoint %q, %s says %q", format.ManifestFile, m.Name, source, name)
	case m.Container.Name != "" && m.Container.Name != container:
		return nil, bad("%s names container %q, %s says %q", format.ManifestFile, m.Container.Name, source, container)
	case !m.Created.Equal(created):
		return nil, bad("%s and %s disagree on the creation time", format.ManifestFile, source)
	}
	if err := checkFiles(m.Files); err != nil {
		return nil, bad("%s: %v", format.ManifestFile, err)
	}
	if err := m.Check(); err != nil {
		return nil, bad("%v", err)
	}
	if now := time.Now(); m.Created.After(now.Add(FutureSlack)) {
		return nil, bad("it is dated %s, in the future (this host's clock says %s): it would pass for the newest checkpoint, and retention would remove the real ones",
			m.Created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return &m, nil
}

// readFiles reads the checkpoint's files into p, checking each against the
// manifest, up to the end of the archive.
func (im *importer) readFiles(p *store.Pending, m *format.Manifest) error {
	want := make(map[string]format.File, len(m.Files))
	for _, f := range m.Files {
		want[f.Path] = f
	}
	seen := make(map[string]bool, len(m.Files))
	buf := make([]byte, copyBufferSize)
	for {
		h, err := im.next()
		if err != nil {
			return err
		}
		if h == nil {
			break
		}
		f, ok := want[h.Name]
		switch {
		case reserved[h.Name] || seen[h.Name]:
			return refuse(ErrInvalid, "entry %q appears twice", h.Name)
		case !ok:
			return refuse(ErrInvalid, "entry %q is not listed in the manifest", h.Name)
		case h.Size != f.Size:
			return refuse(ErrDamaged, "entry %q has %d bytes, the manifest says %d", h.Name, h.Size, f.Size)
		}
		if err := im.checkTime(h); err != nil {
			return err
		}
		seen[h.Name] = true
		if err := im.copyEntry(p, h, f, buf); err != nil {
			return err
		}
		im.stats.Files++
		im.stats.Bytes += f.Size
	}
	for _, f := range m.Files {
		if !seen[f.Path] {
			return refuse(ErrInvalid, "it lacks %q, which the manifest lists", f.Path)
		}
	}
	// Read the rest of a compressed or encrypted stream, so that its own
	// checksums are checked. Bytes after the end of a plain tar are ignored.
	if im.in.layers != "" {
		if _, err := io.CopyBuffer(io.Discard, im.tap, buf); err != nil {
			return im.readErr(err)
		}
	}
	return nil
}

// copyEntry writes the data of entry h, the manifest's file f, into p and
// checks its sha256.
func (im *importer) copyEntry(p *store.Pending, h *tar.Header, f format.File, buf []byte) error {
	create := p.Create
	if f.Chunks != nil {
		// Cut into the chunks the manifest lists, of their sizes; the
		// sha256 of their list must then be the file's.
		create = func(rel string) (*store.File, error) { return p.CreateChunks(rel, f.Chunks) }
	}
	out, err := create(f.Path)
	if err != nil {
		return err
	}
	defer out.Close()
	for {
		if err := im.ctx.Err(); err != nil {
			return err
		}
		n, rerr := im.tr.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return im.readErr(rerr)
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if out.Size() != f.Size {
		return refuse(ErrTruncated, "it ends inside entry %q", h.Name)
	}
	if out.SHA256() != f.SHA256 {
		return refuse(ErrDamaged, "entry %q: sha256 mismatch", h.Name)
	}
	return nil
}

// next returns the next entry, checked to be a safe regular file whose
// header blocks are intact, or nil at the end of the archive.
func (im *importer) next() (*tar.Header, error) {
	im.inData = false
	im.tap.start()
	h, err := im.tr.Next()
	region := im.tap.stop()
	if err == io.EOF {
		switch {
		case im.entries == 0 && len(region) == 0 && im.in.layers == "":
			return nil, refuse(ErrNotExport, "it is empty")
		case int64(len(region)) < im.pad+2*blockSize || !allZero(region):
			// A stream that stops at an entry's end is a truncated one.
			return nil, im.truncated(region, false)
		}
		return nil, nil
	}
	if errors.Is(err, tar.ErrInsecurePath) && h != nil {
		err = nil // refused below, with the name
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && im.tap.error() == nil {
			return nil, im.truncated(region, false)
		}
		return nil, im.readErr(err)
	}
	im.entries++
	im.last = h.Name
	if err := checkEntry(h); err != nil {
		if im.entries == 1 && h.Name != HeaderFile {
			return nil, refuse(ErrNotExport, "its first entry is %q, not %s", h.Name, HeaderFile)
		}
		return nil, err
	}
	if err := checkRegion(region, im.pad); err != nil {
		return nil, refuse(ErrDamaged, "the tar headers of entry %q: %v", h.Name, err)
	}
	for k := range h.PAXRecords {
		if !paxAllowed[k] {
			return nil, refuse(ErrDamaged, "entry %q has a PAX record %q, which ckpt export does not write", h.Name, k)
		}
	}
	im.pad = padding(h.Size)
	im.inData = true
	return h, nil
}

// checkEntry refuses entries that are not regular files at safe paths.
func checkEntry(h *tar.Header) error {
	name := h.Name
	if strings.HasPrefix(name, "/") {
		return refuse(ErrUnsafe, "entry %q has an absolute path", name)
	}
	for _, e := range strings.Split(name, "/") {
		if e == ".." {
			return refuse(ErrUnsafe, "entry %q leaves the checkpoint directory", name)
		}
	}
	switch h.Typeflag {
	case tar.TypeReg:
	case tar.TypeSymlink:
		return refuse(ErrUnsafe, "entry %q is a symbolic link (to %q); ckpt export writes regular files only", name, h.Linkname)
	case tar.TypeLink:
		return refuse(ErrUnsafe, "entry %q is a hard link (to %q); ckpt export writes regular files only", name, h.Linkname)
	case tar.TypeChar:
		return refuse(ErrUnsafe, "entry %q is a character device; ckpt export writes regular files only", name)
	case tar.TypeBlock:
		return refuse(ErrUnsafe, "entry %q is a block device; ckpt export writes regular files only", name)
	case tar.TypeFifo:
		return refuse(ErrUnsafe, "entry %q is a FIFO; ckpt export writes regular files only", name)
	case tar.TypeDir:
		return refuse(ErrUnsafe, "entry %q is a directory; ckpt export writes regular files only", name)
	default:
		return refuse(ErrInvalid, "entry %q has tar type %q; ckpt export writes regular files only", name, h.Typeflag)
	}
	return nil
}

// checkTime checks that entry h has the export's modification time. (It is
// the one header field kept outside the tar header's checksum, in a PAX
// record, so this is how damage to it shows.)
func (im *importer) checkTime(h *tar.Header) error {
	if !h.ModTime.Equal(im.mtime) {
		return refuse(ErrDamaged, "entry %q has modification time %s, not the checkpoint's creation time %s",
			h.Name, h.ModTime.UTC().Format(time.RFC3339Nano), im.mtime.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// readSmall reads all of entry h, at most limit bytes, into memory.
func (im *importer) readSmall(h *tar.Header, limit int64) ([]byte, error) {
	if h.Size > limit {
		return nil, refuse(ErrInvalid, "entry %q has %d bytes, more than the %d it can have", h.Name, h.Size, limit)
	}
	b := make([]byte, h.Size)
	if _, err := io.ReadFull(im.tr, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, im.readErr(err)
	}
	return b, nil
}

// truncated is the error for an archive that ends early: inside the data of
// the last entry, or else in the tar headers that follow it, of which region
// was read.
func (im *importer) truncated(region []byte, inData bool) error {
	switch {
	case im.entries == 0 && im.in.layers == "" && !bytes.Contains(region, []byte(HeaderFile)):
		// Too short for a tar archive, and nothing like an export.
		return refuse(ErrNotExport, notTar)
	case im.entries == 0:
		return refuse(ErrTruncated, "it ends in its first tar header")
	case inData:
		return refuse(ErrTruncated, "it ends inside entry %q", im.last)
	}
	return refuse(ErrTruncated, "it ends after entry %q", im.last)
}

const notTar = "it is not a tar archive, nor compressed with zstd or gzip, nor encrypted with age"

// readErr turns an error reading the tar stream into one that says what is
// wrong with the archive.
func (im *importer) readErr(err error) error {
	if serr := im.src.error(); serr != nil {
		return serr // reading the archive failed, or ctx is done
	}
	if err := im.ctx.Err(); err != nil {
		return err
	}
	terr := im.tap.error()
	switch {
	case errors.Is(err, errRegionTooLarge):
		return refuse(ErrInvalid, "an entry's tar headers take more than %d bytes", maxHeaderRegion)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return im.truncated(nil, im.inData)
	case terr != nil:
		return refuse(ErrDamaged, "decoding %s: %v", im.in.layers, terr)
	case im.entries == 0:
		return refuse(ErrNotExport, notTar+" (%v)", err)
	}
	return refuse(ErrDamaged, "after entry %q: %v", im.last, err)
}

// checkRegion checks the bytes that archive/tar read to find one entry: the
// padding after the previous entry's data (pad bytes), then any PAX extended
// header with its records and padding, then the entry's own header block.
// archive/tar skips padding without looking at it; ckpt export pads with
// zeros, so anything else there is damage.
func checkRegion(b []byte, pad int64) error {
	if int64(len(b)) < pad+blockSize {
		return errors.New("too short")
	}
	if !allZero(b[:pad]) {
		return errors.New("the padding before them is not zero")
	}
	b = b[pad:]
	for {
		if !checksumField(b[148:156]) {
			return errors.New("a header's checksum field is not as ckpt export writes it")
		}
		switch b[156] { // typeflag
		case tar.TypeXHeader:
			size, ok := parseOctal(b[124:136])
			if !ok || size > maxHeaderRegion {
				return errors.New("a PAX header has an invalid size")
			}
			end := blockSize + size + padding(size)
			if int64(len(b)) < end+blockSize {
				return errors.New("a PAX header is cut short")
			}
			if !allZero(b[blockSize+size : end]) {
				return errors.New("the padding of a PAX header is not zero")
			}
			b = b[end:]
		case tar.TypeGNULongName, tar.TypeGNULongLink:
			return errors.New("a GNU long name header, which ckpt export does not write")
		default:
			if len(b) != blockSize {
				return errors.New("unexpected header blocks")
			}
			return nil
		}
	}
}

// checksumField reports whether b, a tar header's checksum field, is six
// octal digits, a NUL and a space, as archive/tar writes it. archive/tar
// reads only up to the NUL, and the checksum does not cover its own field, so
// this is how damage to the rest shows.
func checksumField(b []byte) bool {
	for _, c := range b[:6] {
		if c < '0' || c > '7' {
			return false
		}
	}
	return b[6] == 0 && b[7] == ' '
}

// parseOctal parses a tar header's octal number field.
func parseOctal(b []byte) (int64, bool) {
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, true
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '7' || n > 1<<40 {
			return 0, false
		}
		n = n*8 + int64(c-'0')
	}
	return n, true
}

// padding is the number of bytes that follow n bytes of data in a tar
// archive, to the next block.
func padding(n int64) int64 { return -n & (blockSize - 1) }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func isSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && strings.ToLower(s) == s
}

// srcReader records the first error of the reader the archive comes from:
// an I/O error or the context's, which are not the archive's fault.
type srcReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

func (s *srcReader) error() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

var errRegionTooLarge = errors.New("tar headers too large")

// tapReader is the tar stream as archive/tar reads it. It records the first
// error of the stream other than io.EOF (damage found by a decompressor or
// decryption) and, between start and stop, keeps a copy of what it reads
// (the header blocks of one entry, for checkRegion).
type tapReader struct {
	r       io.Reader
	tapping bool
	buf     []byte
	err     error
}

func (t *tapReader) Read(p []byte) (int, error) {
	if t.tapping && len(p) > maxHeaderRegion+4*blockSize-len(t.buf) {
		p = p[:max(maxHeaderRegion+4*blockSize-len(t.buf), 0)]
		if len(p) == 0 {
			return 0, errRegionTooLarge
		}
	}
	n, err := t.r.Read(p)
	if t.tapping {
		t.buf = append(t.buf, p[:n]...)
	}
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

func (t *tapReader) start() { t.tapping, t.buf = true, t.buf[:0] }

func (t *tapReader) stop() []byte { t.tapping = false; return t.buf }

func (t *tapReader) error() error { return t.err }

// FutureSlack is how far in the future an imported checkpoint may be dated:
// the clocks of two hosts differ a little.
const FutureSlack = 10 * time.Minute

// checkSpace refuses an import whose files, as the manifest declares them,
// do not fit in the store (with save's margin), before anything is written.
// The sizes are added with checks: sizes that wrap around would fit in any
// free space.
func (im *importer) checkSpace(m *format.Manifest) error {
	sizes := make([]int64, len(m.Files))
	for i, f := range m.Files {
		sizes[i] = f.Size
	}
	need, err := preflight.SumSizes(sizes...)
	if err != nil {
		return refuse(ErrInvalid, "%s: its files' sizes: %v", format.ManifestFile, err)
	}
	return (preflight.Host{Free: im.free}).Space(im.st.Root, m.Container.Name, need)
}
