package restore

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"
)

// A recreated container is built from its saved inspect document field by
// field, from the lists below: the settings ckpt understands. Everything
// else is left to the engine's defaults and named, so that what a
// checkpoint from elsewhere can set is a known list, not whatever a
// future engine adds to its API.

// configFields are the fields of container.Config that a recreated
// container gets (Image is set apart, to the image found on this host).
var configFields = []string{
	"Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
	"ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
	"ArgsEscaped", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled",
	"MacAddress", "Labels", "StopSignal", "StopTimeout", "Shell",
}

// hostConfigFields are the fields of container.HostConfig (and of its
// Resources) that a recreated container gets from a trusted checkpoint.
// Some of them reach outside the container (hostConfigPowers); those an
// untrusted checkpoint does not get.
var hostConfigFields = []string{
	"Binds", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
	"VolumeDriver", "VolumesFrom", "Annotations", "CapAdd", "CapDrop", "CgroupnsMode",
	"DNS", "DNSOptions", "DNSSearch", "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup",
	"Links", "OomScoreAdj", "PidMode", "Privileged", "PublishAllPorts", "ReadonlyRootfs",
	"SecurityOpt", "StorageOpt", "Tmpfs", "UTSMode", "UsernsMode", "ShmSize", "Sysctls",
	"Runtime", "Mounts", "MaskedPaths", "ReadonlyPaths", "Init",
	// Resources
	"CPUShares", "Memory", "NanoCPUs", "CgroupParent", "BlkioWeight", "BlkioWeightDevice",
	"BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps",
	"CPUPeriod", "CPUQuota", "CPURealtimePeriod", "CPURealtimeRuntime", "CpusetCpus",
	"CpusetMems", "Devices", "DeviceCgroupRules", "DeviceRequests", "MemoryReservation",
	"MemorySwap", "MemorySwappiness", "OomKillDisable", "PidsLimit", "Ulimits",
}

// silentFields are left to the engine without a word: they describe the
// client that created the container, not the container (the terminal's
// size, the file docker run wrote the id to), or say what Linux does
// anyway.
var silentFields = map[string]bool{"ConsoleSize": true, "ContainerIDFile": true, "Isolation": true}

// criuAnnotations starts the annotations that runc reads for CRIU
// (org.criu.config names a CRIU configuration file): no checkpoint's value
// reaches CRIU, trusted or not.
const criuAnnotations = "org.criu."

// spec is the configuration a container is recreated with.
type spec struct {
	cfg *container.Config
	hc  *container.HostConfig
	// dropped names what the saved configuration had and the recreated
	// container does not get, in the words a person checks them by.
	dropped []string
}

// brought says whether a checkpoint that is not trusted may use the volume
// or network of that name: one it brought, which this resume made (or a
// resume of the same checkpoint made before), never one that was there.
type brought struct {
	volumes, networks map[string]bool
}

// engineDefaults are the engine's settings for what a container does not
// set: a saved value equal to them is no power, and is not named.
type engineDefaults struct {
	// LogDriver is the engine's log driver.
	LogDriver string
	// HostCgroupns is true where containers share the host's cgroup
	// namespace by default (cgroup v1).
	HostCgroupns bool
}

// recreateSpec returns the configuration to recreate the saved container
// with: the fields of configFields and hostConfigFields, copied, the rest
// left to the engine (and named in dropped, but for silentFields), and no
// CRIU annotation. When trusted is false, also everything that reaches
// outside the container (hostConfigPowers), volumes and networks but those
// of own, legacy links, the log driver, annotations, port bindings on a
// given host address, and the saved masked and read-only paths (the
// engine's defaults apply).
func recreateSpec(saved container.InspectResponse, trusted bool, own brought, holder string, def engineDefaults) spec {
	src, srcHC := saved.Config, saved.HostConfig
	cfg, hc := &container.Config{}, &container.HostConfig{}
	copyFields(cfg, src, configFields)
	copyFields(hc, srcHC, hostConfigFields)
	copyFields(&hc.Resources, &srcHC.Resources, hostConfigFields)
	s := spec{cfg: cfg, hc: hc}
	s.dropped = append(s.dropped, unknownFields("Config", src, configFields, "Image")...)
	s.dropped = append(s.dropped, unknownFields("HostConfig", srcHC, hostConfigFields, "Resources")...)
	s.dropped = append(s.dropped, unknownFields("HostConfig", &srcHC.Resources, hostConfigFields)...)

	// Deep copies of what is changed below.
	hc.Annotations = maps.Clone(hc.Annotations)
	hc.Binds = slices.Clone(hc.Binds)
	hc.Mounts = slices.Clone(hc.Mounts)
	for k := range hc.Annotations {
		if strings.HasPrefix(k, criuAnnotations) || !trusted {
			s.dropped = append(s.dropped, fmt.Sprintf("annotation %s=%s", k, hc.Annotations[k]))
			delete(hc.Annotations, k)
		}
	}
	if len(hc.Annotations) == 0 {
		hc.Annotations = nil
	}
	if trusted {
		slices.Sort(s.dropped)
		return s
	}

	drop := func(format string, args ...any) { s.dropped = append(s.dropped, fmt.Sprintf(format, args...)) }
	hostConfigPowers(srcHC, holder, drop)
	plain := plainHostConfig(hc, holder)
	// Volumes: only the checkpoint's own, without drivers.
	plain.Binds = nil
	for _, b := range hc.Binds {
		src, _, _ := strings.Cut(b, ":")
		switch {
		case strings.HasPrefix(src, "/"): // a host path: a power, named above
		case !own.volumes[src]:
			drop("volume %s (bind %s): not one this resume made from the checkpoint", src, b)
		default:
			plain.Binds = append(plain.Binds, b)
		}
	}
	plain.Mounts = nil
	for _, m := range hc.Mounts {
		switch {
		case m.Type == mount.TypeTmpfs:
			plain.Mounts = append(plain.Mounts, m)
		case m.Type != mount.TypeVolume || (m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil):
			// a power, named above
		case m.Source != "" && !own.volumes[m.Source]:
			drop("volume %s at %s: not one this resume made from the checkpoint", m.Source, m.Target)
		default:
			plain.Mounts = append(plain.Mounts, m)
		}
	}
	for _, l := range hc.Links {
		drop("link %s", l)
	}
	if lc := hc.LogConfig; (lc.Type != "" && lc.Type != def.LogDriver) || len(lc.Config) > 0 {
		drop("log driver %s%s", lc.Type, optionText(lc.Config))
	}
	if hc.CgroupnsMode.IsHost() && !def.HostCgroupns {
		drop("cgroup namespace mode host")
	}
	if hc.Cgroup != "" {
		drop("cgroup %s", hc.Cgroup)
	}
	if hc.OomScoreAdj < 0 {
		drop("OOM score adjustment %d", hc.OomScoreAdj)
	}
	if hc.OomKillDisable != nil && *hc.OomKillDisable {
		drop("OOM killer disabled")
	}
	plain.PortBindings = nat.PortMap{}
	for _, port := range slices.Sorted(maps.Keys(hc.PortBindings)) {
		for _, b := range hc.PortBindings[port] {
			if anyOrLoopback(b.HostIP) {
				plain.PortBindings[port] = append(plain.PortBindings[port], b)
			} else {
				drop("port %s published on host address %s", port, b.HostIP)
			}
		}
	}
	if len(plain.PortBindings) == 0 {
		plain.PortBindings = nil
	}
	if mode := hc.NetworkMode; mode.IsUserDefined() && !own.networks[string(mode)] {
		drop("network %s: not one this resume made from the checkpoint", mode)
		plain.NetworkMode = "default"
	}
	s.hc = plain
	slices.Sort(s.dropped)
	s.dropped = slices.Compact(s.dropped)
	return s
}

// plainHostConfig returns hc without anything that reaches outside the
// container: what hostConfigPowers lists, links, the log driver,
// annotations, and the masked and read-only paths (left to the engine).
// Binds, Mounts and PortBindings are the caller's to filter.
func plainHostConfig(hc *container.HostConfig, holder string) *container.HostConfig {
	p := *hc
	p.Privileged, p.CapAdd = false, nil
	p.Links, p.LogConfig, p.Annotations = nil, container.LogConfig{}, nil
	p.MaskedPaths, p.ReadonlyPaths = nil, nil
	hostNS := func(mode string) bool { return mode == "host" || strings.HasPrefix(mode, "container:") }
	if hostNS(string(p.PidMode)) {
		p.PidMode = ""
	}
	if hostNS(string(p.IpcMode)) {
		p.IpcMode = ""
	}
	if hostNS(string(p.UTSMode)) {
		p.UTSMode = ""
	}
	if hostNS(string(p.UsernsMode)) {
		p.UsernsMode = ""
	}
	if mode := p.NetworkMode; mode.IsHost() || (mode.IsContainer() && mode.ConnectedContainer() != holder) {
		p.NetworkMode = "default"
	}
	if p.CgroupnsMode != "" && p.CgroupnsMode != "private" {
		p.CgroupnsMode = ""
	}
	p.Cgroup = ""
	p.Devices, p.DeviceCgroupRules, p.DeviceRequests = nil, nil, nil
	var secOpts []string
	for _, o := range p.SecurityOpt {
		if noNewPrivileges(o) {
			secOpts = append(secOpts, o)
		}
	}
	p.SecurityOpt = secOpts
	p.Sysctls, p.CgroupParent = nil, ""
	if p.Runtime != "runc" {
		p.Runtime = ""
	}
	p.VolumeDriver, p.VolumesFrom = "", nil
	if p.OomScoreAdj < 0 {
		p.OomScoreAdj = 0
	}
	p.OomKillDisable = nil
	return &p
}

func noNewPrivileges(o string) bool {
	return o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
}

// anyOrLoopback reports whether a port binding's host address is every
// address or a loopback one: what a plain docker run -p publishes on.
func anyOrLoopback(ip string) bool {
	if ip == "" {
		return true
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && (a.IsUnspecified() || a.IsLoopback())
}

func optionText(opts map[string]string) string {
	if len(opts) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		parts = append(parts, k+"="+opts[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// copyFields copies the named fields that src (a pointer to a struct) has
// itself, not through an embedded struct, to dst, of the same type.
func copyFields(dst, src any, names []string) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for _, n := range names {
		if f, ok := s.Type().FieldByName(n); ok && len(f.Index) == 1 {
			d.Field(f.Index[0]).Set(s.Field(f.Index[0]))
		}
	}
}

// unknownFields names the fields of src (a pointer to a struct) that hold
// a value and are not among names, skip or silentFields: what a recreated
// container does not get.
func unknownFields(what string, src any, names []string, skip ...string) []string {
	v := reflect.ValueOf(src).Elem()
	var out []string
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() || f.Anonymous || slices.Contains(names, f.Name) || slices.Contains(skip, f.Name) || silentFields[f.Name] {
			continue
		}
		if !v.Field(i).IsZero() {
			out = append(out, fmt.Sprintf("%s.%s (not a setting ckpt recreates)", what, f.Name))
		}
	}
	return out
}
