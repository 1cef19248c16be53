package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Warning is a problem that does not stop a policy from loading: the hooks
// run with it, but it does not do what its author most likely meant.
type Warning struct {
	// Line is the line of the policy file the warning is about; 0 when the
	// file leaves out what it is about.
	Line int
	// Text says what is wrong and what the hooks do because of it.
	Text string
	// Hint says how to fix it.
	Hint string
}

// Warnings returns what in p does not do what its author most likely
// meant, in the order of the file:
//   - a hot rule, or a hot default, whose timeout is not shorter than the
//     deadline: the shutdown hook saves a container hot only while its
//     whole timeout fits in what is left of the deadline, so these
//     containers are always saved cold;
//   - a rule that never matches, because earlier rules match every
//     container it would (the first rule that matches decides);
//   - a default that never applies, because a rule matches every container.
//
// Labels can change a container's mode and timeout; they are not seen
// here.
func (p *Policy) Warnings() []Warning {
	ws := p.hotRulesOverDeadline()
	for i, r := range p.Rules {
		if by := p.shadowing(i); len(by) > 0 {
			refs := make([]string, len(by))
			for k, b := range by {
				refs[k] = p.Rules[b].String()
			}
			verb := "matches"
			if len(by) > 1 {
				verb = "together match"
			}
			ws = append(ws, Warning{Line: r.Line, Text: fmt.Sprintf(
				"%s never matches: %s %s every container it would, and the first rule that matches decides",
				r, joinAnd(refs), verb),
				Hint: "remove the rule, or move it before the rules that match first"})
		}
	}
	for _, r := range p.Rules {
		if r.Match.covers(Match{}) {
			line := p.Default.Line
			if line == 0 {
				line = r.Line
			}
			ws = append(ws, Warning{Line: line, Text: fmt.Sprintf(
				"the default never applies: %s matches every container", r),
				Hint: "give that rule's settings to the default and remove the rule, or narrow its match"})
			break
		}
	}
	slices.SortStableFunc(ws, func(a, b Warning) int { return a.Line - b.Line })
	return ws
}

// hotRulesOverDeadline warns of each hot rule, and a hot default, whose
// timeout does not fit in the deadline. The hook decides just after it
// starts, when a little less than the deadline is left: a timeout equal to
// the deadline does not fit either.
func (p *Policy) hotRulesOverDeadline() []Warning {
	var ws []Warning
	warn := func(r Rule, name string, line int) {
		if r.Mode != Hot || r.Timeout < p.Deadline {
			return
		}
		ws = append(ws, Warning{Line: line, Text: fmt.Sprintf(
			"%s saves hot with a timeout of %s, but the deadline is %s: the shutdown hook saves a container hot only "+
				"while its whole timeout fits in what is left of the deadline, so these containers are always saved cold",
			name, r.Timeout, p.Deadline),
			Hint: "make the deadline longer than the timeout, with room for the saves before it, or shorten the timeout"})
	}
	line := p.Default.Line
	if line == 0 {
		line = p.DeadlineLine
	}
	warn(p.Default, "the default", line)
	for _, r := range p.Rules {
		warn(r, r.String(), r.Line)
	}
	return ws
}

// shadowing returns the indexes of the rules before rule i that together
// match every container rule i matches, or nil when some container would
// reach rule i. Rule i's match is split into its alternatives (one name
// glob and one project each); each must be covered by one earlier rule.
func (p *Policy) shadowing(i int) []int {
	var by []int
	for _, alt := range p.Rules[i].Match.alternatives() {
		j := slices.IndexFunc(p.Rules[:i], func(r Rule) bool { return r.Match.covers(alt) })
		if j < 0 {
			return nil
		}
		if !slices.Contains(by, j) {
			by = append(by, j)
		}
	}
	slices.Sort(by)
	return by
}

// alternatives splits m into matches of at most one name glob and one
// project each, which together select what m selects.
func (m Match) alternatives() []Match {
	names, projects := [][]string{nil}, [][]string{nil}
	if len(m.Names) > 0 {
		names = nil
		for _, n := range m.Names {
			names = append(names, []string{n})
		}
	}
	if len(m.Projects) > 0 {
		projects = nil
		for _, pr := range m.Projects {
			projects = append(projects, []string{pr})
		}
	}
	var alts []Match
	for _, n := range names {
		for _, pr := range projects {
			alts = append(alts, Match{Names: n, Labels: m.Labels, Projects: pr})
		}
	}
	return alts
}

// covers reports whether m surely selects every container that o selects.
// It errs on the side of false: a glob is known to cover another only when
// they are the same, when it is "*", or when the other has no wildcards
// and matches it.
func (m Match) covers(o Match) bool {
	if len(m.Names) > 0 && !slices.ContainsFunc(m.Names, func(g string) bool { return g == "*" }) {
		if len(o.Names) == 0 {
			return false
		}
		for _, og := range o.Names {
			if !slices.ContainsFunc(m.Names, func(g string) bool { return globCovers(g, og) }) {
				return false
			}
		}
	}
	for k, v := range m.Labels {
		ov, ok := o.Labels[k]
		if !ok || v != "" && v != ov {
			return false
		}
	}
	if len(m.Projects) > 0 {
		if len(o.Projects) == 0 {
			return false
		}
		for _, op := range o.Projects {
			if !slices.Contains(m.Projects, op) {
				return false
			}
		}
	}
	return true
}

// globCovers reports whether glob g surely matches every name glob o
// matches. Container names never hold "/", so "*" matches them all.
func globCovers(g, o string) bool {
	if g == "*" || g == o {
		return true
	}
	if strings.ContainsAny(o, `*?[\`) {
		return false
	}
	ok, _ := path.Match(g, o)
	return ok
}

// joinAnd joins words as "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
