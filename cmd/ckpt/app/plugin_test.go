package app

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The docker CLI first asks for the metadata, with no other argument.
func TestPluginMetadata(t *testing.T) {
	noEnv(t)
	var out, errOut strings.Builder
	code := Main([]string{"/usr/lib/docker/cli-plugins/docker-ckpt", "docker-cli-plugin-metadata"}, &out, &errOut)
	if code != exitOK || errOut.String() != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	var meta map[string]string
	if err := json.Unmarshal([]byte(out.String()), &meta); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	want := map[string]string{
		"SchemaVersion":    "0.1.0",
		"Vendor":           "ckpt",
		"Version":          Version,
		"ShortDescription": "Save containers whole (memory, volumes, writable layer) and resume them",
		"URL":              "https://github.com/ckpt-dev/ckpt",
	}
	if len(meta) != len(want) {
		t.Errorf("metadata %q, want %q", meta, want)
	}
	for k, v := range want {
		if meta[k] != v {
			t.Errorf("%s = %q, want %q", k, meta[k], v)
		}
	}
	// Only a binary named docker-ckpt answers.
	out.Reset()
	if code := Main([]string{"ckpt", "docker-cli-plugin-metadata"}, &out, &errOut); code == exitOK || strings.Contains(out.String(), "SchemaVersion") {
		t.Errorf("ckpt answered the plugin call: exit %d, %s", code, out.String())
	}
}

func TestParseDockerOptions(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    dockerOptions
		rest    string
		wantErr string
		notCall bool
	}{
		{args: []string{"ckpt", "ls", "--json"}, rest: "ls --json"},
		{args: []string{"ckpt"}, rest: ""},
		{args: []string{"--context", "prod", "ckpt", "ls"}, want: dockerOptions{context: "prod"}, rest: "ls"},
		{args: []string{"--context=prod", "ckpt", "ls"}, want: dockerOptions{context: "prod"}, rest: "ls"},
		{args: []string{"-c", "prod", "ckpt", "ls"}, want: dockerOptions{context: "prod"}, rest: "ls"},
		{args: []string{"-cprod", "ckpt", "ls"}, want: dockerOptions{context: "prod"}, rest: "ls"},
		{args: []string{"-c=prod", "ckpt", "ls"}, want: dockerOptions{context: "prod"}, rest: "ls"},
		// A context named ckpt is an option's value, not the plugin's name.
		{args: []string{"--context", "ckpt", "ckpt", "rm", "web"}, want: dockerOptions{context: "ckpt"}, rest: "rm web"},
		{args: []string{"-H", "unix:///run/other.sock", "ckpt", "save", "web"}, want: dockerOptions{host: "unix:///run/other.sock"}, rest: "save web"},
		{args: []string{"--host=tcp://10.0.0.1:2375", "ckpt", "ls"}, want: dockerOptions{host: "tcp://10.0.0.1:2375"}, rest: "ls"},
		{args: []string{"--config", "/etc/dockercfg", "ckpt", "push", "web", "reg/web"}, want: dockerOptions{config: "/etc/dockercfg"}, rest: "push web reg/web"},
		// Harmless options are ignored.
		{args: []string{"--log-level", "debug", "-D", "ckpt", "ls"}, rest: "ls"},
		{args: []string{"-l=warn", "--debug=false", "ckpt", "ls"}, rest: "ls"},
		{args: []string{"-Dl", "debug", "ckpt", "ls"}, rest: "ls"},
		{args: []string{"-DH", "unix:///x.sock", "ckpt", "ls"}, want: dockerOptions{host: "unix:///x.sock"}, rest: "ls"},
		{args: []string{"--tls=false", "ckpt", "ls"}, rest: "ls"},
		{args: []string{"--", "ckpt", "ls"}, rest: "ls"},
		// ckpt's own options after ckpt are ckpt's.
		{args: []string{"-c", "prod", "ckpt", "--store", "/s", "ls", "-q"}, want: dockerOptions{context: "prod"}, rest: "--store /s ls -q"},

		{args: []string{"--tlsverify", "ckpt", "ls"}, wantErr: "ckpt does not take the docker CLI's TLS options (--tlsverify)"},
		{args: []string{"--tls", "ckpt", "ls"}, wantErr: "ckpt does not take the docker CLI's TLS options (--tls)"},
		{args: []string{"--tlscacert", "/ca.pem", "ckpt", "ls"}, wantErr: "ckpt does not take the docker CLI's TLS options (--tlscacert)"},
		{args: []string{"--tlscert=/c.pem", "ckpt", "ls"}, wantErr: "ckpt does not take the docker CLI's TLS options (--tlscert)"},
		{args: []string{"-H", "a", "-H", "b", "ckpt"}, wantErr: "specify only one -H"},
		{args: []string{"--context"}, wantErr: "docker option --context needs a value"},
		{args: []string{"-H"}, wantErr: "docker option -H needs a value"},
		{args: []string{"--debug=maybe", "ckpt"}, wantErr: `docker option --debug takes true or false, not "maybe"`},
		{args: []string{"--bogus", "ckpt", "ls"}, wantErr: "unknown docker option --bogus", notCall: true},
		{args: []string{"-x", "ckpt", "ls"}, wantErr: "unknown docker option -x", notCall: true},
		{args: []string{"--store", "/s", "ls"}, wantErr: "unknown docker option --store", notCall: true},
		{args: []string{"ls"}, wantErr: `"ls" where the docker CLI puts "ckpt"`, notCall: true},
		{args: []string{"-c", "prod"}, wantErr: `no "ckpt" in the arguments`, notCall: true},
		{args: []string{"--", "ls"}, wantErr: `no "ckpt" after "--"`, notCall: true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, rest, err := parseDockerOptions(tc.args)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if errors.Is(err, errNotPluginCall) != tc.notCall {
					t.Errorf("errNotPluginCall %v, want %v", !tc.notCall, tc.notCall)
				}
				if !errors.As(err, new(usageError)) {
					t.Errorf("%v is not a usage error", err)
				}
				if hintFor(err) == "" {
					t.Errorf("%v has no hint", err)
				}
				return
			}
			if err != nil || got != tc.want || strings.Join(rest, " ") != tc.rest {
				t.Errorf("got %+v %q %v, want %+v %q", got, rest, err, tc.want, tc.rest)
			}
		})
	}
}

// dockerConfig is a docker CLI configuration directory with contexts.
type dockerConfig struct {
	t   *testing.T
	dir string
}

func newDockerConfig(t *testing.T) dockerConfig {
	return dockerConfig{t, t.TempDir()}
}

func contextID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// context adds context name with the docker endpoint's host and the TLS
// files given, as docker context create writes them.
func (c dockerConfig) context(name, host string, skipVerify bool, tlsFiles ...string) {
	c.t.Helper()
	meta := map[string]any{
		"Name":      name,
		"Metadata":  map[string]any{},
		"Endpoints": map[string]any{"docker": map[string]any{"Host": host, "SkipTLSVerify": skipVerify}},
	}
	c.write(filepath.Join("contexts", "meta", contextID(name), "meta.json"), meta)
	for _, f := range tlsFiles {
		path := filepath.Join(c.dir, "contexts", "tls", contextID(name), "docker", f)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("pem"), 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c dockerConfig) write(rel string, v any) {
	c.t.Helper()
	path := filepath.Join(c.dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		c.t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func TestEngineEnv(t *testing.T) {
	cfg := newDockerConfig(t)
	cfg.context("other", "unix:///run/other.sock", false)
	cfg.context("plain", "tcp://10.0.0.1:2375", false)
	cfg.context("noport", "10.0.0.1", false)
	cfg.context("tls", "tcp://10.0.0.2:2376", false, "ca.pem", "cert.pem", "key.pem")
	cfg.context("insecure", "tcp://10.0.0.3:2376", true, "ca.pem", "cert.pem", "key.pem")
	cfg.context("partial", "tcp://10.0.0.4:2376", false, "ca.pem")
	cfg.context("skiponly", "tcp://10.0.0.5:2376", true)
	cfg.context("socket-tls", "unix:///run/x.sock", false, "ca.pem")
	cfg.context("ssh", "ssh://me@far", false)
	cfg.context("nohost", "", false)
	cfg.write(filepath.Join("contexts", "meta", contextID("k8s"), "meta.json"), map[string]any{"Name": "k8s", "Endpoints": map[string]any{"kubernetes": map[string]any{}}})
	tlsDir := func(name string) string { return filepath.Join(cfg.dir, "contexts", "tls", contextID(name), "docker") }
	noTLS := map[string]string{envDockerCertPath: "", envDockerTLSVerify: ""}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}

	current := newDockerConfig(t)
	current.context("other", "unix:///run/current.sock", false)
	current.write("config.json", map[string]any{"currentContext": "other", "auths": map[string]any{}})

	for _, tc := range []struct {
		name    string
		opts    dockerOptions
		env     map[string]string // the environment ckpt runs in
		want    map[string]string
		wantErr string
	}{
		{name: "nothing given", want: map[string]string{}},
		{name: "-H", opts: dockerOptions{host: "unix:///run/h.sock"}, want: map[string]string{envDockerHost: "unix:///run/h.sock"}},
		{name: "-H over DOCKER_CONTEXT", opts: dockerOptions{host: "unix:///run/h.sock"}, env: map[string]string{envDockerContext: "other"},
			want: map[string]string{envDockerHost: "unix:///run/h.sock"}},
		{name: "-H host:port", opts: dockerOptions{host: "10.1.1.1:2375"}, want: map[string]string{envDockerHost: "tcp://10.1.1.1:2375"}},
		{name: "-H tcp without a port", opts: dockerOptions{host: "tcp://10.1.1.1"}, want: map[string]string{envDockerHost: "tcp://10.1.1.1:2375"}},
		{name: "-H unix:// alone", opts: dockerOptions{host: "unix://"}, want: map[string]string{envDockerHost: "unix:///var/run/docker.sock"}},
		{name: "-H ssh", opts: dockerOptions{host: "ssh://me@far"}, wantErr: "ckpt cannot reach an engine over ssh (ssh://me@far)"},
		{name: "-H npipe", opts: dockerOptions{host: "npipe:////./pipe/docker_engine"}, wantErr: "ckpt cannot reach an engine at npipe:////./pipe/docker_engine"},
		{name: "-H and --context", opts: dockerOptions{host: "unix:///a", context: "other"}, wantErr: "conflicting options: cannot specify both --host and --context"},
		{name: "--context", opts: dockerOptions{context: "other"}, want: with(noTLS, envDockerHost, "unix:///run/other.sock")},
		{name: "--context over DOCKER_HOST", opts: dockerOptions{context: "other"}, env: map[string]string{envDockerHost: "unix:///env.sock"},
			want: with(noTLS, envDockerHost, "unix:///run/other.sock")},
		{name: "--context default", opts: dockerOptions{context: "default"}, want: map[string]string{}},
		{name: "plain tcp", opts: dockerOptions{context: "plain"}, want: with(noTLS, envDockerHost, "tcp://10.0.0.1:2375")},
		{name: "a bare address", opts: dockerOptions{context: "noport"}, want: with(noTLS, envDockerHost, "tcp://10.0.0.1:2375")},
		{name: "tls", opts: dockerOptions{context: "tls"},
			want: map[string]string{envDockerHost: "tcp://10.0.0.2:2376", envDockerCertPath: tlsDir("tls"), envDockerTLSVerify: "1"}},
		{name: "tls without verification", opts: dockerOptions{context: "insecure"},
			want: map[string]string{envDockerHost: "tcp://10.0.0.3:2376", envDockerCertPath: tlsDir("insecure"), envDockerTLSVerify: ""}},
		{name: "tls files missing", opts: dockerOptions{context: "partial"}, wantErr: `docker context "partial" uses TLS with ca.pem only: ckpt needs ca.pem, cert.pem and key.pem`},
		{name: "tls without files", opts: dockerOptions{context: "skiponly"}, wantErr: `docker context "skiponly" uses TLS with no files only: ckpt needs ca.pem, cert.pem and key.pem`},
		{name: "a socket needs no tls", opts: dockerOptions{context: "socket-tls"}, want: with(noTLS, envDockerHost, "unix:///run/x.sock")},
		{name: "ssh context", opts: dockerOptions{context: "ssh"}, wantErr: `docker context "ssh": ckpt cannot reach an engine over ssh (ssh://me@far)`},
		{name: "a context without a host", opts: dockerOptions{context: "nohost"}, want: with(noTLS, envDockerHost, "")},
		{name: "a context without a docker endpoint", opts: dockerOptions{context: "k8s"}, wantErr: `docker context "k8s" has no docker endpoint`},
		{name: "no such context", opts: dockerOptions{context: "gone"}, wantErr: `docker context "gone" does not exist (no ` + filepath.Join(cfg.dir, "contexts", "meta", contextID("gone"), "meta.json") + ")"},
		{name: "DOCKER_HOST wins over DOCKER_CONTEXT", env: map[string]string{envDockerHost: "unix:///env.sock", envDockerContext: "other"}, want: map[string]string{}},
		{name: "DOCKER_CONTEXT", env: map[string]string{envDockerContext: "other"}, want: with(noTLS, envDockerHost, "unix:///run/other.sock")},
		{name: "--config with currentContext", opts: dockerOptions{config: current.dir},
			want: with(noTLS, envDockerHost, "unix:///run/current.sock", envDockerConfig, current.dir)},
		{name: "DOCKER_CONFIG with currentContext", env: map[string]string{envDockerConfig: current.dir},
			want: with(noTLS, envDockerHost, "unix:///run/current.sock")},
		{name: "DOCKER_CONTEXT over currentContext", env: map[string]string{envDockerConfig: current.dir, envDockerContext: "default"}, want: map[string]string{}},
		{name: "-H over currentContext", opts: dockerOptions{config: current.dir, host: "unix:///h"},
			want: map[string]string{envDockerHost: "unix:///h", envDockerConfig: current.dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				if k == envDockerConfig {
					return cfg.dir
				}
				return ""
			}
			home := func() (string, error) { return "", errors.New("no home in this test") }
			got, err := tc.opts.engineEnv(getenv, home)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if hintFor(err) == "" {
					t.Errorf("%v has no hint", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("env %q, want %q", got, tc.want)
			}
			for k, v := range tc.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %q (set %v), want %q; env %q", k, g, ok, v, got)
				}
			}
		})
	}

	// Without a home, only a named context needs the configuration.
	none := func(string) string { return "" }
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	if got, err := (dockerOptions{}).engineEnv(none, noHome); err != nil || len(got) != 0 {
		t.Errorf("no home, no context: %q, %v", got, err)
	}
	if _, err := (dockerOptions{context: "other"}).engineEnv(none, noHome); err == nil ||
		err.Error() != `cannot find docker context "other": no home directory, no DOCKER_CONFIG` {
		t.Errorf("no home, a context: %v", err)
	}

	// Without DOCKER_CONFIG or --config, the configuration is in ~/.docker.
	homeDir := t.TempDir()
	home := newDockerConfig(t)
	home.dir = filepath.Join(homeDir, ".docker")
	home.context("other", "unix:///run/home.sock", false)
	got, err := dockerOptions{context: "other"}.engineEnv(func(string) string { return "" }, func() (string, error) { return homeDir, nil })
	if err != nil || got[envDockerHost] != "unix:///run/home.sock" {
		t.Errorf("from ~/.docker: %q, %v", got, err)
	}
}

// TestPluginCall runs ckpt as the docker CLI runs its plugin, and checks
// what it makes of the docker CLI's options.
func TestPluginCall(t *testing.T) {
	noEnv(t)
	cfg := newDockerConfig(t)
	cfg.context("other", "unix:///run/other.sock", false)
	for _, k := range []string{envDockerHost, envDockerContext, envDockerCertPath, envDockerTLSVerify, pluginSocketEnv} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv(envDockerConfig, cfg.dir)
	t.Setenv(pluginReexecEnv, "docker")
	store := filepath.Join(t.TempDir(), "store")

	plugin := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := Main(append([]string{"/usr/libexec/docker/cli-plugins/docker-ckpt"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, stdout, stderr := plugin("--context", "other", "--log-level", "debug", "ckpt", "--store", store, "ls")
	if code != exitOK || stderr != "" || stdout == "" {
		t.Errorf("ls through the plugin: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := os.Getenv(envDockerHost); got != "unix:///run/other.sock" {
		t.Errorf("DOCKER_HOST = %q, want the context's host", got)
	}

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--bogus", "ckpt", "ls"}, exitUsage, "ckpt: error: unknown docker option --bogus\nckpt: hint: " + knownDockerOptions + "\n"},
		{[]string{"--tlsverify", "ckpt", "ls"}, exitUsage, "ckpt: error: ckpt does not take the docker CLI's TLS options (--tlsverify)\nckpt: hint: "},
		{[]string{"-H", "unix:///a", "-c", "other", "ckpt", "ls"}, exitUsage, "ckpt: error: conflicting options: cannot specify both --host and --context\n"},
		{[]string{"--context", "gone", "ckpt", "ls"}, exitError, `ckpt: error: docker context "gone" does not exist`},
	} {
		code, stdout, stderr := plugin(tc.args...)
		if code != tc.code || stdout != "" || !strings.HasPrefix(stderr, tc.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", tc.args, code, stdout, stderr, tc.code, tc.stderr)
		}
	}

	// Run by hand, not by the docker CLI, docker-ckpt is ckpt.
	os.Unsetenv(pluginReexecEnv)
	code, stdout, stderr = plugin("--store", store, "ls")
	if code != exitOK || stderr != "" || stdout == "" {
		t.Errorf("docker-ckpt ls: exit %d\n%s%s", code, stdout, stderr)
	}
}

// The docker CLI forwards "docker ckpt ...<TAB>" as cobra's completion
// request.
func TestPluginComplete(t *testing.T) {
	noEnv(t)
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"hoo"}, "hook\thost hooks: save selected containers before shutdown, resume them at boot\n:4\n"},
		{[]string{"hook", "run", ""}, "shutdown\tsave the running containers the policy selects\nboot\tresume what the last shutdown hook saved\n:4\n"},
		{[]string{"hook", "run", "shutdown", "--dr"}, "--dry-run\tsay what the hook would save and why; change nothing\n:4\n"},
		{[]string{"--store", "/s", "policy", "check", "--policy", "-"}, "--unit-dir\tsystemd unit DIR\n--json\tprint JSON lines on stdout: one object per line, with a type and a command\n--help\tshow help\n-h\tshow help\n:4\n"},
		{[]string{"policy", "check", ""}, ":0\n"},
		{[]string{"nosuch", ""}, ":0\n"},
	} {
		var out, errOut strings.Builder
		code := Main(append([]string{"docker-ckpt", "__complete", "ckpt"}, tc.words...), &out, &errOut)
		if code != exitOK || errOut.String() != "" || out.String() != tc.want {
			t.Errorf("%q: exit %d, stderr %q\n got %q\nwant %q", tc.words, code, errOut.String(), out.String(), tc.want)
		}
	}
}

// The docker CLI closes its socket to ask the plugin to stop.
func TestWatchPluginSocket(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "cli.sock")
	l, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stopped := make(chan struct{})
	watchPluginSocket(addr, func() { close(stopped) })
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
		t.Fatal("stopped while the docker CLI is there")
	case <-time.After(50 * time.Millisecond):
	}
	conn.Close()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("not stopped when the docker CLI closed the socket")
	}
	watchPluginSocket("", func() { t.Error("stopped without a socket") })
	watchPluginSocket(filepath.Join(t.TempDir(), "none.sock"), func() { t.Error("stopped without a socket") })
}
