package engine

import (
	"os"
	"strings"
	"testing"
)

// docs/engines.md's table of engines (the one that starts with "| Docker")
// names every version tested in CI, in a row of its own, and its "Tested
// in CI" paragraph names it too.
func TestTestedVersionsInDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/engines.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var rows []string
	in := false
	for _, l := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(l, "| Docker"):
			in = true
		case !strings.HasPrefix(l, "|"):
			in = false
		case in && !strings.HasPrefix(l, "|---"):
			rows = append(rows, l)
		}
	}
	if len(rows) == 0 {
		t.Fatal(`docs/engines.md has no table that starts with "| Docker"`)
	}
	_, tested, _ := strings.Cut(doc, "**Tested in CI**")
	tested, _, _ = strings.Cut(tested, "\n\n")
	for _, v := range TestedVersions() {
		n := 0
		for _, r := range rows {
			if strings.Contains(r, v) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("docs/engines.md's table names %s in %d rows, want 1", v, n)
		}
		if !strings.Contains(tested, v) {
			t.Errorf("docs/engines.md's \"Tested in CI\" paragraph does not name %s", v)
		}
	}
}
