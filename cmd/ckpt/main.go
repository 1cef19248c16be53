// Command ckpt saves Docker containers whole — process memory, volumes and
// writable layer — and brings them back where they stopped.
package main

import (
	"os"

	"github.com/ckpt-dev/ckpt/cmd/ckpt/app"
)

func main() {
	os.Exit(app.Main(os.Args, os.Stdout, os.Stderr))
}
