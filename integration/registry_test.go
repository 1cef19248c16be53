package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/store"
)

// testRegistry is Debian's docker-registry (distribution 2.8) on
// 127.0.0.1, with TLS from a CA made here and htpasswd authentication,
// behind a TCP relay of the test's that can stop it in the middle of an
// upload.
type testRegistry struct {
	t      *testing.T
	host   string // what ckpt is given: the relay's address
	ca     string // the CA's certificate (PEM)
	config string // a DOCKER_CONFIG directory with the credentials
	dir    string
	addr   string // the registry's own address
	cmd    *exec.Cmd
	exited chan struct{}
	// stopAfter, when positive, stops the registry once that many bytes
	// went through the relay towards it.
	stopAfter atomic.Int64
	up        atomic.Int64
}

const registryUser, registryPassword = "ckpt", "s3cret-for-tests"

// registryBin is Debian's docker-registry: on PATH, or beside the
// prebuilt binaries of a compiled suite run.
func registryBin(t *testing.T) string {
	if dir := os.Getenv("CKPT_TEST_BIN_DIR"); dir != "" {
		if p := filepath.Join(dir, "docker-registry"); fileExists(p) {
			return p
		}
	}
	p, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("no docker-registry (Debian's package of distribution; scripts/setup.sh installs it): %v", err)
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func startRegistry(t *testing.T) *testRegistry { return startRegistryAt(t, t.TempDir(), "") }

// startRegistryAt starts a registry whose files (its storage, certificates,
// passwords and a docker CLI configuration) are in dir. With nsRoot, dir is
// under the root directory of another mount namespace, and config-ns.yml
// serves the same registry there (see TestRegistryAnotherEngine).
func startRegistryAt(t *testing.T, dir, nsRoot string) *testRegistry {
	t.Helper()
	r := &testRegistry{t: t, dir: dir}
	bin := registryBin(t)
	r.writeTLS()
	hash, err := bcrypt.GenerateFromPassword([]byte(registryPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(r.dir, "htpasswd"), registryUser+":"+string(hash)+"\n")
	r.addr = freeAddr(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.host = ln.Addr().String()
	go r.relay(ln)
	t.Cleanup(func() { ln.Close() })
	r.writeConfig("config.yml", r.addr, "")
	if nsRoot != "" {
		// Its paths there, listening where the relay does here.
		r.writeConfig("config-ns.yml", r.host, nsRoot)
	}

	r.config = filepath.Join(r.dir, "docker")
	auth := base64.StdEncoding.EncodeToString([]byte(registryUser + ":" + registryPassword))
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{r.host: map[string]string{"auth": auth}}})
	write(t, filepath.Join(r.config, "config.json"), string(cfg))
	r.start(bin)
	t.Cleanup(r.stop)
	return r
}

// writeConfig writes the registry's configuration file name, listening on
// addr, with its paths seen from a root at root ("" for this one).
func (r *testRegistry) writeConfig(name, addr, root string) {
	in := func(p string) string { return strings.TrimPrefix(filepath.Join(r.dir, p), root) }
	write(r.t, filepath.Join(r.dir, name), fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: ckpt-test
    path: %s
`, in("data"), addr, in("cert.pem"), in("key.pem"), in("htpasswd")))
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeTLS makes a CA and a certificate for 127.0.0.1 signed by it.
func (r *testRegistry) writeTLS() {
	t := r.t
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ckpt test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	r.ca = filepath.Join(r.dir, "ca.pem")
	write(t, r.ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	write(t, filepath.Join(r.dir, "cert.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, filepath.Join(r.dir, "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
}

// start runs the registry and waits until it answers.
func (r *testRegistry) start(bin string) {
	t := r.t
	r.cmd = exec.Command(bin, "serve", filepath.Join(r.dir, "config.yml"))
	log, err := os.OpenFile(filepath.Join(r.dir, "registry.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(r.cmd, r.exited)
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(r.ca)
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(patience(60 * time.Second))
	for {
		resp, err := c.Get("https://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
		select {
		case <-r.exited:
			b, _ := os.ReadFile(filepath.Join(r.dir, "registry.log"))
			t.Fatalf("docker-registry exited: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry does not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the registry and waits for it to exit.
func (r *testRegistry) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// relay forwards each connection to the registry, counting the bytes sent
// to it; past stopAfter it stops the registry and drops the connections.
func (r *testRegistry) relay(ln net.Listener) {
	var mu sync.Mutex
	var conns []net.Conn
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", r.addr)
			if err != nil {
				return
			}
			defer s.Close()
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go io.Copy(c, s)
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if lim := r.stopAfter.Load(); lim > 0 && r.up.Add(int64(n)) > lim {
						r.stopAfter.Store(0)
						r.stop()
						mu.Lock()
						for _, x := range conns {
							x.Close()
						}
						mu.Unlock()
						return
					}
					if _, err := s.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// transferResult is the result line of ckpt push or pull --json.
type transferResult struct {
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
	Transfer struct {
		Blobs        int    `json:"blobs"`
		Bytes        int64  `json:"bytes"`
		Skipped      int    `json:"blobsSkipped"`
		SkippedBytes int64  `json:"bytesSkipped"`
		Moved        int64  `json:"bytesMoved"`
		Digest       string `json:"digest"`
	} `json:"transfer"`
}

func parseTransfer(t *testing.T, out string) transferResult {
	t.Helper()
	jsonLines(t, out)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r transferResult
		if strings.Contains(l, `"type":"result"`) {
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatalf("no result line in %q", out)
	return transferResult{}
}

// A checkpoint goes through a real registry with TLS and a password:
// refused without the credentials or the CA, pushed, pushed again after a
// small change sending only what changed, cut off by the registry stopping
// in the middle of a push (nothing under the tag; the next push sends only
// what is missing), then pulled into another store and resumed with its
// memory into a removed container.
func TestRegistryPushPullResume(t *testing.T) {
	e := newEnv(t)
	reg := startRegistry(t)
	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol, allocMB: 64})
	e.waitCounter(name, 2)
	e.mustCkpt("save", "--leave-running", name+":first")
	repo := reg.host + "/team/" + name
	creds := "DOCKER_CONFIG=" + reg.config
	ckpt := func(env string, args ...string) result { t.Helper(); return e.ckptEnv([]string{env}, args...) }

	// Refusals: no credentials, then no CA.
	r := ckpt("DOCKER_CONFIG="+t.TempDir(), "push", "--ca-file", reg.ca, name+":first", repo+":first")
	if r.code != 1 || !strings.Contains(r.stderr, "docker login "+reg.host) {
		t.Fatalf("push without credentials: exit %d %s", r.code, r.stderr)
	}
	r = ckpt(creds, "push", name+":first", repo+":first")
	if r.code != 1 || !strings.Contains(r.stderr, "--ca-file") {
		t.Fatalf("push without the CA: exit %d %s", r.code, r.stderr)
	}

	r = ckpt(creds, "push", "--json", "--ca-file", reg.ca, name+":first", repo+":first")
	first := parseTransfer(t, r.stdout)
	if r.code != 0 || !first.OK || first.Transfer.Moved != first.Transfer.Bytes || first.Transfer.Blobs < 10 {
		t.Fatalf("first push: exit %d %+v", r.code, first)
	}

	// By digest, into another store.
	r = ckpt(creds, "pull", "--json", "--ca-file", reg.ca, repo+"@"+first.Transfer.Digest, "CKPT_STORE="+t.TempDir())
	if byDigest := parseTransfer(t, r.stdout); r.code != 0 || byDigest.Transfer.Moved != byDigest.Transfer.Bytes || byDigest.Transfer.Digest != first.Transfer.Digest {
		t.Fatalf("pull by digest: exit %d %+v", r.code, byDigest)
	}

	// A little of the memory changes: the second push sends a part.
	if _, code := e.call(name, "POST", "/touch?pct=10"); code != 200 {
		t.Fatalf("POST /touch: %d", code)
	}
	e.waitCounter(name, e.waitState(name).Counter+1)
	e.mustCkpt("save", "--leave-running", name+":second")
	r = ckpt(creds, "push", "--json", "--ca-file", reg.ca, name+":second", repo+":second")
	second := parseTransfer(t, r.stdout)
	if r.code != 0 || second.Transfer.Skipped == 0 || second.Transfer.Moved*2 > second.Transfer.Bytes {
		t.Fatalf("second push sent more than half: exit %d %+v", r.code, second)
	}
	t.Logf("second push sent %d of %d bytes (%d of %d blobs were there)", second.Transfer.Moved, second.Transfer.Bytes, second.Transfer.Skipped, second.Transfer.Blobs)

	// Encrypted to a key: a second push shares the unchanged chunks too;
	// a pull needs the private key, and gets the checkpoint whole.
	keys := t.TempDir()
	key := filepath.Join(keys, "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key+"-other").Run()
	secret := reg.host + "/team/secret-" + name
	ckpt(creds, "push", "--ca-file", reg.ca, "--recipient", key+".pub", name+":first", secret+":first").must(t)
	r = ckpt(creds, "push", "--json", "--ca-file", reg.ca, "--recipient", key+".pub", name+":second", secret+":second")
	if sealed := parseTransfer(t, r.stdout); r.code != 0 || sealed.Transfer.Skipped == 0 || sealed.Transfer.Moved*2 > sealed.Transfer.Bytes {
		t.Fatalf("a second encrypted push sent more than half: exit %d %+v", r.code, sealed)
	}
	r = ckpt(creds, "push", "--json", "--ca-file", reg.ca, "--recipient", key+".pub", name+":second", secret+":again")
	if again := parseTransfer(t, r.stdout); r.code != 0 || again.Transfer.Skipped != again.Transfer.Blobs {
		t.Fatalf("an encrypted push of what the registry has sent something: exit %d %+v", r.code, again)
	}
	sealedStore := t.TempDir()
	for _, tc := range []struct{ args, want string }{
		{"", "the checkpoint is encrypted"},
		{key + "-other", "no identity matches"},
	} {
		args := []string{"pull", "--ca-file", reg.ca, secret + ":second", "CKPT_STORE=" + sealedStore}
		if tc.args != "" {
			args = append(args, "--identity", tc.args)
		}
		if r := ckpt(creds, args...); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Fatalf("pull of an encrypted checkpoint with %q: exit %d %s", tc.args, r.code, r.stderr)
		}
	}
	for range 2 { // the second time, it has it
		ckpt(creds, "pull", "--ca-file", reg.ca, "--identity", key, secret+":second", "CKPT_STORE="+sealedStore).must(t)
	}
	if st, err := store.Open(sealedStore); err != nil {
		t.Fatal(err)
	} else if ck, err := st.Load(name, "second"); err != nil {
		t.Fatal(err)
	} else if err := ck.Verify(context.Background()); err != nil {
		t.Fatalf("the encrypted checkpoint pulled: %v", err)
	}

	// The registry stops in the middle of a push to a new repository.
	before := e.waitCounter(name, e.waitState(name).Counter)
	e.mustCkpt("save", name+":third")
	other := reg.host + "/team/other-" + name
	reg.stopAfter.Store(16 << 20)
	r = ckpt(creds, "push", "--ca-file", reg.ca, name+":third", other+":v1")
	if r.code != 1 || !strings.Contains(r.stderr, "the tag was not changed") {
		t.Fatalf("push cut off: exit %d %s", r.code, r.stderr)
	}
	reg.start(registryBin(t))
	elsewhere := "CKPT_STORE=" + t.TempDir() // another host's store
	r = ckpt(creds, "pull", "--ca-file", reg.ca, other+":v1", elsewhere)
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("pull of a tag a cut-off push never set: exit %d %s", r.code, r.stderr)
	}
	r = ckpt(creds, "push", "--json", "--ca-file", reg.ca, name+":third", other+":v1")
	third := parseTransfer(t, r.stdout)
	if r.code != 0 || third.Transfer.Skipped == 0 {
		t.Fatalf("push after the cut: exit %d %+v", r.code, third)
	}

	// Another host: no container, no volume, an empty store.
	removeContainer(t, name)
	if err := docker.VolumeRemove(context.Background(), vol, false); err != nil {
		t.Fatal(err)
	}
	// That store does not trust this one: the pulled checkpoint would come
	// back as data only, which --require-memory refuses, creating nothing.
	r = ckpt(creds, "resume", "--require-memory", "--ca-file", reg.ca, "--from", other+":v1", elsewhere)
	if r.code != 1 || !strings.Contains(r.stderr, "is not trusted: it is signed by key SHA256:") || e.inspect(name) != nil {
		t.Fatalf("untrusted resume --from --require-memory: exit %d %s", r.code, r.stderr)
	}
	// Once it trusts this store, the same comes back whole.
	ckpt(creds, "trust", "add", "host1", e.storeKey(e.store), elsewhere).must(t)
	ckpt(creds, "resume", "--ca-file", reg.ca, "--from", other+":v1", elsewhere).must(t)
	e.assertContinues(name, before)
	r = ckpt(creds, "pull", "--json", "--ca-file", reg.ca, other+":v1", elsewhere)
	if again := parseTransfer(t, r.stdout); r.code != 0 || again.Transfer.Moved != 0 {
		t.Fatalf("a second pull of the same checkpoint moved data: exit %d %+v", r.code, again)
	}

	// A chunk damaged in the registry's storage: the pull is refused and
	// leaves nothing in the store.
	st, err := store.Open(e.store)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := st.Load(name, "first")
	if err != nil {
		t.Fatal(err)
	}
	var sum string
	for _, f := range ck.Manifest.Files {
		if len(f.Chunks) > 0 {
			sum = f.Chunks[len(f.Chunks)-1].SHA256
		}
	}
	blob := filepath.Join(reg.dir, "data/docker/registry/v2/blobs/sha256", sum[:2], sum, "data")
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	write(t, blob, string(b))
	fresh := t.TempDir()
	r = ckpt(creds, "pull", "--ca-file", reg.ca, repo+":first", "CKPT_STORE="+fresh)
	if r.code != 1 || !strings.Contains(r.stderr, "the checkpoint in the registry is invalid") || !strings.Contains(r.stderr, "sha256 mismatch") {
		t.Fatalf("pull of a damaged blob: exit %d %s", r.code, r.stderr)
	}
	left, _ := filepath.Glob(filepath.Join(fresh, format.ContainersDir, "*", format.CheckpointsDir, "*"))
	if chunks, _ := filepath.Glob(filepath.Join(fresh, format.ChunksDir, "sha256", "*")); len(chunks) > 0 || len(left) > 0 {
		t.Fatalf("a refused pull left %d chunks and %v", len(chunks), left)
	}
}

func (r result) must(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	return r
}

// A checkpoint saved on this host's engine and pushed is pulled and resumed
// with its memory on another engine: one of scripts/engines.sh, with its
// own Docker, containerd and runc, its own mount and network namespaces,
// and its own store. The registry's storage is served there by a registry
// of its own (the other namespace cannot reach this one's loopback): the
// same blobs, the same TLS and passwords. make engine-matrix runs this test
// for each engine, with CKPT_TEST_OTHER_ENGINE naming it, once that
// engine's suite has passed. It comes back with its memory on every one:
// on Docker 28 and later through ckpt's runtime.
func TestRegistryAnotherEngine(t *testing.T) {
	e := newEnv(t) // skips, or fails, where the suite cannot run
	other := os.Getenv("CKPT_TEST_OTHER_ENGINE")
	if other == "" {
		t.Fatal("CKPT_TEST_OTHER_ENGINE names no engine of scripts/engines.sh: make engine-matrix runs this test with it")
	}
	cache := os.Getenv("CKPT_ENGINES_CACHE")
	if cache == "" {
		cache = "/var/cache/ckpt-engines"
	}
	root := filepath.Join(cache, other, "root")
	pid, err := os.ReadFile(filepath.Join(root, "run/docker.pid"))
	if err != nil {
		t.Fatalf("engine %s is not running (scripts/engines.sh start %s): %v", other, other, err)
	}
	// there runs a command in the other engine's namespaces.
	there := func(env []string, args ...string) *exec.Cmd {
		cmd := exec.Command("nsenter", append([]string{"-t", strings.TrimSpace(string(pid)), "-m", "-n", "--"}, args...)...)
		for _, v := range os.Environ() {
			if !strings.HasPrefix(v, "DOCKER_HOST=") {
				cmd.Env = append(cmd.Env, v)
			}
		}
		cmd.Env = append(cmd.Env, env...)
		return cmd
	}
	output := func(args ...string) (string, error) {
		out, err := there(nil, args...).CombinedOutput()
		return string(out), err
	}
	version, err := output("docker", "version", "--format", "{{.Server.Version}}")
	if err != nil {
		t.Fatalf("engine %s: %v %s", other, err, version)
	}
	t.Logf("the other engine: Docker %s", strings.TrimSpace(version))
	if err := os.MkdirAll(filepath.Join(root, "var/tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(filepath.Join(root, "var/tmp"), "ckpt-xhost-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	inside := func(p string) string { return strings.TrimPrefix(p, root) }
	reg := startRegistryAt(t, filepath.Join(dir, "registry"), root)

	name, vol := e.name("app"), e.name("data")
	e.startApp(name, appOpts{volume: vol, allocMB: 32})
	before := e.waitCounter(name, 3)
	history, _ := e.call(name, "GET", "/read?path=/data/history.log")
	e.mustCkpt("save", name)
	ref := reg.host + "/team/" + name + ":moved"
	e.ckptEnv([]string{"DOCKER_CONFIG=" + reg.config}, "push", "--ca-file", reg.ca, name, ref).must(t)
	reg.stop() // this host's side of the registry; its storage stays

	// The image, with its id, as docker pull would bring it there.
	save := exec.Command("docker", "save", testImage)
	load := there(nil, "docker", "load")
	load.Stdin, _ = save.StdoutPipe()
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	if err := save.Run(); err != nil {
		t.Fatal(err)
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("docker load into %s: %v", other, err)
	}
	t.Cleanup(func() {
		output("docker", "rm", "-f", name)
		output("docker", "volume", "rm", vol)
	})

	// The registry there, on the same address.
	srv := there(nil, "/opt/ckpt/bin/docker-registry", "serve", inside(filepath.Join(reg.dir, "config-ns.yml")))
	logf, err := os.Create(filepath.Join(dir, "registry-ns.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	deadline := time.Now().Add(patience(60 * time.Second))
	for {
		// 401 (exit 1) is an answer: it runs.
		err := there(nil, "/opt/ckpt/bin/testapp", "get", "https://"+reg.host+"/v2/", inside(reg.ca)).Run()
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("the registry in %s does not answer: %v\n%s", other, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Pull and resume there, in a store that trusts this one.
	trust := there([]string{"CKPT_STORE=" + inside(filepath.Join(dir, "store"))}, "/opt/ckpt/bin/ckpt", "trust", "add", "host1", e.storeKey(e.store))
	if out, err := trust.CombinedOutput(); err != nil {
		t.Fatalf("ckpt trust add on %s: %v %s", other, err, out)
	}
	res := there([]string{"DOCKER_CONFIG=" + inside(reg.config), "CKPT_STORE=" + inside(filepath.Join(dir, "store"))},
		"/opt/ckpt/bin/ckpt", "resume", "--ca-file", inside(reg.ca), "--from", ref)
	out, err := res.CombinedOutput()
	t.Logf("ckpt resume --from %s on %s: %v\n%s", ref, other, err, out)
	if err != nil {
		t.Fatal("resume on the other engine failed")
	}
	port, err := output("docker", "port", name, "8080/tcp")
	if err != nil {
		t.Fatalf("docker port: %v %s", err, port)
	}
	url := "http://" + strings.TrimSpace(strings.Split(port, "\n")[0])
	get := func(path string) string {
		for deadline := time.Now().Add(patience(30 * time.Second)); ; {
			out, err := output("/opt/ckpt/bin/testapp", "get", url+path)
			if err == nil {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("the resumed app on %s does not answer: %v %s", other, err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var after appState
	if err := json.Unmarshal([]byte(get("/state")), &after); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(get("/read?path=/data/history.log"), history) {
		t.Fatalf("the volume's history did not move to %s", other)
	}
	if after.ID != before.ID || after.Counter < before.Counter {
		t.Fatalf("memory was not restored on %s: id %s counter %d before, id %s counter %d after", other, before.ID, before.Counter, after.ID, after.Counter)
	}
	t.Logf("resumed on %s with its memory: id %s, counter %d -> %d", other, after.ID, before.Counter, after.Counter)
}
