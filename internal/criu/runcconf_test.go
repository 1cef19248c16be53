package criu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Only the lines ckpt sets reach runc.conf: CRIU's parser makes every
// word an option, so a value with a space or a newline (a cgroup path
// from a crafted cgroup.img, say) could add "libdir DIR", and CRIU loads
// the plugins there as root.
func TestCheckRuncOptions(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"cgroup-root /system.slice/docker-" + id + ".scope", true},
		{"cgroup-root /docker/" + id, true},
		{"external net[4026532459]:extRootNetNS", true},
		{"timeout 10", true},
		{"leave-stopped", true},
		{"leave-stopped libdir /tmp", false},
		{"cgroup-root /system.slice/docker-x.scope libdir /tmp/evil", false},
		{"cgroup-root /system.slice\nlibdir /tmp/evil", false},
		{"cgroup-root /a/../../etc", false},
		{"cgroup-root relative", false},
		{"libdir /tmp/evil", false},
		{"external net[1]:extRootNetNS\naction-script /tmp/x", false},
		{"timeout 10 ", false},
		{"", false},
	} {
		err := CheckRuncOptions([]string{"timeout 5", tc.line})
		if (err == nil) != tc.ok {
			t.Errorf("CheckRuncOptions(%q) = %v, want ok %v", tc.line, err, tc.ok)
		}
	}

	// WithRuncOptions refuses before it writes anything or runs fn.
	path := filepath.Join(t.TempDir(), "runc.conf")
	ran := false
	err := WithRuncOptions(path, []string{"cgroup-root /x\nlibdir /tmp/evil"}, func() error { ran = true; return nil })
	if err == nil || ran {
		t.Fatalf("WithRuncOptions = %v, ran %v", err, ran)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("runc.conf was written: %v", err)
	}
}
