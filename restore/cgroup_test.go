package restore

import "testing"

func TestCgroupRoot(t *testing.T) {
	const old, new = "aaaa1111", "bbbb2222"
	for _, tc := range []struct {
		name  string
		paths []string
		want  string
	}{
		{"systemd driver", []string{"system.slice/docker-aaaa1111.scope"}, "/system.slice/docker-bbbb2222.scope"},
		{"cgroupfs driver", []string{"docker/aaaa1111"}, "/docker/bbbb2222"},
		{"leading slash", []string{"/docker/aaaa1111"}, "/docker/bbbb2222"},
		{"sub-cgroups inside the container", []string{"system.slice/docker-aaaa1111.scope/init", "system.slice/docker-aaaa1111.scope"}, "/system.slice/docker-bbbb2222.scope"},
		{"only a sub-cgroup recorded", []string{"system.slice/docker-aaaa1111.scope/init.scope"}, "/system.slice/docker-bbbb2222.scope"},
		{"custom parent", []string{"my.slice/my-web.slice/docker-aaaa1111.scope"}, "/my.slice/my-web.slice/docker-bbbb2222.scope"},
		{"named v1 hierarchy beside", []string{"/", "system.slice/docker-aaaa1111.scope"}, "/system.slice/docker-bbbb2222.scope"},
		{"another container's cgroup", []string{"system.slice/docker-cccc3333.scope"}, ""},
		{"nothing", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cgroupRoot(tc.paths, old, new); got != tc.want {
				t.Errorf("cgroupRoot(%q) = %q, want %q", tc.paths, got, tc.want)
			}
		})
	}
}
