// Command ckpt saves Docker containers whole — process memory, volumes and
// writable layer — and brings them back where they stopped.
//
// Started as containerd-shim-ckpt-v2 (a link to it), it is ckpt's
// containerd runtime instead (internal/shim).
package main

import (
	"os"

	"github.com/ckpt-dev/ckpt/cmd/ckpt/app"
	"github.com/ckpt-dev/ckpt/internal/shim"
)

func main() {
	if code, ok := shim.Dispatch(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(app.Main(os.Args, os.Stdout, os.Stderr))
}
