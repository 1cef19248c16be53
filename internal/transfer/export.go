package transfer

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"

	"filippo.io/age"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// ExportOptions says how to write an export.
type ExportOptions struct {
	// Compression is zstd when empty.
	Compression Compression
	// Recipients, when given, are who can decrypt the archive (age X25519,
	// age post-quantum hybrid, or SSH ed25519/RSA keys).
	Recipients []age.Recipient
	// Passphrase, when given, encrypts the archive with a passphrase
	// (scrypt). It does not go with Recipients.
	Passphrase string
	// Signature is the signature of the checkpoint's manifest to send
	// along (store.SignatureFor); nil sends none, and the importer then
	// gets the checkpoint's data only (docs/security.md).
	Signature []byte
}

// scryptWorkFactor, when not 0, replaces age's scrypt work factor (log2 of
// N), so that tests run fast.
var scryptWorkFactor int

// Export writes checkpoint ck to w as one archive (see the package
// documentation). It reads every file once, checking its size and sha256
// against the manifest as it goes: a damaged checkpoint fails the export,
// naming the file. On error, what was written to w is not a valid archive
// (it has no end) and must be discarded.
//
// Export does not lock the container: a checkpoint is never changed once
// complete, and one removed meanwhile fails the export.
func Export(ctx context.Context, w io.Writer, ck *store.Checkpoint, o ExportOptions) (stats Stats, err error) {
	comp, err := ParseCompression(string(o.Compression))
	if err != nil {
		return Stats{}, err
	}
	if len(o.Recipients) > 0 && o.Passphrase != "" {
		return Stats{}, errors.New("export: recipients and a passphrase do not go together")
	}
	rawManifest, m, err := readManifest(ck)
	if err != nil {
		return Stats{}, err
	}
	sum := sha256.Sum256(rawManifest)
	hdr := header{
		Kind: Kind, FormatVersion: m.FormatVersion,
		Container: ck.Container, Checkpoint: ck.Name,
		Created: m.Created, ManifestSHA256: hex.EncodeToString(sum[:]),
		Signature: string(o.Signature),
	}
	hdrJSON, err := json.MarshalIndent(hdr, "", "  ")
	if err != nil {
		return Stats{}, err
	}

	// The layers, from the outside in. Each is closed, inside first, only
	// when everything was written: an export that fails leaves a stream
	// without an end, which Import refuses.
	bw := bufio.NewWriterSize(w, copyBufferSize)
	var out io.Writer = bw
	var closers []io.Closer
	if len(o.Recipients) > 0 || o.Passphrase != "" {
		recipients := o.Recipients
		if o.Passphrase != "" {
			r, err := age.NewScryptRecipient(o.Passphrase)
			if err != nil {
				return Stats{}, err
			}
			if scryptWorkFactor != 0 {
				r.SetWorkFactor(scryptWorkFactor)
			}
			recipients = []age.Recipient{r}
		}
		aw, err := age.Encrypt(out, recipients...)
		if err != nil {
			return Stats{}, fmt.Errorf("%w: %w", ErrCannotEncrypt, err)
		}
		out, closers = aw, append(closers, aw)
	}
	switch comp {
	case Zstd:
		// With a concurrency above 1, blocks are compressed in goroutines
		// while the next ones are read.
		zw, zerr := zstd.NewWriter(out,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
		if zerr != nil {
			return Stats{}, zerr
		}
		// On error, release the encoder's goroutines without ending the
		// frame (err is Export's result).
		defer func() {
			if err != nil {
				zw.Reset(io.Discard)
				zw.Close()
			}
		}()
		out, closers = zw, append(closers, zw)
	case Gzip:
		gw := gzip.NewWriter(out)
		out, closers = gw, append(closers, gw)
	}
	tw := tar.NewWriter(out)
	closers = append(closers, tw)

	entry := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600,
			ModTime: entryTime(m.Created), Format: tar.FormatPAX,
		})
	}
	for _, e := range []struct {
		name string
		data []byte
	}{
		{HeaderFile, append(hdrJSON, '\n')},
		{format.ManifestFile, rawManifest},
		{format.ManifestSumFile, []byte(hdr.ManifestSHA256 + "\n")},
	} {
		if err = entry(e.name, int64(len(e.data))); err != nil {
			return Stats{}, err
		}
		if _, err = tw.Write(e.data); err != nil {
			return Stats{}, err
		}
	}

	buf := make([]byte, copyBufferSize)
	for _, f := range m.Files {
		if err = ctx.Err(); err != nil {
			return stats, err
		}
		if err = entry(f.Path, f.Size); err != nil {
			return stats, err
		}
		if err = copyFile(ctx, tw, ck, f, buf); err != nil {
			return stats, err
		}
		stats.Files++
		stats.Bytes += f.Size
	}
	for i := len(closers) - 1; i >= 0; i-- {
		if err = closers[i].Close(); err != nil {
			return stats, err
		}
	}
	err = bw.Flush()
	return stats, err
}

// readManifest reads ck's manifest as stored, byte for byte, and checks it
// again: what is exported is what is on disk now.
func readManifest(ck *store.Checkpoint) ([]byte, *format.Manifest, error) {
	raw, err := os.ReadFile(ck.Path(format.ManifestFile))
	if err != nil {
		return nil, nil, err
	}
	want, err := os.ReadFile(ck.Path(format.ManifestSumFile))
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != strings.TrimSpace(string(want)) {
		return nil, nil, damagedCheckpoint(ck, "%s: sha256 mismatch", format.ManifestFile)
	}
	var m format.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, damagedCheckpoint(ck, "%s: %v", format.ManifestFile, err)
	}
	if m.FormatVersion < 1 || m.FormatVersion > format.Version {
		return nil, nil, fmt.Errorf("checkpoint %s:%s has format version %d; this ckpt exports 1 to %d", ck.Container, ck.Name, m.FormatVersion, format.Version)
	}
	if m.Name != ck.Name {
		return nil, nil, damagedCheckpoint(ck, "its manifest names it %q", m.Name)
	}
	if m.Container.Name != "" && m.Container.Name != ck.Container {
		return nil, nil, damagedCheckpoint(ck, "its manifest names container %q", m.Container.Name)
	}
	if err := checkFiles(m.Files); err != nil {
		return nil, nil, damagedCheckpoint(ck, "%s: %v", format.ManifestFile, err)
	}
	return raw, &m, nil
}

// copyFile writes the checkpoint file f to w, checking its size and sha256.
func copyFile(ctx context.Context, w io.Writer, ck *store.Checkpoint, f format.File, buf []byte) error {
	file, err := openFile(ck, f)
	if err != nil {
		return err
	}
	defer file.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(ctxReader{ctx, file}, f.Size), buf)
	switch {
	case f.Chunks != nil && (errors.Is(err, os.ErrNotExist) || errors.Is(err, store.ErrChunkSize) || errors.Is(err, store.ErrChunkSum)):
		return damagedCheckpoint(ck, "%s: %v", f.Path, err)
	case err != nil:
		return fmt.Errorf("%s: %w", f.Path, err)
	case n != f.Size:
		return damagedCheckpoint(ck, "%s has %d bytes, the manifest says %d", f.Path, n, f.Size)
	case f.Chunks == nil && hex.EncodeToString(h.Sum(nil)) != f.SHA256:
		// (A chunked file's sha256 is that of its chunk list, which the
		// manifest's check binds; its chunks were checked as read.)
		return damagedCheckpoint(ck, "%s: sha256 mismatch", f.Path)
	}
	return nil
}

// openFile opens the checkpoint file f: its chunks, or the file, which
// must be a regular file of the size the manifest gives.
func openFile(ck *store.Checkpoint, f format.File) (io.ReadCloser, error) {
	if f.Chunks != nil {
		return ck.OpenVerified(f.Path)
	}
	file, err := os.OpenFile(ck.Path(f.Path), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, damagedCheckpoint(ck, "%s is missing", f.Path)
	} else if errors.Is(err, syscall.ELOOP) {
		return nil, damagedCheckpoint(ck, "%s is not a regular file", f.Path)
	} else if err != nil {
		return nil, err
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		file.Close()
		return nil, damagedCheckpoint(ck, "%s is not a regular file", f.Path)
	}
	if st.Size() != f.Size {
		file.Close()
		return nil, damagedCheckpoint(ck, "%s has %d bytes, the manifest says %d", f.Path, st.Size(), f.Size)
	}
	return file, nil
}

func damagedCheckpoint(ck *store.Checkpoint, f string, args ...any) error {
	return hint.Wrap(fmt.Errorf("checkpoint %s:%s is damaged: %s", ck.Container, ck.Name, fmt.Sprintf(f, args...)),
		fmt.Sprintf("nothing was exported; export another checkpoint (ckpt ls %s), or remove this one with ckpt rm %s:%s", ck.Container, ck.Container, ck.Name))
}

// checkFiles checks the file list of a manifest as format.CheckFiles does,
// and that it does not list the archive's own header.
func checkFiles(files []format.File) error {
	for _, f := range files {
		if f.Path == HeaderFile {
			return fmt.Errorf("file %q: a reserved name", f.Path)
		}
	}
	return format.CheckFiles(files)
}
