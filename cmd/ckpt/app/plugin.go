package app

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/hint"
)

// The binary installed as docker-ckpt in a Docker CLI plugin directory
// (~/.docker/cli-plugins, /usr/local/lib/docker/cli-plugins) makes
// "docker ckpt save web" work. The docker CLI first asks the plugin for its
// metadata ("docker-ckpt docker-cli-plugin-metadata"), then runs it with
// the arguments it was given itself: its global options, the plugin's
// name, then the plugin's arguments. "docker --context prod ckpt save web"
// runs "docker-ckpt --context prod ckpt save web", with
// DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND set to how the docker CLI was run
// and DOCKER_CLI_PLUGIN_SOCKET to a socket it closes to ask the plugin to
// stop. The plugin handles the global options itself (docker/cli:
// cli-plugins/manager.PluginRunCommand, cli-plugins/plugin.RunPlugin).
const (
	pluginName           = "docker-ckpt"
	pluginMetadataSubcmd = "docker-cli-plugin-metadata"
	pluginCommand        = "ckpt"
	// pluginCompleteSubcmd is cobra's completion request, which the docker
	// CLI forwards to the plugin for "docker ckpt ...<TAB>".
	pluginCompleteSubcmd = "__complete"
	// pluginReexecEnv is set by the docker CLI when it runs a plugin.
	pluginReexecEnv = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"
	// pluginSocketEnv names the socket the docker CLI closes when it is
	// interrupted and its output is not a terminal.
	pluginSocketEnv = "DOCKER_CLI_PLUGIN_SOCKET"
)

// pluginMetadata is what the docker CLI expects from a plugin.
type pluginMetadata struct {
	SchemaVersion    string
	Vendor           string
	Version          string
	ShortDescription string
	URL              string
}

// asPlugin handles the docker CLI's plugin protocol when ckpt runs as
// docker-ckpt. It returns the arguments to run, or done and the exit code
// when it answered the call itself (the metadata, a completion request) or
// refused it. It sets the environment that makes ckpt reach the engine the
// docker CLI's options name, and calls cancel when the docker CLI asks the
// plugin to stop. Run by hand with arguments that are not a plugin call
// ("docker-ckpt ls"), docker-ckpt is ckpt.
func asPlugin(args []string, stdout, stderr io.Writer, cancel func()) (_ []string, code int, done bool) {
	if len(args) < 2 || filepath.Base(args[0]) != pluginName {
		return args, 0, false
	}
	if args[1] == pluginMetadataSubcmd {
		writePluginMetadata(stdout)
		return nil, exitOK, true
	}
	if len(args) > 3 && args[1] == pluginCompleteSubcmd && args[2] == pluginCommand {
		completePlugin(args[3:], stdout)
		return nil, exitOK, true
	}
	var env map[string]string
	opts, rest, err := parseDockerOptions(args[1:])
	if errors.Is(err, errNotPluginCall) && os.Getenv(pluginReexecEnv) == "" {
		// docker-ckpt run by hand, as ckpt: "docker-ckpt ls".
		return args, 0, false
	}
	if err == nil {
		env, err = opts.engineEnv(os.Getenv, os.UserHomeDir)
	}
	if err != nil {
		printError(stderr, "", err)
		if errors.As(err, new(usageError)) {
			return nil, exitUsage, true
		}
		return nil, exitError, true
	}
	for k, v := range env {
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
	watchPluginSocket(os.Getenv(pluginSocketEnv), func() {
		fmt.Fprintln(stderr, "ckpt: the docker CLI was interrupted: cleaning up")
		cancel()
	})
	return append([]string{"ckpt"}, rest...), 0, false
}

// writePluginMetadata answers the docker CLI's metadata request: one JSON
// document, which the docker CLI reads whole.
func writePluginMetadata(w io.Writer) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(pluginMetadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "ckpt",
		Version:          Version,
		ShortDescription: "Save containers whole (memory, volumes, writable layer) and resume them",
		URL:              "https://github.com/ckpt-dev/ckpt",
	})
}

// dockerOptions are the docker CLI's global options a plugin call gave
// that matter to ckpt.
type dockerOptions struct {
	// host is -H, --host: the engine's address.
	host string
	// context is -c, --context: a docker context, which names the engine.
	context string
	// config is --config: the docker CLI's configuration directory.
	config string
}

// dockerFlag is a global option of the docker CLI (cli/flags.ClientOptions).
type dockerFlag struct {
	long, short string
	// value is true for an option that takes a value.
	value bool
	// set applies the option's value; nil ignores it.
	set func(o *dockerOptions, name, v string) error
}

var dockerFlags = []dockerFlag{
	{"config", "", true, func(o *dockerOptions, _, v string) error { o.config = v; return nil }},
	{"context", "c", true, func(o *dockerOptions, _, v string) error { o.context = v; return nil }},
	{"debug", "D", false, nil},
	{"host", "H", true, func(o *dockerOptions, _, v string) error {
		if o.host != "" {
			return hint.Wrap(usagef("specify only one -H"), "ckpt talks to one engine: give one address")
		}
		o.host = v
		return nil
	}},
	{"log-level", "l", true, nil},
	{"tls", "", false, func(o *dockerOptions, name, v string) error {
		if v == "false" {
			return nil
		}
		return tlsRefused(name)
	}},
	{"tlscacert", "", true, func(o *dockerOptions, name, _ string) error { return tlsRefused(name) }},
	{"tlscert", "", true, func(o *dockerOptions, name, _ string) error { return tlsRefused(name) }},
	{"tlskey", "", true, func(o *dockerOptions, name, _ string) error { return tlsRefused(name) }},
	{"tlsverify", "", false, func(o *dockerOptions, name, _ string) error { return tlsRefused(name) }},
}

func tlsRefused(name string) error {
	return hint.Wrap(usagef("ckpt does not take the docker CLI's TLS options (%s)", name),
		"set DOCKER_HOST, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY instead, or use a docker context that holds ca.pem, cert.pem and key.pem")
}

// errNotPluginCall marks arguments that are not a docker CLI plugin call:
// an option the docker CLI does not have, or no "ckpt" after the options.
var errNotPluginCall = errors.New("not a docker CLI plugin call")

// notPluginCall is errNotPluginCall with what is wrong.
type notPluginCall struct{ msg string }

func (e notPluginCall) Error() string        { return e.msg }
func (e notPluginCall) Is(target error) bool { return target == errNotPluginCall }

// knownDockerOptions is the hint of errors about them.
const knownDockerOptions = `before "ckpt", ckpt takes the docker CLI's -H/--host, -c/--context, --config, -D/--debug and -l/--log-level; ckpt's own options go after "ckpt"`

// parseDockerOptions reads the docker CLI's global options at the start of
// args, as the docker CLI's flag package does ("--name value",
// "--name=value", "-H value", "-Hvalue", "-Dl debug"), up to the word
// "ckpt"; it returns them and the arguments after "ckpt".
func parseDockerOptions(args []string) (dockerOptions, []string, error) {
	var o dockerOptions
	notCall := func(format string, a ...any) error {
		return hint.Wrap(usageError{err: notPluginCall{fmt.Sprintf(format, a...)}}, knownDockerOptions)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == pluginCommand:
			return o, args[i+1:], nil
		case a == "--":
			if i+1 < len(args) && args[i+1] == pluginCommand {
				return o, args[i+2:], nil
			}
			return o, nil, notCall(`no "ckpt" after "--"`)
		case strings.HasPrefix(a, "--"):
			name, v, hasValue := strings.Cut(a[2:], "=")
			f := findDockerFlag(func(f dockerFlag) bool { return f.long == name })
			if f == nil {
				return o, nil, notCall("unknown docker option --%s", name)
			}
			if f.value && !hasValue {
				if i+1 >= len(args) {
					return o, nil, needsValue("--" + name)
				}
				i++
				v = args[i]
			}
			if err := f.apply(&o, "--"+name, v, hasValue); err != nil {
				return o, nil, err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				c := a[j : j+1]
				f := findDockerFlag(func(f dockerFlag) bool { return f.short == c })
				if f == nil {
					return o, nil, notCall("unknown docker option -%s", c)
				}
				if !f.value {
					if err := f.apply(&o, "-"+c, "", false); err != nil {
						return o, nil, err
					}
					continue
				}
				v := strings.TrimPrefix(a[j+1:], "=")
				if v == "" {
					if i+1 >= len(args) {
						return o, nil, needsValue("-" + c)
					}
					i++
					v = args[i]
				}
				if err := f.apply(&o, "-"+c, v, true); err != nil {
					return o, nil, err
				}
				break
			}
		default:
			return o, nil, notCall("%q where the docker CLI puts %q", a, pluginCommand)
		}
	}
	return o, nil, notCall("no %q in the arguments", pluginCommand)
}

func needsValue(name string) error {
	return hint.Wrap(usagef("docker option %s needs a value", name), "give it one: "+name+" VALUE")
}

func findDockerFlag(match func(dockerFlag) bool) *dockerFlag {
	for i := range dockerFlags {
		if match(dockerFlags[i]) {
			return &dockerFlags[i]
		}
	}
	return nil
}

// apply gives f the value v; a boolean option without a value is true.
func (f *dockerFlag) apply(o *dockerOptions, name, v string, hasValue bool) error {
	if !f.value {
		if !hasValue {
			v = "true"
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return hint.Wrap(usagef("docker option %s takes true or false, not %q", name, v),
				"give "+name+" alone for true, or "+name+"=false")
		}
		v = strconv.FormatBool(b)
	}
	if f.set == nil {
		return nil
	}
	return f.set(o, name, v)
}

// Environment variables of the Docker client.
const (
	envDockerHost      = "DOCKER_HOST"
	envDockerContext   = "DOCKER_CONTEXT"
	envDockerConfig    = "DOCKER_CONFIG"
	envDockerCertPath  = "DOCKER_CERT_PATH"
	envDockerTLSVerify = "DOCKER_TLS_VERIFY"
)

// engineEnv returns the environment variables to set (an empty value
// unsets one) so that ckpt, which reads DOCKER_HOST, DOCKER_CERT_PATH,
// DOCKER_TLS_VERIFY and DOCKER_CONFIG, reaches the engine the docker CLI
// would and reads its configuration. The docker CLI picks the engine from
// -H; else --context; else DOCKER_HOST; else DOCKER_CONTEXT; else the
// currentContext of config.json; else the default context: DOCKER_HOST or
// the local socket.
func (o dockerOptions) engineEnv(getenv func(string) string, home func() (string, error)) (map[string]string, error) {
	env := map[string]string{}
	if o.host != "" && o.context != "" {
		return nil, hint.Wrap(usagef("conflicting options: cannot specify both --host and --context"), "give one of them")
	}
	configDir := o.config
	if configDir != "" {
		abs, err := filepath.Abs(configDir)
		if err != nil {
			return nil, err
		}
		configDir = abs
		env[envDockerConfig] = configDir
	} else if configDir = getenv(envDockerConfig); configDir == "" {
		// Without a home, there is no configuration: only a context
		// named on the command line or by DOCKER_CONTEXT needs one.
		homeDir, err := home()
		if err == nil {
			configDir = filepath.Join(homeDir, ".docker")
		}
	}
	if o.host != "" {
		host, err := normalizeHost(o.host)
		if err != nil {
			return nil, err
		}
		env[envDockerHost] = host
		return env, nil
	}
	name := o.context
	if name == "" {
		if getenv(envDockerHost) != "" {
			return env, nil
		}
		if name = getenv(envDockerContext); name == "" && configDir != "" {
			current, err := currentContext(configDir)
			if err != nil {
				return nil, err
			}
			name = current
		}
	}
	if name == "" || name == "default" {
		return env, nil
	}
	if configDir == "" {
		return nil, hint.New(fmt.Sprintf("cannot find docker context %q: no home directory, no DOCKER_CONFIG", name),
			"set DOCKER_CONFIG, or pass --config to docker")
	}
	return contextEnv(env, configDir, name)
}

// currentContext returns the currentContext of the docker CLI's config.json
// in dir; "" when there is none.
func currentContext(dir string) (string, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	var cfg struct{ CurrentContext string }
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", hint.Wrap(fmt.Errorf("cannot read %s: %w", path, err), "fix it, or pass --context or -H to docker")
	}
	return cfg.CurrentContext, nil
}

// contextEnv adds to env what reaches the engine of docker context name,
// read from the docker CLI's context store in configDir: its metadata in
// contexts/meta/SHA256(name)/meta.json, its TLS files in
// contexts/tls/SHA256(name)/docker.
func contextEnv(env map[string]string, configDir, name string) (map[string]string, error) {
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	metaPath := filepath.Join(configDir, "contexts", "meta", id, "meta.json")
	data, err := os.ReadFile(metaPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, hint.New(fmt.Sprintf("docker context %q does not exist (no %s)", name, metaPath),
			"docker context ls lists the contexts; pass --config if they are elsewhere")
	} else if err != nil {
		return nil, err
	}
	var meta struct {
		Endpoints map[string]struct {
			Host          string
			SkipTLSVerify bool
		}
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("docker context %q: cannot read %s: %w", name, metaPath, err)
	}
	ep, ok := meta.Endpoints["docker"]
	if !ok {
		return nil, hint.New(fmt.Sprintf("docker context %q has no docker endpoint (%s)", name, metaPath),
			"docker context inspect "+name+" shows it; ckpt needs a context with a docker host")
	}
	// A context's own TLS settings replace those of the environment.
	env[envDockerCertPath], env[envDockerTLSVerify] = "", ""
	if ep.Host == "" { // the engine at the default address
		env[envDockerHost] = ""
		return env, nil
	}
	host, err := normalizeHost(ep.Host)
	if err != nil {
		return nil, fmt.Errorf("docker context %q: %w", name, err)
	}
	env[envDockerHost] = host
	if !strings.HasPrefix(host, "tcp://") {
		return env, nil
	}
	tlsDir := filepath.Join(configDir, "contexts", "tls", id, "docker")
	var have []string
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if _, err := os.Stat(filepath.Join(tlsDir, f)); err == nil {
			have = append(have, f)
		}
	}
	switch {
	case len(have) == 3:
		env[envDockerCertPath] = tlsDir
		if !ep.SkipTLSVerify {
			env[envDockerTLSVerify] = "1"
		}
	case len(have) > 0 || ep.SkipTLSVerify:
		return nil, hint.New(fmt.Sprintf("docker context %q uses TLS with %s only: ckpt needs ca.pem, cert.pem and key.pem", name, filesOrNone(have)),
			"add the missing files to the context (docker context update), or set DOCKER_HOST, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY")
	}
	return env, nil
}

func filesOrNone(files []string) string {
	if len(files) == 0 {
		return "no files"
	}
	return strings.Join(files, ", ")
}

// normalizeHost reads an engine address as the docker CLI does: a bare
// "host:port" is TCP, TCP's port defaults to 2375 and a unix socket to
// /var/run/docker.sock. It refuses what ckpt cannot reach: ssh, named
// pipes, file descriptors.
func normalizeHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	proto, addr, hasProto := strings.Cut(h, "://")
	if !hasProto {
		proto, addr = "tcp", h
	}
	switch proto {
	case "unix":
		if addr == "" {
			addr = "/var/run/docker.sock"
		}
		return "unix://" + addr, nil
	case "tcp":
		if addr == "" {
			return "tcp://127.0.0.1:2375", nil
		}
		hostPort, path, _ := strings.Cut(addr, "/")
		if _, _, err := net.SplitHostPort(hostPort); err != nil {
			hostPort = net.JoinHostPort(strings.Trim(hostPort, "[]"), "2375")
		}
		if path != "" {
			path = "/" + path
		}
		return "tcp://" + hostPort + path, nil
	case "ssh":
		return "", hint.New(fmt.Sprintf("ckpt cannot reach an engine over ssh (%s)", h),
			"run ckpt on the engine's host: it saves containers through the engine's local files")
	}
	return "", hint.New(fmt.Sprintf("ckpt cannot reach an engine at %s", h),
		"give a unix:// or tcp:// address")
}

// watchPluginSocket connects to the docker CLI's socket at addr, if any,
// and calls stop when the docker CLI closes it: that is how it asks a
// plugin to stop when it is interrupted and its output is not a terminal
// (a terminal sends the signal to the plugin too).
func watchPluginSocket(addr string, stop func()) {
	if addr == "" {
		return
	}
	conn, err := net.Dial("unix", addr)
	if err != nil {
		return
	}
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := conn.Read(b); err != nil {
				stop()
				return
			}
		}
	}()
}

// Directives that end an answer to a completion request (cobra's
// ShellCompDirective).
const (
	completeFiles   = 0 // the shell may offer file names
	completeNoFiles = 4 // it may not
)

// completePlugin answers the completion request "docker-ckpt __complete
// ckpt WORD... PARTIAL", cobra's protocol, which the docker CLI uses: one
// candidate for PARTIAL per line, a tab and its description, then ":N", N
// saying whether file names may be offered too. It offers the commands,
// subcommands and options of ckpt that WORD... leads to.
func completePlugin(words []string, w io.Writer) {
	app := New(io.Discard, io.Discard)
	cmds, flags := app.Commands, app.Flags
	partial, rest := words[len(words)-1], words[:len(words)-1]
	for len(rest) > 0 {
		if strings.HasPrefix(rest[0], "-") {
			rest = rest[flagWidth(flags, rest):]
			continue
		}
		c := findCommand(cmds, rest[0])
		if c == nil { // an argument: no more commands
			cmds = nil
			break
		}
		cmds, flags, rest = c.Subcommands, c.Flags, rest[1:]
	}
	if lookupFlag(flags, "--help") == nil {
		flags = append(slices.Clip(flags), cli.HelpFlag)
	}
	switch {
	case strings.HasPrefix(partial, "-"):
		for _, f := range flags {
			usage := ""
			if d, ok := f.(cli.DocGenerationFlag); ok {
				usage = strings.ReplaceAll(d.GetUsage(), "`", "")
			}
			for _, n := range f.Names() {
				name := "--" + n
				if len(n) == 1 {
					name = "-" + n
				}
				if strings.HasPrefix(name, partial) {
					fmt.Fprintf(w, "%s\t%s\n", name, usage)
				}
			}
		}
	case len(cmds) > 0:
		for _, c := range cmds {
			if !c.Hidden && strings.HasPrefix(c.Name, partial) {
				fmt.Fprintf(w, "%s\t%s\n", c.Name, c.Usage)
			}
		}
	default:
		fmt.Fprintf(w, ":%d\n", completeFiles)
		return
	}
	fmt.Fprintf(w, ":%d\n", completeNoFiles)
}
