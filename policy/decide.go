package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Container is what the policy looks at: a container's name and labels.
type Container struct {
	Name   string
	Labels map[string]string
}

// Decision is what the policy says about one container.
type Decision struct {
	// Mode is what the shutdown hook does.
	Mode Mode
	// OnFailure is what happens when a hot save fails.
	OnFailure OnFailure
	// Timeout bounds the container's save.
	Timeout time.Duration
	// After lists the containers to resume before this one (from the rule,
	// the io.ckpt.after label and compose's depends_on label).
	After []string
	// Why names what decided the mode: a rule, a label, or the default.
	Why string
}

// String names r, one of a policy's rules, as the hooks' output and policy
// check do: "rule 2 at line 9", or "rule \"databases\" at line 9" when the
// file names it.
func (r Rule) String() string {
	if strings.HasPrefix(r.Name, "rule ") {
		return fmt.Sprintf("%s at line %d", r.Name, r.Line)
	}
	return fmt.Sprintf("rule %q at line %d", r.Name, r.Line)
}

// Matches reports whether m selects c.
func (m Match) Matches(c Container) bool {
	if len(m.Names) > 0 && !slices.ContainsFunc(m.Names, func(g string) bool {
		ok, _ := path.Match(g, c.Name)
		return ok
	}) {
		return false
	}
	for k, v := range m.Labels {
		got, ok := c.Labels[k]
		if !ok || v != "" && got != v {
			return false
		}
	}
	return len(m.Projects) == 0 || slices.Contains(m.Projects, c.Labels[LabelProject])
}

// Decide applies the policy to c: the first rule that matches, else the
// default, then the container's io.ckpt.* labels, which win. A bad label
// value is an error, not a guess.
func (p *Policy) Decide(c Container) (Decision, error) {
	r := p.Default
	why := "default"
	for _, rule := range p.Rules {
		if rule.Match.Matches(c) {
			r, why = rule, rule.String()
			break
		}
	}
	d := Decision{Mode: r.Mode, OnFailure: r.OnFailure, Timeout: r.Timeout, After: slices.Clone(r.After), Why: why}
	bad := func(label string, err error) (Decision, error) {
		return Decision{}, fmt.Errorf("container %s: label %s=%q: %v", c.Name, label, c.Labels[label], err)
	}
	if v, ok := c.Labels[LabelMode]; ok {
		m, err := ParseMode(v)
		if err != nil {
			return bad(LabelMode, err)
		}
		d.Mode, d.Why = m, "label "+LabelMode+"="+v
	}
	if v, ok := c.Labels[LabelOnFailure]; ok {
		f, err := ParseOnFailure(v)
		if err != nil {
			return bad(LabelOnFailure, err)
		}
		d.OnFailure = f
	}
	if v, ok := c.Labels[LabelTimeout]; ok {
		t, err := ParseDuration(v)
		if err != nil || t <= 0 {
			return bad(LabelTimeout, fmt.Errorf("want a positive duration like 30s"))
		}
		d.Timeout = t
	}
	for _, n := range After(c.Labels) {
		if !slices.Contains(d.After, n) {
			d.After = append(d.After, n)
		}
	}
	return d, nil
}

// After returns the containers named by the io.ckpt.after label of labels
// (comma-separated), in order, without spaces around them, empty names or
// repeats; nil when there are none.
func After(labels map[string]string) []string {
	var names []string
	for _, n := range strings.Split(labels[LabelAfter], ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// ComposeDependencies returns the containers c depends on through compose's
// depends_on label (compose v2: "db:service_started:false,cache:..."): the
// containers of the same project running those services.
func ComposeDependencies(c Container, all []Container) []string {
	v := c.Labels[LabelDependsOn]
	project := c.Labels[LabelProject]
	if v == "" || project == "" {
		return nil
	}
	var deps []string
	for _, dep := range strings.Split(v, ",") {
		svc := strings.SplitN(strings.TrimSpace(dep), ":", 2)[0]
		for _, o := range all {
			if o.Labels[LabelProject] == project && o.Labels[LabelService] == svc && o.Name != c.Name {
				deps = append(deps, o.Name)
			}
		}
	}
	return deps
}

// Within returns the mode to use when remaining is what is left of the
// shutdown deadline: a hot save that might not finish before the deadline
// (its timeout is longer than what is left) becomes cold, which is quick and
// keeps the data. The reason is empty when the mode stays.
func (d Decision) Within(remaining time.Duration) (Mode, string) {
	if d.Mode == Hot && remaining < d.Timeout {
		return Cold, fmt.Sprintf("the deadline is %s away, less than its timeout %s", max(0, remaining).Round(time.Second), d.Timeout)
	}
	return d.Mode, ""
}
