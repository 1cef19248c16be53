package format

import "fmt"

// Limits of one checkpoint. A checkpoint from elsewhere (an archive, a
// registry artifact) declares its files and chunks in a manifest written by
// whoever made it: each file listed costs the store a file, or a few, and
// each chunk listed costs a file to create at import or pull, a sha256 to
// check at resume, and its bytes written again at resume. CheckFiles refuses
// a manifest past these limits, which the checkpoints ckpt saves stay far
// below in practice.
const (
	// MaxFiles is the most files a checkpoint lists. A checkpoint has the
	// CRIU images, about ten per process and one more per thread, one
	// archive per volume, the layer's and a few JSON documents: a
	// container of a thousand processes has some ten thousand files.
	// 100,000 leaves ten times that, and bounds what a manifest's file
	// list costs to check and to import.
	MaxFiles = 100_000

	// MaxCheckpointChunks is the most chunks a checkpoint lists in all,
	// its files together (MaxChunks bounds them per file). Chunks are
	// about 1 MiB on average, so 1<<22 of them are some 4 TiB of memory,
	// volumes and layer; a tree cut the most finely, files of 256 KiB
	// (EntryCut) each between small ones, two chunks a file, still holds
	// 512 GiB. Past that a manifest would make a store create and check
	// millions of files.
	MaxCheckpointChunks = 1 << 22

	// MaxChunkRepeats is the most times one chunk (one sha256) is listed
	// in a checkpoint, its files together. Real data repeats a chunk:
	// ckpt never cuts a run of zero bytes but at MaxChunk, so a volume
	// holding 64 GiB of zeros (a preallocated file, a disk image) lists
	// the same 4 MiB chunk 16,384 times. 1<<16 repeats are 256 GiB of the
	// same bytes, four times that. The limit bounds what one stored chunk
	// expands to: without it, a manifest listing one chunk 1<<22 times
	// makes a 4 MiB artifact write 16 TiB at resume.
	MaxChunkRepeats = 1 << 16
)

// checkLimits returns an error when files, the file list of one
// checkpoint, has more files than MaxFiles, more chunks than
// MaxCheckpointChunks, or a chunk listed more than MaxChunkRepeats times.
// The counts come first, before anything is allocated for the list.
func checkLimits(files []File) error {
	if len(files) > MaxFiles {
		return fmt.Errorf("%d files; a checkpoint has at most %d", len(files), MaxFiles)
	}
	var chunks int64
	for _, f := range files {
		chunks += int64(len(f.Chunks))
	}
	if chunks > MaxCheckpointChunks {
		return fmt.Errorf("%d chunks; a checkpoint has at most %d", chunks, MaxCheckpointChunks)
	}
	if chunks <= MaxChunkRepeats {
		// No chunk can be listed more times than there are chunks.
		return nil
	}
	repeats := make(map[string]int32)
	for _, f := range files {
		for i, c := range f.Chunks {
			n := repeats[c.SHA256] + 1
			if n > MaxChunkRepeats {
				return fmt.Errorf("file %q: chunk %d (%.12s) is listed more than %d times in the checkpoint", f.Path, i, c.SHA256, MaxChunkRepeats)
			}
			repeats[c.SHA256] = n
		}
	}
	return nil
}
