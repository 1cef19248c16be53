package criu

import (
	"errors"
	"strings"
	"testing"
)

func TestCompatible(t *testing.T) {
	amd := Facts{Kernel: "6.18.0", Arch: "amd64", CPUFlags: []string{"avx", "avx2", "fpu", "sse2"}}
	for _, tc := range []struct {
		name     string
		from, to Facts
		want     string
	}{
		{"same", amd, amd, ""},
		{"another kernel", Facts{Kernel: "6.1.0", Arch: "amd64", CPUFlags: amd.CPUFlags}, amd, ""},
		{"a CPU with more", Facts{Arch: "amd64", CPUFlags: []string{"avx", "fpu"}}, amd, ""},
		{"unknown flags", Facts{Arch: "amd64"}, amd, ""},
		{"another arch", Facts{Arch: "arm64"}, amd, "the checkpoint was made on arm64 and this host is amd64"},
		{"a CPU with less", Facts{Arch: "amd64", CPUFlags: []string{"avx", "avx512f", "fpu", "sha_ni"}}, amd,
			"this host's CPU lacks features the checkpoint's CPU had: avx512f sha_ni"},
		{"a CPU with less, arch unknown", Facts{CPUFlags: []string{"avx", "avx512f"}}, amd,
			"this host's CPU lacks features the checkpoint's CPU had: avx512f"},
		{"a CPU with much less", Facts{Arch: "amd64", CPUFlags: []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "fpu"}}, amd,
			"this host's CPU lacks features the checkpoint's CPU had: a1 a2 a3 a4 a5 a6 a7 a8 and 2 more"},
	} {
		err := Compatible(tc.from, tc.to)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		case tc.want != "" && !errors.As(err, new(*IncompatibleError)):
			t.Errorf("%s: %v is not an IncompatibleError", tc.name, err)
		}
	}
}

func TestCPUFlagsSorted(t *testing.T) {
	f := CPUFlags()
	for i := 1; i < len(f); i++ {
		if f[i-1] > f[i] {
			t.Fatalf("not sorted at %d: %q > %q", i, f[i-1], f[i])
		}
	}
}
