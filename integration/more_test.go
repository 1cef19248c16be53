package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// --leave-running: the container keeps running (and is not left paused),
// the checkpoint resumes later.
func TestSaveLeaveRunning(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	before := e.waitCounter(name, 3)
	r := e.mustCkpt("save", "--leave-running", name)
	if !strings.Contains(r.stdout, "(left running)") {
		t.Fatalf("save printed %q", r.stdout)
	}
	c := e.inspect(name)
	if !c.State.Running || c.State.Paused {
		t.Fatalf("after save: running=%v paused=%v", c.State.Running, c.State.Paused)
	}
	later := e.waitCounter(name, before.Counter+5) // still counting
	if later.ID != before.ID {
		t.Fatal("the process was replaced")
	}
	if err := docker.ContainerStop(context.Background(), name, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	// It went on after the checkpoint: its files are newer than the memory.
	r = e.ckpt("resume", name)
	if r.code != 1 || !strings.Contains(r.stderr, "ran after checkpoint") || !strings.Contains(r.stderr, "resume with --force") {
		t.Fatalf("resume of a container that ran on: exit %d\n%s", r.code, r.stderr)
	}
	if e.inspect(name).State.Running {
		t.Fatal("the refused resume started the container")
	}
	e.mustCkpt("resume", "--force", name)
	e.assertContinues(name, before)
}

// A container on a user-defined network with an alias and an anonymous
// volume: after docker rm -f, docker network rm and docker volume rm, resume
// recreates the network, re-attaches the container with its alias, and
// brings back the anonymous volume by name.
func TestResumeRecreatesNetworkAndAnonymousVolume(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	name, netName := e.name("app"), e.name("net")
	if _, err := docker.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "bridge", Labels: map[string]string{"test": "ckpt"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.NetworkRemove(context.Background(), netName) })
	cfg := &container.Config{Image: testImage, ExposedPorts: nat.PortSet{"8080/tcp": {}}}
	hc := &container.HostConfig{
		NetworkMode:  container.NetworkMode(netName),
		PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}},
		Mounts:       []mount.Mount{{Type: mount.TypeVolume, Target: "/data"}}, // anonymous
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {Aliases: []string{"web-alias"}}}}
	if _, err := docker.ContainerCreate(ctx, cfg, hc, nc, nil, name); err != nil {
		t.Fatal(err)
	}
	var anon string
	t.Cleanup(func() {
		docker.ContainerRemove(context.Background(), name, container.RemoveOptions{Force: true})
		if anon != "" {
			docker.VolumeRemove(context.Background(), anon, true)
		}
	})
	if err := docker.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	before := e.waitCounter(name, 15)
	anon = e.inspect(name).Mounts[0].Name
	history, _ := e.call(name, "GET", "/read?path=/data/history.log")

	e.mustCkpt("save", name)
	removeContainer(t, name)
	if err := docker.NetworkRemove(ctx, netName); err != nil {
		t.Fatal(err)
	}
	if err := docker.VolumeRemove(ctx, anon, false); err != nil {
		t.Fatal(err)
	}

	r := e.mustCkpt("resume", name)
	if !strings.Contains(r.stdout, "recreated network "+netName) {
		t.Fatalf("resume printed %q", r.stdout)
	}
	e.assertContinues(name, before)
	c := e.inspect(name)
	nets := c.NetworkSettings.Networks
	if c.HostConfig.NetworkMode.IsContainer() {
		t.Fatalf("resumed in network mode %s: not its own network", c.HostConfig.NetworkMode)
	}
	ep, ok := nets[netName]
	if !ok || !contains(ep.Aliases, "web-alias") {
		t.Fatalf("networks after resume: %+v", nets)
	}
	n, err := docker.NetworkInspect(ctx, netName, network.InspectOptions{})
	if err != nil || n.Labels["test"] != "ckpt" {
		t.Fatalf("recreated network: %v %+v", err, n.Labels)
	}
	if len(c.Mounts) != 1 || c.Mounts[0].Name != anon || c.Mounts[0].Destination != "/data" {
		t.Fatalf("mounts after resume: %+v", c.Mounts)
	}
	if got, _ := e.call(name, "GET", "/read?path=/data/history.log"); !strings.HasPrefix(got, history) {
		t.Fatalf("anonymous volume lost its data: %q, want prefix %q", got, history)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// save --all and resume --all act on every running / saved container.
func TestAll(t *testing.T) {
	e := newEnv(t)
	a, b := e.name("a"), e.name("b")
	e.startApp(a, appOpts{})
	e.startApp(b, appOpts{})
	sa, sb := e.waitCounter(a, 2), e.waitCounter(b, 2)
	r := e.mustCkpt("save", "--all")
	if !strings.Contains(r.stdout, "saved "+a+" ") || !strings.Contains(r.stdout, "saved "+b+" ") {
		t.Fatalf("save --all printed %q", r.stdout)
	}
	removeContainer(t, b)
	r = e.mustCkpt("resume", "--all")
	if !strings.Contains(r.stdout, "resumed "+a+" ") || !strings.Contains(r.stdout, "resumed "+b+" ") {
		t.Fatalf("resume --all printed %q", r.stdout)
	}
	e.assertContinues(a, sa)
	e.assertContinues(b, sb)
}

// A store too small for the container is refused before anything is
// stopped: the container keeps running and the store holds nothing.
func TestStoreTooSmall(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{allocMB: 64})
	before := e.waitCounter(name, 2)
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", small).Run() })
	e.store = small
	r := e.ckpt("save", name)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "ckpt: error: not enough space in "+small+" to save "+name+": about ") ||
		!strings.HasSuffix(r.stderr, "ckpt: hint: free space there (ckpt rm removes old checkpoints) or use another --store; nothing was changed\n") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if c := e.inspect(name); !c.State.Running || c.State.Paused {
		t.Fatal("the container was stopped or paused")
	}
	e.assertContinues(name, before)
	ents, _ := os.ReadDir(small + "/containers/" + name + "/checkpoints")
	if len(ents) != 0 {
		t.Fatalf("store holds %v", ents)
	}
}

// A checkpoint made on another architecture: resume says so before touching
// anything; with --no-fallback (the old name of --require-memory, which
// still works and warns) it stops there, otherwise it brings the data back,
// starts the container normally and exits 3.
func TestResumeFromAnotherArch(t *testing.T) {
	e := newEnv(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol})
	before := e.waitCounter(name, 12)
	e.mustCkpt("save", name)
	path := checkpointFile(t, e.store, name, "manifest.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.Replace(string(raw), `"arch": "amd64"`, `"arch": "s390x"`, 1))
	sum := sha256.Sum256(raw)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".sha256", []byte(hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	removeContainer(t, name)

	r := e.ckpt("resume", "--no-fallback", name)
	want := "ckpt: error: memory cannot be restored here, and a start on the saved data only was ruled out: the checkpoint was made on s390x and this host is amd64: processes cannot move between architectures\n"
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.HasPrefix(r.stderr, "ckpt: warning: --no-fallback is deprecated, use --require-memory\n") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if e.inspect(name) != nil {
		t.Fatal("--no-fallback created the container")
	}
	r = e.resumeNoMemory(name)
	if !strings.Contains(r.stderr, "memory cannot be restored here (the checkpoint was made on s390x") ||
		!strings.Contains(r.stdout, "memory NOT restored, started normally on the restored data") {
		t.Fatalf("resume:\n%s\n%s", r.stdout, r.stderr)
	}
	if after := e.waitState(name); after.ID == before.ID {
		t.Fatal("memory came back from another architecture?")
	}
}

// Installed as docker-ckpt in a CLI plugin directory, ckpt answers
// "docker ckpt ...".
func TestDockerCLIPlugin(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{})
	before := e.waitCounter(name, 2)
	cfg := t.TempDir()
	plugin := filepath.Join(cfg, "cli-plugins", "docker-ckpt")
	if err := os.MkdirAll(filepath.Dir(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(ckptBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plugin, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	dockerCLI := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("docker", args...)
		cmd.Env = e.environ("DOCKER_CONFIG=" + cfg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if help := dockerCLI("--help"); !strings.Contains(help, "ckpt*") {
		t.Fatalf("docker --help does not list the plugin:\n%s", help)
	}
	if out := dockerCLI("ckpt", "save", "-q", name); !strings.Contains(out, "saved "+name) {
		t.Fatalf("docker ckpt save: %s", out)
	}
	dockerCLI("ckpt", "resume", "-q", name)
	e.assertContinues(name, before)
}

// hasCapSysResource reports whether this process's bounding set holds
// CAP_SYS_RESOURCE, which CRIU needs to read the rlimits of processes
// running as another user.
func hasCapSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			var caps uint64
			fmt.Sscanf(strings.TrimSpace(v), "%x", &caps)
			return caps&(1<<24) != 0
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return false
}

// A workload that does not run as root. Where CAP_SYS_RESOURCE is missing
// (this project's sandboxed CI hosts drop it from every process) CRIU cannot
// dump it: ckpt must say why and leave the container running. Where it is
// there (the VM guest, normal hosts), it saves and resumes like any other.
func TestNonRootWorkload(t *testing.T) {
	e := newEnv(t)
	name := e.name("app")
	e.startApp(name, appOpts{user: "1000:1000"})
	before := e.waitCounter(name, 2)
	r := e.ckpt("save", name)
	if !hasCapSysResource(t) {
		if r.code != 1 || !strings.Contains(r.stderr, "Can't get rlimit") || !strings.Contains(r.stderr, "ckpt: hint: CRIU lacks CAP_SYS_RESOURCE") {
			t.Fatalf("without CAP_SYS_RESOURCE: exit %d\n%s", r.code, r.stderr)
		}
		e.assertContinues(name, before)
		return
	}
	if r.code != 0 {
		t.Fatalf("save: exit %d\n%s", r.code, r.stderr)
	}
	e.mustCkpt("resume", name)
	e.assertContinues(name, before)
}
