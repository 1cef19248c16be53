package systemd

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ckpt-dev/ckpt/internal/atomicfile"
)

// The Debian package (make deb) installs the units too, not enabled, in
// PackageDir. "ckpt hook install" still writes its own copies into
// DefaultDir, which systemd prefers, and enables those.

// PackageDir is where the package installs the units: systemd's directory
// for the units of installed packages.
const PackageDir = "/usr/lib/systemd/system"

// PackageMarker is the first line of the units the package installs, in
// place of Marker: hook install and uninstall never touch them.
const PackageMarker = "# Installed by the ckpt package, not enabled; upgrades replace this file."

// packageNote follows PackageMarker.
const packageNote = `# "ckpt hook install" enables the hooks: it writes its own copy of this
# unit, with the policy's deadline, into /etc/systemd/system, which systemd
# prefers, and enables that.
`

// PackagedUnits returns the units as the package installs them: the units
// Units returns for o, with PackageMarker and a note in place of Marker.
func PackagedUnits(o Options) map[string]string {
	units := Units(o)
	for name, u := range units {
		units[name] = PackageMarker + "\n" + packageNote + strings.TrimPrefix(u, Marker+"\n")
	}
	return units
}

// RuntimeDir is systemd's directory for runtime units and drop-ins; it is
// emptied at every boot.
const RuntimeDir = "/run/systemd/system"

// disarmName is the drop-in Disarm writes.
const disarmName = "ckpt-hook-uninstall.conf"

// disarmDropIn empties ExecStop=, the shutdown hook.
const disarmDropIn = `# Written by ckpt hook uninstall; ckpt hook install removes it, and so does
# the next boot. ckpt-shutdown.service stays active until shutdown (stopping
# it would run the hook), and this empties its ExecStop=, so that it runs
# nothing then, even where another unit of that name remains (the ckpt
# package's, in ` + PackageDir + `).
[Service]
ExecStop=
`

// Disarm writes, under runtimeDir, a drop-in that empties the ExecStop= of
// ckpt-shutdown.service, and returns its path. ckpt hook uninstall writes
// it before systemd reloads: once the unit file ckpt wrote is gone, systemd
// would otherwise load the package's unit of the same name, hook included,
// into the unit that is still active, and run the hook at shutdown.
func Disarm(runtimeDir string) (string, error) {
	dir := filepath.Join(runtimeDir, ShutdownUnit+".d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, disarmName)
	if err := atomicfile.WriteFile(path, []byte(disarmDropIn), 0o644, atomicfile.Replace); err != nil {
		return "", err
	}
	return path, nil
}

// Rearm removes the drop-in Disarm wrote under runtimeDir, and its
// directory when nothing else is left in it. It returns the drop-in's path,
// or "" when there was none.
func Rearm(runtimeDir string) (string, error) {
	dir := filepath.Join(runtimeDir, ShutdownUnit+".d")
	path := filepath.Join(dir, disarmName)
	if err := os.Remove(path); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	os.Remove(dir) // fails, and is meant to, when other drop-ins are there
	return path, nil
}
