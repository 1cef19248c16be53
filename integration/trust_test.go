package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/ckpt-dev/ckpt/internal/format"
)

// A forged archive: a real export whose container.json and networks.json
// were changed to reach another app's volume and network (with the alias
// its clients use), a legacy link to it, a log driver that ships the logs
// elsewhere, a CRIU configuration annotation, privileged mode and the host's
// root, with every sum fixed to match, and its signature kept. Imported into
// a store that trusts the store that made the original, it is not trusted
// (it is not what was signed): it comes back as data only, grants none of
// it, and names each thing it left out. The other app's volume, network and
// container are untouched.
func TestForgedArchive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	victim, victimVol, victimNet := e.name("victim"), e.name("victimdata"), e.name("victimnet")
	v, err := docker.VolumeCreate(ctx, volume.CreateOptions{Name: victimVol})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "the victim's secret\n"
	write(t, filepath.Join(v.Mountpoint, "secret"), secret)
	t.Cleanup(func() { docker.VolumeRemove(context.Background(), victimVol, true) })
	if _, err := docker.NetworkCreate(ctx, victimNet, network.CreateOptions{Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.NetworkRemove(context.Background(), victimNet) })
	e.startApp(victim, appOpts{volume: victimVol})
	if err := docker.NetworkConnect(ctx, victimNet, victim, &network.EndpointSettings{Aliases: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	if got, code := e.call(victim, "GET", "/read?path=/data/secret"); code != 200 || got != secret {
		t.Fatalf("the victim's volume: %d %q", code, got)
	}

	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol})
	e.waitCounter(name, 3)
	e.mustCkpt("save", name)
	archive := filepath.Join(t.TempDir(), "a.ckpt")
	e.mustCkpt("export", "--compress", "none", "-o", archive, name)
	removeContainer(t, name)
	if err := docker.VolumeRemove(ctx, vol, false); err != nil {
		t.Fatal(err)
	}

	forged := filepath.Join(t.TempDir(), "forged.ckpt")
	forgeArchive(t, archive, forged, func(c *container.InspectResponse, nets *[]network.Inspect) {
		hc := c.HostConfig
		hc.Binds = append(hc.Binds, victimVol+":/steal", "/:/host")
		hc.Links = []string{"/" + victim + ":/" + name + "/db"}
		hc.LogConfig = container.LogConfig{Type: "syslog", Config: map[string]string{"syslog-address": "udp://127.0.0.1:9"}}
		hc.Annotations = map[string]string{"org.criu.config": "/tmp/evil.conf"}
		hc.Privileged, hc.CapAdd = true, []string{"SYS_ADMIN"}
		c.NetworkSettings.Networks[victimNet] = &network.EndpointSettings{Aliases: []string{"db"},
			IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.254.1.9"}}
		*nets = append(*nets, network.Inspect{Name: victimNet, Driver: "bridge",
			IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.254.1.0/24"}}}, Options: map[string]string{"com.docker.network.bridge.name": "docker0"}})
	})

	first := e.store
	e.store = t.TempDir() // a store that trusts the first
	e.trustStore("host1", first)
	r := e.mustCkpt("import", forged)
	if !strings.Contains(r.stdout, "not trusted (its signature does not match its manifest: it was altered after it was signed): it comes back as data only") {
		t.Errorf("import:\n%s", r.stdout)
	}
	r = e.resumeNoMemory(name) // data only: exit 3
	for _, want := range []string{
		"data only, in a plain container: it is not trusted",
		"network " + victimNet + " exists on this host and was not made from this checkpoint: not joined",
		"left out: annotation org.criu.config=/tmp/evil.conf",
		"left out: bind mount /:/host",
		"left out: capability SYS_ADMIN",
		"left out: link /" + victim + ":/" + name + "/db",
		"left out: log driver syslog (syslog-address=udp://127.0.0.1:9)",
		"left out: network " + victimNet + ": not one this resume made from the checkpoint",
		"left out: privileged mode",
		"left out: volume " + victimVol + " (bind " + victimVol + ":/steal): not one this resume made from the checkpoint",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("resume output lacks %q", want)
		}
	}
	c := e.inspect(name)
	hc := c.HostConfig
	if hc.Privileged || len(hc.CapAdd) > 0 || len(hc.Links) > 0 || len(hc.Annotations) > 0 {
		t.Errorf("granted: privileged %v, capabilities %v, links %v, annotations %v", hc.Privileged, hc.CapAdd, hc.Links, hc.Annotations)
	}
	if info, err := docker.Info(ctx); err != nil || hc.LogConfig.Type != info.LoggingDriver {
		t.Errorf("log driver %q, want the engine's (%v)", hc.LogConfig.Type, err)
	}
	for _, m := range c.Mounts {
		if m.Name == victimVol || m.Source == "/" || m.Destination == "/steal" || m.Destination == "/host" {
			t.Errorf("mounted %+v", m)
		}
	}
	if _, on := c.NetworkSettings.Networks[victimNet]; on {
		t.Errorf("joined %s", victimNet)
	}
	if _, code := e.call(name, "GET", "/read?path=/steal/secret"); code == 200 {
		t.Error("the forged container reads the victim's volume")
	}
	// The victim is as it was.
	if got, _ := e.call(victim, "GET", "/read?path=/data/secret"); got != secret {
		t.Error("the victim's volume changed")
	}
	n, err := docker.NetworkInspect(ctx, victimNet, network.InspectOptions{})
	if err != nil || n.Options["com.docker.network.bridge.name"] == "docker0" || len(n.Containers) != 1 {
		t.Errorf("the victim's network: %+v %v", n.Containers, err)
	}
}

// forgeArchive rewrites the plain export at src into dst with change
// applied to its container.json and networks.json, and every size and
// sha256 fixed to match: manifest, its checksum and the header's. The
// header's signature stays as it was.
func forgeArchive(t *testing.T, src, dst string, change func(*container.InspectResponse, *[]network.Inspect)) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type entry struct {
		hdr  *tar.Header
		data []byte
	}
	var entries []entry
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, entry{h, b})
	}
	get := func(name string) *entry {
		for i := range entries {
			if entries[i].hdr.Name == name {
				return &entries[i]
			}
		}
		t.Fatalf("the export has no %s", name)
		return nil
	}
	var cfg container.InspectResponse
	var nets []network.Inspect
	cj, nj := get(format.ContainerFile), get(format.NetworksFile)
	if err := json.Unmarshal(cj.data, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(nj.data, &nets); err != nil {
		t.Fatal(err)
	}
	change(&cfg, &nets)
	cj.data, _ = json.Marshal(cfg)
	nj.data, _ = json.Marshal(nets)

	mj := get(format.ManifestFile)
	var m map[string]any
	if err := json.Unmarshal(mj.data, &m); err != nil {
		t.Fatal(err)
	}
	for _, fl := range m["files"].([]any) {
		fl := fl.(map[string]any)
		for _, e := range []*entry{cj, nj} {
			if fl["path"] == e.hdr.Name {
				s := sha256.Sum256(e.data)
				fl["size"], fl["sha256"] = len(e.data), hex.EncodeToString(s[:])
			}
		}
	}
	mj.data, _ = json.MarshalIndent(m, "", "  ")
	mj.data = append(mj.data, '\n')
	ms := sha256.Sum256(mj.data)
	get(format.ManifestSumFile).data = []byte(hex.EncodeToString(ms[:]) + "\n")
	hj := get("ckpt-export.json")
	var h map[string]any
	if err := json.Unmarshal(hj.data, &h); err != nil {
		t.Fatal(err)
	}
	if h["signature"] == nil {
		t.Fatal("the export carries no signature")
	}
	h["manifestSha256"] = hex.EncodeToString(ms[:])
	hj.data, _ = json.MarshalIndent(h, "", "  ")

	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, e := range entries {
		e.hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(e.hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
