package restore

import (
	"encoding/json"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// FuzzConfig feeds what an archive controls — the manifest, container.json,
// holder.json and networks.json — to what resume does with them before it
// touches the engine: the manifest's checks, the configuration a container
// is recreated with, trusted or not, whether the container ran after the
// checkpoint, its network attachments and cgroup.
// None of it may panic.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(`{"formatVersion":2,"mode":"hot","container":{"name":"web","id":"abc"},"files":[],"volumes":[{"name":"v","archive":"volumes/v.tar","driverOpts":{"o":"bind"}}],"leftRunning":true}`),
		[]byte(`{"Id":"abc","Name":"/web","State":{"StartedAt":"2026-01-01T00:00:00Z"},"Config":{},"HostConfig":{"Privileged":true,"Binds":["/:/host"],"NetworkMode":"container:x","Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]},"NetworkSettings":{"Networks":{"bridge":{"Aliases":["a"]}}}}`),
		[]byte(`{"HostConfig":{"NetworkMode":"host"}}`),
		[]byte(`[{"Name":"n","Driver":"macvlan","Options":{"com.docker.network.bridge.name":"docker0"}}]`))
	f.Add([]byte(`{}`), []byte(`{}`), []byte(`null`), []byte(`null`))
	f.Fuzz(func(t *testing.T, manifest, cfgJSON, holderJSON, netsJSON []byte) {
		var m format.Manifest
		if json.Unmarshal(manifest, &m) != nil {
			return
		}
		_ = m.Check()
		_ = m.CheckResumable()
		var cfg, holder container.InspectResponse
		_ = json.Unmarshal(cfgJSON, &cfg)
		_ = json.Unmarshal(holderJSON, &holder)
		var nets []network.Inspect
		_ = json.Unmarshal(netsJSON, &nets)
		if cfg.ContainerJSONBase != nil {
			_ = ranAfter(cfg.State, &m)
		}
		if cfg.ContainerJSONBase != nil && cfg.HostConfig != nil && cfg.Config != nil {
			own := brought{volumes: map[string]bool{"v": true}, networks: map[string]bool{"n": true}}
			for _, trusted := range []bool{true, false} {
				_ = recreateSpec(cfg, trusted, own, "web-ckpt-net", engineDefaults{})
				r := &resumer{trusted: trusted, own: own, res: &Result{}}
				r.endpoints(cfg)
			}
		}
		_, _ = containerCgroup("systemd", string(cfgJSON), m.Container.ID)
		_, _ = containerCgroup("cgroupfs", string(holderJSON), m.Container.ID)
	})
}
