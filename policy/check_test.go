package policy

import (
	"slices"
	"testing"
)

func TestWarnings(t *testing.T) {
	const hotCold = ": the shutdown hook saves a container hot only while its whole timeout fits in what is left " +
		"of the deadline, so these containers are always saved cold"
	const decides = " every container it would, and the first rule that matches decides"
	for _, tc := range []struct {
		name, in string
		want     []Warning
	}{
		// Deadline against timeout.
		{"the defaults", "", nil},
		{"the example", example, nil},
		{"deadline shorter than the default timeout", "deadline: 10s\n",
			[]Warning{{Line: 1, Text: "the default saves hot with a timeout of 1m0s, but the deadline is 10s" + hotCold}}},
		{"deadline equal to the timeout", "deadline: 1m\n",
			[]Warning{{Line: 1, Text: "the default saves hot with a timeout of 1m0s, but the deadline is 1m0s" + hotCold}}},
		{"deadline just longer than the timeout", "deadline: 61s\n", nil},
		{"a cold default does not care", "deadline: 10s\ndefault: {mode: cold}\n", nil},
		{"a skipping default does not care", "deadline: 10s\ndefault: {mode: skip}\n", nil},
		{"a default timeout too long", "default:\n  timeout: 2m\n",
			[]Warning{{Line: 2, Text: "the default saves hot with a timeout of 2m0s, but the deadline is 1m30s" + hotCold}}},
		{"a hot rule with a long timeout", "deadline: 2m\ndefault: {mode: cold}\nrules:\n  - name: db\n    match: {names: [db]}\n    mode: hot\n    timeout: 3m\n",
			[]Warning{{Line: 4, Text: `rule "db" at line 4 saves hot with a timeout of 3m0s, but the deadline is 2m0s` + hotCold}}},
		{"a hot rule inheriting the timeout", "deadline: 30s\ndefault: {mode: cold}\nrules:\n  - match: {names: [db]}\n    mode: hot\n",
			[]Warning{{Line: 4, Text: `rule 1 at line 4 saves hot with a timeout of 1m0s, but the deadline is 30s` + hotCold}}},
		{"a cold rule with a long timeout", "deadline: 2m\ndefault: {mode: cold}\nrules:\n  - match: {names: [db]}\n    timeout: 3m\n", nil},

		// Shadowed rules.
		{"a catch-all by labels", "rules:\n  - match: {labels: {}}\n    mode: cold\n  - name: db\n    match: {names: [db]}\n",
			[]Warning{
				{Line: 2, Text: "the default never applies: rule 1 at line 2 matches every container"},
				{Line: 4, Text: `rule "db" at line 4 never matches: rule 1 at line 2 matches` + decides},
			}},
		{"a catch-all by name", "default: {mode: cold}\nrules:\n  - match: {names: ['*']}\n  - match: {projects: [shop]}\n",
			[]Warning{
				{Line: 1, Text: "the default never applies: rule 1 at line 3 matches every container"},
				{Line: 4, Text: "rule 2 at line 4 never matches: rule 1 at line 3 matches" + decides},
			}},
		{"a catch-all by an empty list", "rules:\n  - match: {names: []}\n  - match: {labels: {tier: db}}\n",
			[]Warning{
				{Line: 2, Text: "the default never applies: rule 1 at line 2 matches every container"},
				{Line: 3, Text: "rule 2 at line 3 never matches: rule 1 at line 2 matches" + decides},
			}},
		{"the same names", "rules:\n  - match: {names: [web, api]}\n    mode: cold\n  - match: {names: [api, web]}\n",
			[]Warning{{Line: 4, Text: "rule 2 at line 4 never matches: rule 1 at line 2 matches" + decides}}},
		{"the same labels", "rules:\n  - match: {labels: {tier: db}}\n  - match: {labels: {tier: db}}\n",
			[]Warning{{Line: 3, Text: "rule 2 at line 3 never matches: rule 1 at line 2 matches" + decides}}},
		{"a glob covers a name", "rules:\n  - match: {names: ['web-*']}\n  - match: {names: [web-1]}\n",
			[]Warning{{Line: 3, Text: "rule 2 at line 3 never matches: rule 1 at line 2 matches" + decides}}},
		{"any value covers a value", "rules:\n  - match: {labels: {tier: ''}}\n  - match: {labels: {tier: db, x: y}}\n",
			[]Warning{{Line: 3, Text: "rule 2 at line 3 never matches: rule 1 at line 2 matches" + decides}}},
		{"projects covered", "rules:\n  - match: {projects: [shop, blog]}\n  - match: {names: [x], projects: [shop]}\n",
			[]Warning{{Line: 3, Text: "rule 2 at line 3 never matches: rule 1 at line 2 matches" + decides}}},
		{"two rules together", "rules:\n  - name: a\n    match: {names: [a]}\n  - match: {names: [b]}\n  - match: {names: [c]}\n  - match: {names: [a, b]}\n",
			[]Warning{{Line: 6, Text: `rule 4 at line 6 never matches: rule "a" at line 2 and rule 2 at line 4 together match` + decides}}},
		{"a later rule shadowed, not an earlier one", "rules:\n  - match: {names: [web-1]}\n  - match: {names: ['web-*']}\n", nil},
		{"a glob is not known to cover another", "rules:\n  - match: {names: ['web-*']}\n  - match: {names: ['web-a*']}\n", nil},
		{"a value does not cover any value", "rules:\n  - match: {labels: {tier: db}}\n  - match: {labels: {tier: ''}}\n", nil},
		{"an earlier rule asks for more", "rules:\n  - match: {names: [web], labels: {a: b}}\n  - match: {names: [web]}\n", nil},
		{"part of the names only", "rules:\n  - match: {names: [a]}\n  - match: {names: [a, b]}\n", nil},
		{"other projects", "rules:\n  - match: {projects: [shop]}\n  - match: {projects: [blog]}\n", nil},
		{"projects against any project", "rules:\n  - match: {projects: [shop]}\n  - match: {names: [x]}\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.in), "p.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var got []Warning
			for _, w := range p.Warnings() {
				if w.Hint == "" {
					t.Errorf("no hint: %+v", w)
				}
				got = append(got, Warning{Line: w.Line, Text: w.Text})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n%+v\nwant:\n%+v", got, tc.want)
			}
		})
	}
}

func TestRuleString(t *testing.T) {
	for _, tc := range []struct {
		r    Rule
		want string
	}{
		{Rule{Name: "rule 2", Line: 9}, "rule 2 at line 9"},
		{Rule{Name: "databases", Line: 9}, `rule "databases" at line 9`},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}
