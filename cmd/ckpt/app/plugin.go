package app

import (
	"encoding/json"
	"io"
	"path/filepath"
)

// The binary installed as docker-ckpt in a Docker CLI plugin directory
// (~/.docker/cli-plugins, /usr/local/lib/docker/cli-plugins) makes
// "docker ckpt save web" work. The docker CLI first asks the plugin for its
// metadata, then runs it as "docker-ckpt ckpt save web".
const (
	pluginName           = "docker-ckpt"
	pluginMetadataSubcmd = "docker-cli-plugin-metadata"
)

// pluginMetadata is what the docker CLI expects from a plugin.
type pluginMetadata struct {
	SchemaVersion    string
	Vendor           string
	Version          string
	ShortDescription string
	URL              string
}

// asPlugin handles the docker CLI's plugin protocol. It returns the
// arguments to run, or done when the call was answered here.
func asPlugin(args []string, stdout io.Writer) (_ []string, done bool) {
	if len(args) < 2 || filepath.Base(args[0]) != pluginName {
		return args, false
	}
	switch args[1] {
	case pluginMetadataSubcmd:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(pluginMetadata{
			SchemaVersion:    "0.1.0",
			Vendor:           "ckpt",
			Version:          Version,
			ShortDescription: "Save containers whole (memory, volumes, writable layer) and resume them",
			URL:              "https://github.com/ckpt-dev/ckpt",
		})
		return nil, true
	case "ckpt":
		return append([]string{"ckpt"}, args[2:]...), false
	}
	return args, false
}
