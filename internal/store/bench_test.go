package store

import (
	"crypto/sha256"
	"testing"
)

// The store's intake is CPU-bound (bench/README.md): these say what cutting
// and hashing cost per byte. go test ./internal/store -run - -bench .

// BenchmarkCut: finding the boundaries of a file by content, byte by byte.
func BenchmarkCut(b *testing.B) {
	data := random(9, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		chunksOf(data)
	}
}

// BenchmarkSHA256: naming chunks of 1 MiB.
func BenchmarkSHA256(b *testing.B) {
	data := random(9, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for i := 0; i < len(data); i += 1 << 20 {
			sha256.Sum256(data[i : i+1<<20])
		}
	}
}

// BenchmarkCutPages: finding the boundaries of a page image, page by page.
func BenchmarkCutPages(b *testing.B) {
	data := random(9, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for d := data; len(d) > 0; {
			var c cutter
			d = d[c.nextPage(d, true):]
		}
	}
}
