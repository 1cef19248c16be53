package engine

import (
	"os"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestInHolder(t *testing.T) {
	c := func(mode string) *container.InspectResponse {
		return &container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode)}}}
	}
	for _, tc := range []struct {
		c    *container.InspectResponse
		want bool
	}{
		{c("container:web-ckpt-net"), true},
		{c("container:0123abcd"), true},
		{c("container:other"), false},
		{c("bridge"), false},
		{c("default"), false},
		{c("web-ckpt-net"), false},
		{&container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{}}, false},
		{&container.InspectResponse{}, false},
		{nil, false},
	} {
		if got := InHolder(tc.c, HolderName("web"), "0123abcd"); got != tc.want {
			mode := "<nil>"
			if tc.c != nil && tc.c.ContainerJSONBase != nil && tc.c.HostConfig != nil {
				mode = string(tc.c.HostConfig.NetworkMode)
			}
			t.Errorf("InHolder(%s) = %v, want %v", mode, got, tc.want)
		}
	}
	if InHolder(c("container:"), HolderName("web"), "") {
		t.Error("an empty holder id matched")
	}
}

// A dynamically linked executable cannot be the holder image's only file.
func TestRequireStatic(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Fatal(err) // every Debian system has it, dynamically linked
	}
	err := requireStatic("/bin/sh")
	if err == nil || !strings.Contains(err.Error(), "is linked dynamically") {
		t.Fatalf("requireStatic(/bin/sh) = %v", err)
	}
	if err := requireStatic("/nonexistent"); err == nil {
		t.Fatal("requireStatic of a missing file succeeded")
	}
}
