package hint

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFirstLine(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("one"), "one"},
		{errors.New("first\nCRIU log:\n  (00.1) Error"), "first"},
		{Wrap(errors.New("cannot pause web"), "wait"), "cannot pause web"},
	} {
		if got := FirstLine(tc.err); got != tc.want {
			t.Errorf("FirstLine(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestDoc(t *testing.T) {
	old := DocDir
	t.Cleanup(func() { DocDir = old })
	DocDir = t.TempDir()
	if got, want := Doc("engines.md"), "docs/engines.md in ckpt's source, https://github.com/ckpt-dev/ckpt"; got != want {
		t.Errorf("without an installed copy: %q, want %q", got, want)
	}
	// The package compresses the larger pages.
	gz := filepath.Join(DocDir, "engines.md.gz")
	if err := os.WriteFile(gz, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Doc("engines.md"); got != gz {
		t.Errorf("with the page compressed: %q, want %q", got, gz)
	}
	plain := filepath.Join(DocDir, "engines.md")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Doc("engines.md"); got != plain {
		t.Errorf("with the page as it is: %q, want %q", got, plain)
	}
}
