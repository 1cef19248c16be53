package app

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/criu"
	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/format"
)

// firstFormat is the oldest store format this build reads: every version
// from it to format.Version (store.Load refuses the others).
const firstFormat = 1

func init() {
	// ckpt --version prints the first line of ckpt version.
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintln(c.App.Writer, buildInfo().firstLine())
	}
}

// versionInfo is what ckpt version prints; its JSON names are those of the
// result line.
type versionInfo struct {
	// Release is Version: what make build stamps in (git describe).
	Release string `json:"release"`
	// Commit is the commit built from (Commit, or what go build
	// recorded), "-dirty" when the tree had changes; "unknown" when the
	// build did not record it.
	Commit   string `json:"commit"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// The store format written, the oldest read, and the first whose
	// files may be stored in chunks.
	FormatVersion     int `json:"formatVersion"`
	FormatReadsFrom   int `json:"formatReadsFrom"`
	FormatChunkedFrom int `json:"formatChunkedFrom"`
	// Engines are the Docker versions tested in CI.
	Engines []string `json:"engines"`
	// CRIUNeeded is the oldest CRIU that works on this kernel
	// (CRIUKernel), CRIUMinimum the oldest on any.
	CRIUNeeded  string `json:"criuNeeded"`
	CRIUKernel  string `json:"criuKernel"`
	CRIUMinimum string `json:"criuMinimum"`
}

// buildInfo is this ckpt's versionInfo.
func buildInfo() versionInfo {
	kernel := criu.Kernel()
	v := versionInfo{
		Release: Version, Commit: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		FormatVersion: format.Version, FormatReadsFrom: firstFormat, FormatChunkedFrom: format.FirstChunked,
		Engines:    engine.TestedVersions(),
		CRIUNeeded: criu.FormatVersion(criu.MinVersion(kernel)), CRIUKernel: kernel,
		CRIUMinimum: criu.FormatVersion(criu.MinVersion("")),
	}
	if Commit != "" {
		v.Commit = Commit
	} else if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				rev = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = "-dirty"
			}
		}
		if rev != "" {
			v.Commit = rev + dirty
		}
	}
	return v
}

// firstLine is what ckpt --version prints.
func (v versionInfo) firstLine() string {
	commit, dirty := strings.CutSuffix(v.Commit, "-dirty")
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if dirty {
		commit += "-dirty"
	}
	return fmt.Sprintf("ckpt %s (commit %s, %s %s)", v.Release, commit, v.Go, v.Platform)
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the release, the store format, and the engines and CRIU ckpt works with",
		Description: `Prints ckpt's release and commit and the Go it was built with (ckpt
--version prints that line), the store format it writes and those it reads,
the Docker engine versions its whole test suite runs on, and the oldest CRIU
it works with on this kernel and on any.`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("version takes no arguments")
			}
			v := buildInfo()
			if js := jsonOut(c); js != nil {
				js.result(v, nil)
				return nil
			}
			w := c.App.Writer
			fmt.Fprintln(w, v.firstLine())
			fmt.Fprintf(w, "store format: writes %d, reads %d to %d (chunked files from %d)\n",
				v.FormatVersion, v.FormatReadsFrom, v.FormatVersion, v.FormatChunkedFrom)
			fmt.Fprintf(w, "engines tested: Docker %s\n", strings.Join(v.Engines, ", "))
			fmt.Fprintf(w, "CRIU needed: %s or later on this kernel (%s), %s or later on any\n", v.CRIUNeeded, v.CRIUKernel, v.CRIUMinimum)
			return nil
		},
	}
}
