package jsonout

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string // "" when valid, else a part of the error
	}{
		{`{"type":"result","command":"save","ok":true,"container":"web","checkpoint":"cp1","ref":"web:cp1","mode":"hot","memoryBytes":10,"elapsedMs":5}`, ""},
		{`{"type":"result","command":"save","ok":false,"container":"web","error":"no such container: web","hint":"docker ps -a lists containers"}`, ""},
		{`{"type":"progress","command":"resume","container":"web","phase":"verify","message":"checksums match","bytes":100}`, ""},
		{`{"type":"item","command":"ls","container":"web","checkpoint":"cp1","ref":"web:cp1","state":"complete","sizeBytes":1,"memoryBytes":0,"trust":{"level":"local"}}`, ""},
		{`{"type":"summary","command":"rm","ok":true,"removed":2,"dryRun":false}`, ""},
		{`{"type":"error","command":"trust ls","error":"cannot create the store"}`, ""},
		{`{"type":"result","command":"inspect","ok":true,"container":"w","checkpoint":"c","ref":"w:c","report":{"container":"w","processes":null,"host":{"kernel":"6.1"}}}`, ""},
		{`{"type":"result","command":"push","ok":true,"container":"w","checkpoint":"c","ref":"w:c","transfer":{"ref":"r/x:1","blobs":3,"bytes":9,"blobsSkipped":0,"bytesSkipped":0,"bytesMoved":9,"elapsedMs":1}}` + "\n", ""},

		{`[1]`, "a line is an object, not array"},
		{`{"type":"result","command":"save","ok":true,"container":"web"} {}`, "more than one JSON value"},
		{`{"type":"result","command":"save","ok":true,"container":"web"`, "EOF"},
		{`{"command":"save","ok":true}`, `needs a string "type"`},
		{`{"type":"result","ok":true}`, `needs a string "type" and a string "command"`},
		{`{"type":"result","command":"frobnicate","ok":true}`, `unknown command "frobnicate"`},
		{`{"type":"item","command":"save"}`, `save prints no "item" lines`},
		{`{"type":"result","command":"save","ok":true,"container":"web","colour":"red"}`, `unknown field "colour"`},
		{`{"type":"result","command":"save","ok":"yes","container":"web"}`, `"ok" is string, not boolean`},
		{`{"type":"result","command":"save","ok":true,"container":"web","memoryBytes":null}`, `"memoryBytes" is null`},
		{`{"type":"result","command":"save","ok":true}`, `no "container"`},
		{`{"type":"result","command":"save","ok":true,"container":"web","container":"db"}`, `field "container" given twice`},
		{`{"type":"result","command":"save","ok":false,"container":"web"}`, `"ok" is false and "error" is missing`},
		{`{"type":"result","command":"save","ok":true,"container":"web","error":"x"}`, `"ok" is true and "error" is there`},
		{`{"type":"progress","command":"save","container":"web"}`, `no "phase"`},
		{`{"type":"error","command":"save","hint":"x"}`, `no "error"`},
		{`{"type":"item","command":"ls","container":"web","checkpoint":"cp1","ref":"web:cp1","state":"complete","sizeBytes":1,"memoryBytes":0,"trust":{"level":"local","colour":1}}`, `"trust" has an unknown field "colour"`},
		{`{"type":"result","command":"pull","ok":true,"transfer":{"blobs":"3"}}`, `transfer: "blobs" is string, not number`},
	} {
		_, err := Check([]byte(tc.line))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.line, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one with %q", tc.line, err, tc.want)
		}
	}
}

func TestCheckAll(t *testing.T) {
	for _, tc := range []struct {
		out   string
		lines int
		want  string
	}{
		{"", 0, ""},
		{`{"type":"error","command":"ls","error":"x"}` + "\n", 1, ""},
		{`{"type":"summary","command":"doctor","ok":true,"failed":0,"warnings":0}` + "\n" + `{"type":"error","command":"ls","error":"x"}` + "\n", 2, ""},
		{`{"type":"error","command":"ls","error":"x"}`, 0, "does not end with a newline"},
		{`{"type":"error","command":"ls","error":"x"}` + "\n\n", 0, "line 2"},
		{"not json\n", 0, "line 1"},
	} {
		lines, err := CheckAll([]byte(tc.out))
		if tc.want == "" && (err != nil || len(lines) != tc.lines) || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %d lines, error %v; want %d lines, error with %q", tc.out, len(lines), err, tc.lines, tc.want)
		}
	}
}

// The schema is consistent: every field a line names has a kind, and every
// line type is one of Types.
func TestSchema(t *testing.T) {
	for cmd, lines := range Schema {
		for typ, l := range lines {
			if !slices.Contains(Types, typ) {
				t.Errorf("%s: unknown line type %q", cmd, typ)
			}
			for _, f := range l.Fields {
				if _, ok := Fields[f]; !ok {
					t.Errorf("%s %s: field %q is not in Fields", cmd, typ, f)
				}
			}
			if (typ == Result || typ == Summary) && !slices.Contains(l.Required, "ok") {
				t.Errorf("%s %s: no ok", cmd, typ)
			}
		}
		if _, ok := lines[Error]; !ok {
			t.Errorf("%s prints no error lines", cmd)
		}
	}
}

// docs/json.md says what the schema says: every field with its kind, the
// fields of every object, and for every command, its lines with the
// fields they always have and those they may have.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string][]string{} // heading -> its table rows
	var heading string
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(l, "#"))
		case strings.HasPrefix(l, "| `"):
			sections[heading] = append(sections[heading], l)
		}
	}
	cells := func(row string) []string {
		parts := strings.Split(strings.Trim(row, "|"), "|")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	tick := regexp.MustCompile("`([^`]+)`")
	names := func(cell string) []string {
		var out []string
		for _, m := range tick.FindAllStringSubmatch(cell, -1) {
			out = append(out, m[1])
		}
		sort.Strings(out)
		return out
	}
	fieldTable := func(heading string, want []Field) {
		t.Helper()
		got := map[string]string{}
		for _, row := range sections[heading] {
			c := cells(row)
			got[strings.Trim(c[0], "`")] = c[1]
		}
		for _, f := range want {
			if k, ok := got[f.Name]; !ok {
				t.Errorf("docs/json.md, %s: no row for %q", heading, f.Name)
			} else if k != string(f.Kind) {
				t.Errorf("docs/json.md, %s: %q is %s, the schema says %s", heading, f.Name, k, f.Kind)
			}
			delete(got, f.Name)
		}
		for name := range got {
			t.Errorf("docs/json.md, %s: %q is not in the schema", heading, name)
		}
	}
	var all []Field
	for _, f := range Fields {
		all = append(all, f)
	}
	fieldTable("Fields", all)
	fieldTable("`trust`", trustFields)
	fieldTable("`transfer`", transferFields)
	fieldTable("`report`", reportFields)
	fieldTable("`counts`", countsFields)

	for cmd, lines := range Schema {
		heading := "ckpt " + cmd
		rows, ok := sections[heading]
		if !ok {
			t.Errorf("docs/json.md has no section %q", heading)
			continue
		}
		documented := map[string]bool{}
		for _, row := range rows {
			c := cells(row)
			typ := strings.Trim(c[0], "`")
			documented[typ] = true
			l, ok := lines[typ]
			if !ok {
				t.Errorf("docs/json.md, %s: %s prints no %q lines", heading, cmd, typ)
				continue
			}
			req := slices.Sorted(slices.Values(l.Required))
			opt := slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(l.Fields), func(f string) bool { return slices.Contains(l.Required, f) })))
			if got := names(c[1]); !slices.Equal(got, req) {
				t.Errorf("docs/json.md, %s, %s: always %v, the schema says %v", heading, typ, got, req)
			}
			if got := names(c[2]); !slices.Equal(got, opt) {
				t.Errorf("docs/json.md, %s, %s: when they apply %v, the schema says %v", heading, typ, got, opt)
			}
		}
		for typ := range lines {
			if !documented[typ] {
				t.Errorf("docs/json.md, %s: no row for %q lines", heading, typ)
			}
		}
	}
	for _, typ := range Types {
		if _, ok := sections["`"+typ+"`"]; !ok && !strings.Contains(string(b), "### `"+typ+"`") {
			t.Errorf("docs/json.md does not describe %q lines", typ)
		}
	}
	if !strings.Contains(string(b), "\n## Changes\n") {
		t.Error(`docs/json.md has no "Changes" section`)
	}
}
