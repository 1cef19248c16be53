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
	"github.com/ckpt-dev/ckpt/internal/shim"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// Powers lists what checkpoint ck's container asks of the host beyond a
// plain container, in the words a person checks them by: privileged mode,
// added capabilities, host namespaces, devices, host paths, security
// options, sysctls, a cgroup parent or runtime of its own, links, a log
// driver, annotations, volume and network drivers and options that reach
// the host. A resume gives them only to a trusted checkpoint (store.Trust,
// Options.Trust); `ckpt import`, `ckpt pull` and `ckpt inspect` show the
// list.
func Powers(ck *store.Checkpoint) ([]string, error) {
	var cfg container.InspectResponse
	if err := ck.ReadJSON(format.ContainerFile, &cfg); err != nil {
		return nil, err
	}
	if cfg.ContainerJSONBase == nil || cfg.Config == nil || cfg.HostConfig == nil {
		return nil, fmt.Errorf("%s lacks the container's configuration", format.ContainerFile)
	}
	var nets []network.Inspect
	if err := ck.ReadJSON(format.NetworksFile, &nets); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	m := ck.Manifest
	own := brought{volumes: map[string]bool{}, networks: map[string]bool{}}
	var out []string
	for _, v := range m.Volumes {
		if (v.Driver != "" && v.Driver != "local") || len(v.DriverOpts) > 0 {
			out = append(out, fmt.Sprintf("volume %s of driver %s%s", v.Name, v.Driver, optionText(v.DriverOpts)))
		} else {
			own.volumes[v.Name] = true
		}
	}
	for _, n := range nets {
		if n.Driver != "" && n.Driver != network.NetworkBridge {
			out = append(out, fmt.Sprintf("network %s of driver %s", n.Name, n.Driver))
		} else {
			own.networks[n.Name] = true
		}
	}
	// The engine's defaults where it was saved.
	def := engineDefaults{LogDriver: "json-file", HostCgroupns: m.Host.CgroupVersion != "2"}
	out = append(out, recreateSpec(cfg, false, own, engine.HolderName(m.Container.Name), def).dropped...)
	slices.Sort(out)
	return slices.Compact(out), nil
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
	if hc.Runtime != "" && hc.Runtime != "runc" && hc.Runtime != shim.Runtime {
		add("runtime %s", hc.Runtime)
	}
	if hc.VolumeDriver != "" {
		add("volume driver %s", hc.VolumeDriver)
	}
	for _, v := range hc.VolumesFrom {
		add("volumes of container %s", v)
	}
}

// UntrustedError says why the memory of a checkpoint was not restored:
// it is not trusted (store.Trust), and the resume was not told to trust it
// (Options.Trust). It is Result.Fallback of such a resume, or wrapped in a
// NoFallbackError.
type UntrustedError struct {
	// Checkpoint names the checkpoint, container:name.
	Checkpoint string
	// Trust is its trust.
	Trust store.Trust
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("checkpoint %s is not trusted: %s", e.Checkpoint, e.Trust.Reason)
}
