package engine

import (
	"strings"
	"testing"
)

func TestRestoreBroken(t *testing.T) {
	for _, tc := range []struct {
		version string
		broken  bool
	}{
		{"20.10.24+dfsg1", false},
		{"25.0.5", false},
		{"26.0.0", true},
		{"26.0.1", false},
		{"26.1.5+dfsg1", false},
		{"27.5.1", false},
		{"28.0.0", true},
		{"28.5.2+dfsg2", true},
		{"29.1.0", true},
		{"dev", false},
		{"", false},
	} {
		err := RestoreBrokenIn(tc.version)
		if (err != nil) != tc.broken {
			t.Errorf("%q: %v, want broken=%v", tc.version, err, tc.broken)
		}
		if err != nil && !strings.Contains(err.Error(), "Docker "+tc.version+" cannot start a container from a checkpoint") {
			t.Errorf("%q: %v", tc.version, err)
		}
	}
}
