package format

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// chunkSum returns a sha256 of its own for each i.
func chunkSum(i int) string {
	s := sha256.Sum256([]byte(fmt.Sprint(i)))
	return hex.EncodeToString(s[:])
}

// chunkedFile is a valid chunked file at path made of chunks.
func chunkedFile(path string, chunks []Chunk) File {
	var size int64
	for _, c := range chunks {
		size += c.Size
	}
	return File{Path: path, Size: size, SHA256: ChunksSHA256(chunks), Chunks: chunks}
}

// sameChunk is the chunk of sum i, MaxChunk bytes, n times: a run of zero
// bytes as ckpt cuts it.
func sameChunk(i, n int) []Chunk {
	c := Chunk{SHA256: chunkSum(i), Size: MaxChunk}
	chunks := make([]Chunk, n)
	for j := range chunks {
		chunks[j] = c
	}
	return chunks
}

// distinctChunks is n chunks of MaxChunk bytes, each of its own sum.
func distinctChunks(n int) []Chunk {
	chunks := make([]Chunk, n)
	for i := range chunks {
		chunks[i] = Chunk{SHA256: chunkSum(i), Size: MaxChunk}
	}
	return chunks
}

// wholeFiles is n files not in chunks.
func wholeFiles(n int) []File {
	files := make([]File, n)
	for i := range files {
		files[i] = File{Path: fmt.Sprintf("criu/core-%d.img", i), Size: 1, SHA256: chunkSum(i)}
	}
	return files
}

// filesOf is n files at volumes/<i>.tar that share the list chunks.
func filesOf(n int, chunks []Chunk) []File {
	files := make([]File, n)
	f := chunkedFile("", chunks)
	for i := range files {
		files[i] = f
		files[i].Path = fmt.Sprintf("volumes/%d.tar", i)
	}
	return files
}

func TestCheckFilesLimits(t *testing.T) {
	// Every distinct chunk listed once per file: 64 files of 65,536
	// chunks are MaxCheckpointChunks exactly.
	shared := distinctChunks(MaxCheckpointChunks / 64)
	for _, tt := range []struct {
		name  string
		files func() []File
		want  string // "" for none
	}{
		{"most files", func() []File { return wholeFiles(MaxFiles) }, ""},
		{"too many files", func() []File { return wholeFiles(MaxFiles + 1) }, "100001 files; a checkpoint has at most 100000"},
		{"most chunks", func() []File { return filesOf(64, shared) }, ""},
		{"too many chunks", func() []File { return filesOf(65, shared) }, "4259840 chunks; a checkpoint has at most 4194304"},
		// A volume holding 64 GiB of zeros, and memory of zeros beside it.
		{"64 GiB of zeros", func() []File {
			return []File{chunkedFile("volumes/data.tar", sameChunk(0, 16384)), chunkedFile("criu/pages-1.img", sameChunk(0, 1024))}
		}, ""},
		{"most repeats", func() []File { return []File{chunkedFile("volumes/data.tar", sameChunk(0, MaxChunkRepeats))} }, ""},
		{"too many repeats", func() []File { return []File{chunkedFile("volumes/data.tar", sameChunk(0, MaxChunkRepeats+1))} },
			fmt.Sprintf(`file "volumes/data.tar": chunk 65536 (%.12s) is listed more than 65536 times in the checkpoint`, chunkSum(0))},
		{"too many repeats across files", func() []File {
			return []File{
				chunkedFile("volumes/a.tar", sameChunk(0, MaxChunkRepeats/2)),
				chunkedFile("volumes/b.tar", distinctChunks(10)),
				chunkedFile("volumes/c.tar", sameChunk(0, MaxChunkRepeats/2+1)),
			}
		}, `file "volumes/c.tar": chunk 32767 (`},
		{"repeats of two chunks", func() []File {
			return []File{chunkedFile("volumes/a.tar", append(sameChunk(0, MaxChunkRepeats), sameChunk(1, MaxChunkRepeats)...))}
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFiles(tt.files())
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestCheckLimits: a manifest past a limit is refused by Check, which
// import, pull and Load call.
func TestCheckLimits(t *testing.T) {
	m := &Manifest{Files: wholeFiles(MaxFiles + 1)}
	if err := m.Check(); err == nil || !strings.HasPrefix(err.Error(), ManifestFile+": 100001 files") {
		t.Errorf("Check: %v", err)
	}
}
