package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"

	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// Powers lists what checkpoint ck asks of the host beyond a plain
// container, in the words a person checks them by: privileged mode, added
// capabilities, host namespaces, devices, host paths, security options,
// sysctls, a cgroup parent or runtime of its own, volume and network
// drivers and options that reach the host. Resume refuses an imported
// checkpoint that asks for any of them unless told to trust it
// (Options.Trust); `ckpt import` and `ckpt inspect` show the list.
func Powers(ck *store.Checkpoint) ([]string, error) {
	var cfg container.InspectResponse
	if err := ck.ReadJSON(format.ContainerFile, &cfg); err != nil {
		return nil, err
	}
	var holder *container.InspectResponse
	var h container.InspectResponse
	if err := ck.ReadJSON(format.HolderFile, &h); err == nil {
		holder = &h
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var nets []network.Inspect
	if err := ck.ReadJSON(format.NetworksFile, &nets); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return powers(ck.Manifest, &cfg, holder, nets), nil
}

// powers is Powers on what the checkpoint's files hold.
func powers(m *format.Manifest, cfg, holder *container.InspectResponse, nets []network.Inspect) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if cfg.ContainerJSONBase != nil && cfg.HostConfig != nil {
		hostConfigPowers(cfg.HostConfig, engine.HolderName(m.Container.Name), add)
	}
	if holder != nil && holder.ContainerJSONBase != nil && holder.HostConfig != nil {
		if mode := holder.HostConfig.NetworkMode; mode.IsHost() || mode.IsContainer() {
			add("network holder in network mode %s", mode)
		}
	}
	for _, v := range m.Volumes {
		if v.Driver != "" && v.Driver != "local" {
			add("volume %s of driver %s", v.Name, v.Driver)
		}
		for _, k := range slices.Sorted(maps.Keys(v.DriverOpts)) {
			add("volume %s with driver option %s=%s (the local driver mounts host devices and paths with them)", v.Name, k, v.DriverOpts[k])
		}
	}
	for _, n := range nets {
		if n.Driver != "" && n.Driver != "bridge" {
			add("network %s of driver %s", n.Name, n.Driver)
		}
		if b := n.Options["com.docker.network.bridge.name"]; b != "" {
			add("network %s on the host's bridge %s", n.Name, b)
		}
	}
	return out
}

// hostConfigPowers reports what hc asks beyond a plain container; holder is
// the name of the container's own network holder, which ckpt recreates.
func hostConfigPowers(hc *container.HostConfig, holder string, add func(string, ...any)) {
	if hc.Privileged {
		add("privileged mode")
	}
	for _, c := range hc.CapAdd {
		add("capability %s", c)
	}
	for _, ns := range []struct{ name, mode string }{
		{"pid", string(hc.PidMode)}, {"ipc", string(hc.IpcMode)}, {"uts", string(hc.UTSMode)}, {"user", string(hc.UsernsMode)},
	} {
		if ns.mode == "host" || strings.HasPrefix(ns.mode, "container:") {
			add("%s namespace mode %s", ns.name, ns.mode)
		}
	}
	if mode := hc.NetworkMode; mode.IsHost() || (mode.IsContainer() && mode.ConnectedContainer() != holder) {
		add("network mode %s", mode)
	}
	for _, b := range hc.Binds {
		if src, _, _ := strings.Cut(b, ":"); strings.HasPrefix(src, "/") {
			add("bind mount %s", b)
		}
	}
	for _, m := range hc.Mounts {
		switch {
		case m.Type == mount.TypeBind:
			add("bind mount %s:%s", m.Source, m.Target)
		case m.Type == mount.TypeVolume && m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil:
			add("volume %s at %s with driver %s", m.Source, m.Target, m.VolumeOptions.DriverConfig.Name)
		case m.Type != mount.TypeVolume && m.Type != mount.TypeTmpfs:
			add("%s mount %s:%s", m.Type, m.Source, m.Target)
		}
	}
	for _, d := range hc.Devices {
		add("device %s", d.PathOnHost)
	}
	for _, r := range hc.DeviceCgroupRules {
		add("device cgroup rule %s", r)
	}
	for _, r := range hc.DeviceRequests {
		add("device request of driver %s", r.Driver)
	}
	for _, o := range hc.SecurityOpt {
		if o != "no-new-privileges" && o != "no-new-privileges:true" && o != "no-new-privileges=true" {
			add("security option %s", o)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(hc.Sysctls)) {
		add("sysctl %s=%s", k, hc.Sysctls[k])
	}
	if hc.CgroupParent != "" {
		add("cgroup parent %s", hc.CgroupParent)
	}
	if hc.Runtime != "" && hc.Runtime != "runc" {
		add("runtime %s", hc.Runtime)
	}
	if hc.VolumeDriver != "" {
		add("volume driver %s", hc.VolumeDriver)
	}
	for _, v := range hc.VolumesFrom {
		add("volumes of container %s", v)
	}
}

// UntrustedError is the error of a resume of an imported checkpoint that
// asks for more than a plain container, refused because it was not
// trusted (Options.Trust). Nothing was changed.
type UntrustedError struct {
	// Checkpoint names the checkpoint, container:name.
	Checkpoint string
	// Powers is what it asks for (Powers).
	Powers []string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("checkpoint %s was imported, and it asks for more than a plain container: %s",
		e.Checkpoint, strings.Join(e.Powers, "; "))
}
