package policy

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults for what a policy file leaves out. With no policy file at all,
// every container is saved hot, falling back to cold.
const (
	DefaultDeadline = 90 * time.Second
	DefaultTimeout  = 60 * time.Second
	DefaultParallel = 2
)

// Default returns the policy used when there is no policy file.
func Default() *Policy {
	return &Policy{
		Default:  Rule{Name: "default", Mode: Hot, OnFailure: FallbackCold, Timeout: DefaultTimeout},
		Deadline: DefaultDeadline,
		Parallel: DefaultParallel,
	}
}

// Load reads the policy file at path. A missing DefaultFile means the
// default policy; any other missing file is an error.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && path == DefaultFile {
		return Default(), nil
	}
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Errors is every problem found in a policy file, each with its line.
type Errors []error

func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// Parse reads a policy from data; name (the file's path) prefixes every
// error with its line number, "policy.yaml:12: ...". Unknown keys, bad
// values, bad globs and bad durations are all errors: a wrong policy must
// never make a hook do something else silently.
func Parse(data []byte, name string) (*Policy, error) {
	p := Default()
	pr := &parser{file: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{fmt.Errorf("%s: %v", name, strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	if len(doc.Content) == 0 { // an empty file: the defaults
		return p, nil
	}
	root := doc.Content[0]
	var rules *yaml.Node
	pr.mapping(root, "the policy", map[string]func(*yaml.Node){
		"deadline": func(n *yaml.Node) { p.Deadline, p.DeadlineLine = pr.duration(n, "deadline"), n.Line },
		"parallel": func(n *yaml.Node) {
			if p.Parallel = pr.integer(n, "parallel"); p.Parallel < 1 {
				pr.errorf(n, "parallel must be at least 1")
			}
		},
		"default": func(n *yaml.Node) {
			p.Default.Line = n.Line
			pr.rule(n, &p.Default, false)
		},
		"rules": func(n *yaml.Node) { rules = n },
		"retention": func(n *yaml.Node) {
			pr.mapping(n, "retention", map[string]func(*yaml.Node){
				"keep_last": func(n *yaml.Node) {
					if p.Retention.KeepLast = pr.integer(n, "keep_last"); p.Retention.KeepLast < 0 {
						pr.errorf(n, "keep_last must not be negative")
					}
				},
				"max_age":   func(n *yaml.Node) { p.Retention.MaxAge = pr.duration(n, "max_age") },
				"max_bytes": func(n *yaml.Node) { p.Retention.MaxBytes = pr.bytes(n, "max_bytes") },
			})
		},
	})
	// Rules inherit what they leave out from the default rule, so they are
	// read after it.
	if rules != nil {
		if rules.Kind != yaml.SequenceNode {
			pr.errorf(rules, "rules must be a list")
		} else {
			for i, n := range rules.Content {
				r := p.Default
				r.Name, r.Line, r.After = fmt.Sprintf("rule %d", i+1), n.Line, nil
				pr.rule(n, &r, true)
				p.Rules = append(p.Rules, r)
			}
		}
	}
	if p.Deadline <= 0 {
		pr.errorf(root, "deadline must be positive")
	}
	if len(pr.errs) > 0 {
		return nil, pr.errs
	}
	return p, nil
}

type parser struct {
	file string
	errs Errors
}

func (pr *parser) errorf(n *yaml.Node, format string, args ...any) {
	pr.errs = append(pr.errs, fmt.Errorf("%s:%d: %s", pr.file, n.Line, fmt.Sprintf(format, args...)))
}

// mapping calls the handler of each key of n; unknown keys are errors.
func (pr *parser) mapping(n *yaml.Node, what string, keys map[string]func(*yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		pr.errorf(n, "%s must be a mapping of keys to values", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := keys[k.Value]
		switch {
		case !ok:
			pr.errorf(k, "unknown key %q in %s (known: %s)", k.Value, what, known(keys))
		case seen[k.Value]:
			pr.errorf(k, "%q given twice in %s", k.Value, what)
		default:
			seen[k.Value] = true
			h(v)
		}
	}
}

func known(keys map[string]func(*yaml.Node)) string {
	return strings.Join(slices.Sorted(maps.Keys(keys)), ", ")
}

func (pr *parser) rule(n *yaml.Node, r *Rule, isRule bool) {
	if isRule {
		r.Line = n.Line
	}
	keys := map[string]func(*yaml.Node){
		"mode":       func(n *yaml.Node) { r.Mode = pr.mode(n) },
		"on_failure": func(n *yaml.Node) { r.OnFailure = pr.onFailure(n) },
		"timeout":    func(n *yaml.Node) { r.Timeout = pr.duration(n, "timeout") },
		"after":      func(n *yaml.Node) { r.After = pr.strings(n, "after") },
	}
	what := "default"
	if isRule {
		what = "a rule"
		keys["name"] = func(n *yaml.Node) { r.Name = pr.scalar(n, "name") }
		keys["match"] = func(n *yaml.Node) { pr.match(n, &r.Match) }
	}
	pr.mapping(n, what, keys)
	if isRule && r.Match.Names == nil && r.Match.Labels == nil && r.Match.Projects == nil {
		pr.errorf(n, "%s has no match: it would select every container (use default for that)", r.Name)
	}
	if r.Timeout <= 0 {
		pr.errorf(n, "timeout must be positive")
	}
}

func (pr *parser) match(n *yaml.Node, m *Match) {
	pr.mapping(n, "match", map[string]func(*yaml.Node){
		"names": func(n *yaml.Node) {
			m.Names = pr.strings(n, "names")
			for _, g := range m.Names {
				if _, err := path.Match(g, ""); err != nil {
					pr.errorf(n, "bad glob %q in names", g)
				}
			}
		},
		"labels": func(n *yaml.Node) {
			if n.Kind != yaml.MappingNode {
				pr.errorf(n, "labels must be a mapping of label names to values")
				return
			}
			m.Labels = map[string]string{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				m.Labels[n.Content[i].Value] = pr.scalar(n.Content[i+1], "a label value")
			}
		},
		"projects": func(n *yaml.Node) { m.Projects = pr.strings(n, "projects") },
	})
}

func (pr *parser) scalar(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode {
		pr.errorf(n, "%s must be a single value", what)
		return ""
	}
	return n.Value
}

// strings reads a list of strings; a single string is a list of one.
func (pr *parser) strings(n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		pr.errorf(n, "%s must be a list", what)
		return nil
	}
	out := []string{}
	for _, c := range n.Content {
		out = append(out, pr.scalar(c, "an element of "+what))
	}
	return out
}

func (pr *parser) integer(n *yaml.Node, what string) int {
	v, err := strconv.Atoi(pr.scalar(n, what))
	if err != nil {
		pr.errorf(n, "%s: %q is not a whole number", what, n.Value)
	}
	return v
}

func (pr *parser) duration(n *yaml.Node, what string) time.Duration {
	d, err := ParseDuration(pr.scalar(n, what))
	if err != nil {
		pr.errorf(n, "%s: %v", what, err)
	}
	return d
}

func (pr *parser) bytes(n *yaml.Node, what string) int64 {
	b, err := ParseBytes(pr.scalar(n, what))
	if err != nil {
		pr.errorf(n, "%s: %v", what, err)
	}
	return b
}

func (pr *parser) mode(n *yaml.Node) Mode {
	m, err := ParseMode(pr.scalar(n, "mode"))
	if err != nil {
		pr.errorf(n, "%v", err)
	}
	return m
}

func (pr *parser) onFailure(n *yaml.Node) OnFailure {
	f, err := ParseOnFailure(pr.scalar(n, "on_failure"))
	if err != nil {
		pr.errorf(n, "%v", err)
	}
	return f
}

// ParseMode reads hot, cold or skip.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Hot, Cold, Skip:
		return m, nil
	}
	return "", fmt.Errorf("mode %q: want hot, cold or skip", s)
}

// ParseOnFailure reads cold or fail.
func ParseOnFailure(s string) (OnFailure, error) {
	switch f := OnFailure(s); f {
	case FallbackCold, Fail:
		return f, nil
	}
	return "", fmt.Errorf("on_failure %q: want cold or fail", s)
}

// ParseDuration reads a Go duration ("90s", "1h30m") that may also count
// days: "7d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, fmt.Errorf("bad duration %q (examples: 90s, 10m, 7d)", s)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q (examples: 90s, 10m, 7d)", s)
	}
	return days + d, nil
}

// ParseBytes reads a size: a number of bytes, or with a unit (KB, MB, GB,
// TB powers of 1000; KiB, MiB, GiB, TiB powers of 1024).
func ParseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q (examples: 500MB, 20GiB)", s)
	}
	return int64(n * float64(mult)), nil
}
