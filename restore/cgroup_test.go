package restore

import (
	"strings"
	"testing"
)

func TestContainerCgroup(t *testing.T) {
	id := strings.Repeat("b2", 32)
	for _, tc := range []struct {
		name, driver, parent, want string
	}{
		{"systemd driver", "systemd", "", "/system.slice/docker-" + id + ".scope"},
		{"systemd, a slice of its own", "systemd", "my-web.slice", "/my.slice/my-web.slice/docker-" + id + ".scope"},
		{"systemd, the root slice", "systemd", "-.slice", "/docker-" + id + ".scope"},
		{"cgroupfs driver", "cgroupfs", "", "/docker/" + id},
		{"cgroupfs, a parent of its own", "cgroupfs", "/ci/jobs/", "/ci/jobs/" + id},
		{"systemd, not a slice", "systemd", "/docker", ""},
		{"a parent with a space", "cgroupfs", "/a b", ""},
		{"a parent with a newline", "systemd", "x.slice\nlibdir /tmp", ""},
		{"a parent going up", "cgroupfs", "/a/../..", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := containerCgroup(tc.driver, tc.parent, id)
			if got != tc.want || (err != nil) != (tc.want == "") {
				t.Errorf("containerCgroup(%q, %q) = %q, %v; want %q", tc.driver, tc.parent, got, err, tc.want)
			}
		})
	}
	if _, err := containerCgroup("systemd", "", "abc def"); err == nil {
		t.Error("an id that is not one was taken")
	}
}
