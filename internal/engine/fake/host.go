package fake

import (
	"sync"

	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/preflight"
	"github.com/ckpt-dev/ckpt/internal/shim"
)

// Host is a machine for preflight.Host: CRIU 4.2.1 that works, a runc.conf
// that is always right, plenty of free space, and the facts of an amd64
// host. Set its fields to make a check fail.
type Host struct {
	// CRIUErr is what the CRIU check returns.
	CRIUErr error
	// RuncConfErr is what keeping runc.conf returns.
	RuncConfErr error
	// RuntimeErr is what installing ckpt's runtime returns.
	RuntimeErr error
	// Free is the free space of every file system, and Inodes its free
	// inodes.
	Free, Inodes int64
	// Facts are the host's facts.
	Facts criu.Facts

	mu sync.Mutex
	// options are the extra runc.conf lines of each checkpoint or restore.
	options [][]string
}

// NewHost returns a host where everything works.
func NewHost() *Host {
	return &Host{Free: 1 << 40, Inodes: 1 << 30, Facts: criu.Facts{Kernel: "6.1.0", Arch: "amd64", CPUFlags: []string{"fpu", "sse2"}}}
}

// Options returns the extra runc.conf lines each run with options had.
func (h *Host) Options() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]string(nil), h.options...)
}

// Preflight returns h as a preflight.Host; file sizes are measured for
// real.
func (h *Host) Preflight() preflight.Host {
	return preflight.Host{
		CRIU:     func() (int, error) { return 40201, h.CRIUErr },
		RuncConf: func() error { return h.RuncConfErr },
		WithRuncOptions: func(extra []string, fn func() error) error {
			h.mu.Lock()
			h.options = append(h.options, extra)
			h.mu.Unlock()
			return fn()
		},
		Facts:      func() criu.Facts { return h.Facts },
		Free:       func(string) (int64, error) { return h.Free, nil },
		FreeInodes: func(string) (int64, error) { return h.Inodes, nil },
		Runtime: func() (string, error) {
			if h.RuntimeErr != nil {
				return "", h.RuntimeErr
			}
			return "/usr/local/bin/" + shim.Binary, nil
		},
	}
}
