package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const example = `# a complete example (docs/policy.md)
deadline: 2m
parallel: 4
default:
  mode: cold
  on_failure: cold
  timeout: 45s
rules:
  - name: databases
    match:
      names: ["db-*", "postgres"]
    mode: hot
    timeout: 90s
  - name: caches
    match:
      labels: {tier: cache}
    mode: skip
  - name: shop
    match:
      projects: [shop]
    mode: hot
    on_failure: fail
    after: [db-main]
retention:
  keep_last: 3
  max_age: 7d
  max_bytes: 20GiB
`

func TestParseExample(t *testing.T) {
	p, err := Parse([]byte(example), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Deadline != 2*time.Minute || p.Parallel != 4 {
		t.Errorf("deadline %v parallel %d", p.Deadline, p.Parallel)
	}
	if d := p.Default; d.Name != "default" || d.Mode != Cold || d.OnFailure != FallbackCold || d.Timeout != 45*time.Second {
		t.Errorf("default %+v", p.Default)
	}
	if len(p.Rules) != 3 {
		t.Fatalf("rules %+v", p.Rules)
	}
	db, caches, shop := p.Rules[0], p.Rules[1], p.Rules[2]
	if db.Name != "databases" || db.Line != 9 || db.Mode != Hot || db.Timeout != 90*time.Second || db.OnFailure != FallbackCold || !slices.Equal(db.Match.Names, []string{"db-*", "postgres"}) {
		t.Errorf("databases %+v", db)
	}
	if caches.Mode != Skip || caches.Timeout != 45*time.Second || caches.Match.Labels["tier"] != "cache" {
		t.Errorf("caches %+v", caches)
	}
	if shop.OnFailure != Fail || !slices.Equal(shop.After, []string{"db-main"}) || !slices.Equal(shop.Match.Projects, []string{"shop"}) {
		t.Errorf("shop %+v", shop)
	}
	if p.Retention != (Retention{KeepLast: 3, MaxAge: 7 * 24 * time.Hour, MaxBytes: 20 << 30}) {
		t.Errorf("retention %+v", p.Retention)
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, in := range []string{"", "# nothing\n"} {
		p, err := Parse([]byte(in), "p.yaml")
		if err != nil || p.Default.Mode != Hot || p.Deadline != DefaultDeadline || p.Parallel != DefaultParallel {
			t.Errorf("%q: %+v %v", in, p, err)
		}
	}
}

func TestParseErrorsHaveLines(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"unknown top-level key", "deadline: 1m\nretries: 3\n",
			[]string{`p.yaml:2: unknown key "retries" in the policy (known: deadline, default, parallel, retention, rules)`}},
		{"unknown rule key", "rules:\n  - match: {names: [a]}\n    mod: hot\n",
			[]string{`p.yaml:3: unknown key "mod" in a rule (known: after, match, mode, name, on_failure, timeout)`}},
		{"unknown match key", "rules:\n  - match: {name: [a]}\n",
			[]string{`p.yaml:2: unknown key "name" in match (known: labels, names, projects)`, `p.yaml:2: rule 1 has no match`}},
		{"bad glob", "rules:\n  - match:\n      names: [\"web-[\"]\n",
			[]string{`p.yaml:3: bad glob "web-[" in names`}},
		{"bad duration", "deadline: soon\n", []string{`p.yaml:1: deadline: bad duration "soon"`}},
		{"bad timeout", "default:\n  timeout: 5x\n", []string{`p.yaml:2: timeout: bad duration "5x"`}},
		{"bad mode", "default:\n  mode: warm\n", []string{`p.yaml:2: mode "warm": want hot, cold or skip`}},
		{"bad on_failure", "default:\n  on_failure: retry\n", []string{`p.yaml:2: on_failure "retry": want cold or fail`}},
		{"bad parallel", "parallel: 0\n", []string{`p.yaml:1: parallel must be at least 1`}},
		{"bad size", "retention:\n  max_bytes: lots\n", []string{`p.yaml:2: max_bytes: bad size "lots"`}},
		{"negative keep_last", "retention:\n  keep_last: -1\n", []string{`p.yaml:2: keep_last must not be negative`}},
		{"rules not a list", "rules: {a: b}\n", []string{`p.yaml:1: rules must be a list`}},
		{"duplicate key", "deadline: 1m\ndeadline: 2m\n", []string{`p.yaml:2: "deadline" given twice`}},
		{"not yaml", "deadline: [1m\n", []string{`p.yaml: `}},
		{"several at once", "deadline: x\nparallel: y\n",
			[]string{`p.yaml:1: deadline: bad duration "x"`, `p.yaml:2: parallel: "y" is not a whole number`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), "p.yaml")
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want Errors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors:\n%v\nwant one containing %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load("/nonexistent/policy.yaml"); err == nil {
		t.Error("a missing policy file that was asked for is not an error")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "1h30m": 90 * time.Minute} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "x7d", "7d-1h", "-5s", "5"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "20GiB": 20 << 30, "500MB": 500e6, "1.5 KiB": 1536, "7B": 7} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "GiB", "-1", "lots"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestDecide(t *testing.T) {
	p, err := Parse([]byte(example), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   Decision
	}{
		{"db-main", nil, Decision{Mode: Hot, OnFailure: FallbackCold, Timeout: 90 * time.Second, Why: `rule "databases" at line 9`}},
		{"postgres", nil, Decision{Mode: Hot, OnFailure: FallbackCold, Timeout: 90 * time.Second, Why: `rule "databases" at line 9`}},
		{"redis", map[string]string{"tier": "cache"}, Decision{Mode: Skip, OnFailure: FallbackCold, Timeout: 45 * time.Second, Why: `rule "caches" at line 14`}},
		{"web", map[string]string{LabelProject: "shop"}, Decision{Mode: Hot, OnFailure: Fail, Timeout: 45 * time.Second, After: []string{"db-main"}, Why: `rule "shop" at line 18`}},
		{"other", nil, Decision{Mode: Cold, OnFailure: FallbackCold, Timeout: 45 * time.Second, Why: "default"}},
		// the first matching rule wins
		{"db-cache", map[string]string{"tier": "cache"}, Decision{Mode: Hot, OnFailure: FallbackCold, Timeout: 90 * time.Second, Why: `rule "databases" at line 9`}},
		// labels win over the file
		{"db-x", map[string]string{LabelMode: "skip"}, Decision{Mode: Skip, OnFailure: FallbackCold, Timeout: 90 * time.Second, Why: "label io.ckpt.mode=skip"}},
		{"other", map[string]string{LabelMode: "hot", LabelOnFailure: "fail", LabelTimeout: "10s", LabelAfter: "a, b"},
			Decision{Mode: Hot, OnFailure: Fail, Timeout: 10 * time.Second, After: []string{"a", "b"}, Why: "label io.ckpt.mode=hot"}},
	} {
		got, err := p.Decide(Container{Name: tc.name, Labels: tc.labels})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.Mode != tc.want.Mode || got.OnFailure != tc.want.OnFailure || got.Timeout != tc.want.Timeout || got.Why != tc.want.Why || !slices.Equal(got.After, tc.want.After) {
			t.Errorf("%s %v:\n got %+v\nwant %+v", tc.name, tc.labels, got, tc.want)
		}
	}
	for label, value := range map[string]string{LabelMode: "warm", LabelOnFailure: "retry", LabelTimeout: "-3s"} {
		if _, err := p.Decide(Container{Name: "x", Labels: map[string]string{label: value}}); err == nil || !strings.Contains(err.Error(), label) {
			t.Errorf("label %s=%s: %v", label, value, err)
		}
	}
}

func TestComposeDependencies(t *testing.T) {
	all := []Container{
		{Name: "shop-db-1", Labels: map[string]string{LabelProject: "shop", LabelService: "db"}},
		{Name: "shop-web-1", Labels: map[string]string{LabelProject: "shop", LabelService: "web", LabelDependsOn: "db:service_started:false,cache:service_healthy:true"}},
		{Name: "shop-cache-1", Labels: map[string]string{LabelProject: "shop", LabelService: "cache"}},
		{Name: "other-db-1", Labels: map[string]string{LabelProject: "other", LabelService: "db"}},
	}
	got := ComposeDependencies(all[1], all)
	slices.Sort(got)
	if !slices.Equal(got, []string{"shop-cache-1", "shop-db-1"}) {
		t.Errorf("got %v", got)
	}
	if d := ComposeDependencies(all[0], all); d != nil {
		t.Errorf("db depends on %v", d)
	}
}

func TestOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nodes   []Node
		want    [][]string
		wantErr string
	}{
		{"independent", []Node{{Name: "b"}, {Name: "a"}}, [][]string{{"a", "b"}}, ""},
		{"chain", []Node{{Name: "web", After: []string{"app"}}, {Name: "app", After: []string{"db"}}, {Name: "db"}},
			[][]string{{"db"}, {"app"}, {"web"}}, ""},
		{"diamond", []Node{{Name: "d", After: []string{"b", "c"}}, {Name: "b", After: []string{"a"}}, {Name: "c", After: []string{"a"}}, {Name: "a"}},
			[][]string{{"a"}, {"b", "c"}, {"d"}}, ""},
		{"unknown and self dependencies are ignored", []Node{{Name: "a", After: []string{"gone", "a"}}}, [][]string{{"a"}}, ""},
		{"cycle", []Node{{Name: "a", After: []string{"b"}}, {Name: "b", After: []string{"c"}}, {Name: "c", After: []string{"a"}}},
			nil, "ordering cycle: a -> b -> c -> a"},
	} {
		got, err := Order(tc.nodes)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("%s: got %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestWithinDeadline(t *testing.T) {
	hot := Decision{Mode: Hot, Timeout: 30 * time.Second}
	for _, tc := range []struct {
		d         Decision
		remaining time.Duration
		want      Mode
		reason    string
	}{
		{hot, time.Minute, Hot, ""},
		{hot, 30 * time.Second, Hot, ""},
		{hot, 29 * time.Second, Cold, "the deadline is 29s away, less than its timeout 30s"},
		{hot, -5 * time.Second, Cold, "the deadline is 0s away, less than its timeout 30s"},
		{Decision{Mode: Cold, Timeout: time.Minute}, time.Second, Cold, ""},
		{Decision{Mode: Skip, Timeout: time.Minute}, time.Second, Skip, ""},
	} {
		m, why := tc.d.Within(tc.remaining)
		if m != tc.want || why != tc.reason {
			t.Errorf("%v with %v left: %s %q, want %s %q", tc.d.Mode, tc.remaining, m, why, tc.want, tc.reason)
		}
	}
}

func TestAfter(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   []string
	}{
		{nil, nil},
		{map[string]string{}, nil},
		{map[string]string{LabelAfter: ""}, nil},
		{map[string]string{LabelAfter: " , ,"}, nil},
		{map[string]string{LabelAfter: "db"}, []string{"db"}},
		{map[string]string{LabelAfter: "a, b"}, []string{"a", "b"}},
		{map[string]string{LabelAfter: " b ,a,,b, a "}, []string{"b", "a"}},
		{map[string]string{LabelAfter: "web\t,\tcache"}, []string{"web", "cache"}},
		{map[string]string{LabelMode: "hot"}, nil},
	} {
		if got := After(tc.labels); !slices.Equal(got, tc.want) {
			t.Errorf("After(%q) = %q, want %q", tc.labels, got, tc.want)
		}
	}
}
