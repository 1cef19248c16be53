// Package jsonout is the schema of ckpt's --json output, as docs/json.md
// describes it: JSON lines, each one object with a "type" and a "command",
// then the fields of that type for that command. A field name has one kind
// and one meaning wherever it appears.
//
// Check validates one line against the schema. The command line's unit
// tests and the integration tests run every command's --json output
// through it, and a test here checks that docs/json.md says what the
// schema says.
package jsonout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Kind is the JSON kind of a field's value.
type Kind string

// The kinds of values.
const (
	String Kind = "string"
	Number Kind = "number"
	Bool   Kind = "boolean"
	Object Kind = "object"
	Array  Kind = "array"
)

// The line types.
const (
	// Progress is a step of work under way.
	Progress = "progress"
	// Result is the outcome for one container or checkpoint, or for the
	// command when it works on one thing only.
	Result = "result"
	// Item is one entry of a listing.
	Item = "item"
	// Summary is the totals of a command that worked on several things.
	Summary = "summary"
	// Error is a failure of the command as a whole, before or outside any
	// result.
	Error = "error"
)

// Types lists the line types, in the order docs/json.md describes them.
var Types = []string{Progress, Result, Item, Summary, Error}

// Field is one field of a line, or of an object in a line.
type Field struct {
	Name string
	Kind Kind
	// Nullable allows null for the field (Go's nil slices in the
	// documents that inspect reports as they are).
	Nullable bool
	// Fields are an object's fields, checked when not nil.
	Fields []Field
}

// Line is what one command prints in lines of one type: the fields they
// may have besides "type" and "command", and those they must have.
type Line struct {
	Fields   []string
	Required []string
}

// trustFields are those of a checkpoint's "trust" object.
var trustFields = []Field{
	{Name: "level", Kind: String}, {Name: "signer", Kind: String},
	{Name: "key", Kind: String}, {Name: "reason", Kind: String},
}

// transferFields are those of a push's or pull's "transfer" object.
var transferFields = []Field{
	{Name: "ref", Kind: String}, {Name: "digest", Kind: String},
	{Name: "blobs", Kind: Number}, {Name: "bytes", Kind: Number},
	{Name: "blobsSkipped", Kind: Number}, {Name: "bytesSkipped", Kind: Number},
	{Name: "bytesMoved", Kind: Number}, {Name: "elapsedMs", Kind: Number},
}

// countsFields are those of a hook's "counts" object.
var countsFields = []Field{
	{Name: "hot", Kind: Number}, {Name: "cold", Kind: Number},
	{Name: "skipped", Kind: Number}, {Name: "failed", Kind: Number},
}

// reportFields are those of inspect's "report" object. Their own fields
// are not checked.
var reportFields = []Field{
	{Name: "container", Kind: String}, {Name: "name", Kind: String},
	{Name: "created", Kind: String}, {Name: "mode", Kind: String},
	{Name: "imported", Kind: Bool}, {Name: "trust", Kind: Object, Fields: trustFields},
	{Name: "asks", Kind: Array}, {Name: "leftRunning", Kind: Bool},
	{Name: "sizeBytes", Kind: Number}, {Name: "restartPolicy", Kind: Object},
	{Name: "saved", Kind: Object}, {Name: "host", Kind: Object},
	{Name: "processState", Kind: String}, {Name: "processes", Kind: Array, Nullable: true},
	{Name: "pageSize", Kind: Number}, {Name: "memoryPages", Kind: Number},
	{Name: "memoryBytes", Kind: Number}, {Name: "volumes", Kind: Array, Nullable: true},
	{Name: "binds", Kind: Array, Nullable: true}, {Name: "skipped", Kind: Array, Nullable: true},
	{Name: "layer", Kind: Object}, {Name: "timings", Kind: Array, Nullable: true},
}

// Fields are the fields lines may have besides "type" and "command", each
// with its one kind.
var Fields = fieldMap([]Field{
	// Outcome.
	{Name: "ok", Kind: Bool},
	{Name: "error", Kind: String},
	{Name: "hint", Kind: String},
	// What a line is about.
	{Name: "container", Kind: String},
	{Name: "checkpoint", Kind: String},
	{Name: "ref", Kind: String},
	// Progress.
	{Name: "phase", Kind: String},
	{Name: "message", Kind: String},
	{Name: "warning", Kind: Bool},
	{Name: "elapsedMs", Kind: Number},
	{Name: "bytes", Kind: Number},
	{Name: "totalBytes", Kind: Number},
	{Name: "bytesPerSecond", Kind: Number},
	// Checkpoints.
	{Name: "state", Kind: String},
	{Name: "created", Kind: String},
	{Name: "mode", Kind: String},
	{Name: "sizeBytes", Kind: Number},
	{Name: "memoryBytes", Kind: Number},
	{Name: "leftRunning", Kind: Bool},
	{Name: "trust", Kind: Object, Fields: trustFields},
	{Name: "asks", Kind: Array},
	// Resumes.
	{Name: "memoryRestored", Kind: Bool},
	{Name: "recreated", Kind: Bool},
	{Name: "recovery", Kind: String},
	{Name: "notes", Kind: Array},
	{Name: "dropped", Kind: Array},
	// Transfers.
	{Name: "transfer", Kind: Object, Fields: transferFields},
	{Name: "output", Kind: String},
	{Name: "files", Kind: Number},
	{Name: "archiveBytes", Kind: Number},
	{Name: "compression", Kind: String},
	{Name: "encryption", Kind: String},
	// Removals.
	{Name: "dryRun", Kind: Bool},
	{Name: "action", Kind: String},
	{Name: "reason", Kind: String},
	{Name: "removed", Kind: Number},
	{Name: "kept", Kind: Number},
	{Name: "freedBytes", Kind: Number},
	{Name: "chunks", Kind: Number},
	{Name: "chunkBytes", Kind: Number},
	// Inspect.
	{Name: "report", Kind: Object, Fields: reportFields},
	// Doctor.
	{Name: "check", Kind: String},
	{Name: "status", Kind: String},
	{Name: "finding", Kind: String},
	{Name: "fix", Kind: String},
	{Name: "failed", Kind: Number},
	{Name: "warnings", Kind: Number},
	// Trust.
	{Name: "name", Kind: String},
	{Name: "fingerprint", Kind: String},
	{Name: "key", Kind: String},
	{Name: "comment", Kind: String},
	// Policy files.
	{Name: "file", Kind: String},
	{Name: "line", Kind: Number},
	{Name: "level", Kind: String},
	{Name: "rules", Kind: Number},
	{Name: "defaultMode", Kind: String},
	{Name: "deadline", Kind: String},
	{Name: "parallel", Kind: Number},
	// Hooks.
	{Name: "counts", Kind: Object, Fields: countsFields},
	// Version.
	{Name: "release", Kind: String},
	{Name: "commit", Kind: String},
	{Name: "go", Kind: String},
	{Name: "platform", Kind: String},
	{Name: "formatVersion", Kind: Number},
	{Name: "formatReadsFrom", Kind: Number},
	{Name: "formatChunkedFrom", Kind: Number},
	{Name: "engines", Kind: Array},
	{Name: "criuNeeded", Kind: String},
	{Name: "criuKernel", Kind: String},
	{Name: "criuMinimum", Kind: String},
})

func fieldMap(fs []Field) map[string]Field {
	m := make(map[string]Field, len(fs))
	for _, f := range fs {
		m[f.Name] = f
	}
	return m
}

// fields makes a Line: the names before "|" are required, the others
// optional.
func fields(spec string) Line {
	req, opt, _ := strings.Cut(spec, "|")
	l := Line{Required: strings.Fields(req)}
	l.Fields = append(slices.Clone(l.Required), strings.Fields(opt)...)
	return l
}

// Lines shared by several commands.
var (
	progressLine = fields("phase | container checkpoint message warning elapsedMs bytes totalBytes bytesPerSecond")
	errorLine    = fields("error | hint")
)

// Schema says, for each command with --json (named as on the command line,
// without "ckpt"), which lines it prints and their fields.
var Schema = map[string]map[string]Line{
	"save": {
		Progress: progressLine,
		Result:   fields("ok container | checkpoint ref mode memoryBytes elapsedMs recovery notes error hint"),
		Error:    errorLine,
	},
	"resume": {
		Progress: progressLine,
		Result:   fields("ok | container checkpoint ref mode memoryRestored recreated notes dropped trust transfer error hint"),
		Error:    errorLine,
	},
	"push": {
		Progress: progressLine,
		Result:   fields("ok container checkpoint ref transfer | error hint"),
		Error:    errorLine,
	},
	"pull": {
		Progress: progressLine,
		Result:   fields("ok transfer | container checkpoint ref trust error hint"),
		Error:    errorLine,
	},
	"export": {
		Progress: progressLine,
		Result:   fields("ok container checkpoint ref output files bytes archiveBytes compression encryption elapsedMs | error hint"),
		Error:    errorLine,
	},
	"import": {
		Progress: progressLine,
		Result:   fields("ok container checkpoint ref files bytes trust elapsedMs | asks error hint"),
		Error:    errorLine,
	},
	"ls": {
		Item:  fields("container checkpoint ref state sizeBytes memoryBytes | created mode leftRunning trust error"),
		Error: errorLine,
	},
	"rm": {
		Result:  fields("ok container | checkpoint ref dryRun error hint"),
		Summary: fields("ok removed dryRun | chunks chunkBytes"),
		Error:   errorLine,
	},
	"prune": {
		Result:  fields("ok container | checkpoint ref action reason sizeBytes dryRun error hint"),
		Summary: fields("ok removed kept freedBytes dryRun | chunks chunkBytes"),
		Error:   errorLine,
	},
	"inspect": {
		Result: fields("ok container checkpoint ref report"),
		Error:  errorLine,
	},
	"doctor": {
		Item:    fields("check status finding | fix"),
		Summary: fields("ok failed warnings"),
		Error:   errorLine,
	},
	"version": {
		Result: fields("ok release commit go platform formatVersion formatReadsFrom formatChunkedFrom engines criuNeeded criuKernel criuMinimum"),
		Error:  errorLine,
	},
	"trust key": {
		Result: fields("ok key fingerprint | comment"),
		Error:  errorLine,
	},
	"trust add": {
		Result: fields("ok name fingerprint | comment"),
		Error:  errorLine,
	},
	"trust ls": {
		Item:  fields("name fingerprint key | comment"),
		Error: errorLine,
	},
	"trust rm": {
		Result: fields("ok name fingerprint"),
		Error:  errorLine,
	},
	"policy check": {
		Item:   fields("file line level message"),
		Result: fields("ok file | rules defaultMode deadline parallel error hint"),
		Error:  errorLine,
	},
	"hook run shutdown": {
		Result:  fields("ok container action | checkpoint ref mode reason elapsedMs dryRun error hint"),
		Summary: fields("ok counts | dryRun"),
		Error:   errorLine,
	},
	"hook run boot": {
		Result:  fields("ok container action | checkpoint ref mode reason memoryRestored elapsedMs dryRun error hint"),
		Summary: fields("ok counts | dryRun"),
		Error:   errorLine,
	},
}

// Check validates one line of --json output (without its newline, or
// with it) and returns it decoded.
func Check(line []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more than one JSON value on the line")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a line is an object, not %s", kindOf(v))
	}
	typ, _ := obj["type"].(string)
	cmd, _ := obj["command"].(string)
	if typ == "" || cmd == "" {
		return nil, errors.New(`a line needs a string "type" and a string "command"`)
	}
	lines, ok := Schema[cmd]
	if !ok {
		return nil, fmt.Errorf("unknown command %q", cmd)
	}
	spec, ok := lines[typ]
	if !ok {
		return nil, fmt.Errorf("%s prints no %q lines", cmd, typ)
	}
	for name, val := range obj {
		if name == "type" || name == "command" {
			continue
		}
		if !slices.Contains(spec.Fields, name) {
			return nil, fmt.Errorf("%s %s line: unknown field %q", cmd, typ, name)
		}
		if err := checkValue(Fields[name], val); err != nil {
			return nil, fmt.Errorf("%s %s line: %w", cmd, typ, err)
		}
	}
	for _, name := range spec.Required {
		if _, ok := obj[name]; !ok {
			return nil, fmt.Errorf("%s %s line: no %q", cmd, typ, name)
		}
	}
	// A result that failed says why; one that did not has no error.
	if ok, has := obj["ok"].(bool); has && typ == Result {
		switch _, hasErr := obj["error"]; {
		case ok && hasErr:
			return nil, fmt.Errorf(`%s result line: "ok" is true and "error" is there`, cmd)
		case !ok && !hasErr:
			return nil, fmt.Errorf(`%s result line: "ok" is false and "error" is missing`, cmd)
		}
	}
	return obj, nil
}

// CheckAll validates every line of out, the whole --json output of one
// command, and returns them decoded. Output that is not made of whole
// lines is refused.
func CheckAll(out []byte) ([]map[string]any, error) {
	if len(out) > 0 && out[len(out)-1] != '\n' {
		return nil, errors.New("the output does not end with a newline")
	}
	var all []map[string]any
	for i, l := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		if len(out) == 0 {
			break
		}
		obj, err := Check(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %s", i+1, err, l)
		}
		all = append(all, obj)
	}
	return all, nil
}

func checkValue(f Field, v any) error {
	if v == nil {
		if f.Nullable {
			return nil
		}
		return fmt.Errorf("%q is null", f.Name)
	}
	if k := kindOf(v); k != f.Kind {
		return fmt.Errorf("%q is %s, not %s", f.Name, k, f.Kind)
	}
	obj, ok := v.(map[string]any)
	if !ok || f.Fields == nil {
		return nil
	}
	for name, val := range obj {
		i := slices.IndexFunc(f.Fields, func(sub Field) bool { return sub.Name == name })
		if i < 0 {
			return fmt.Errorf("%q has an unknown field %q", f.Name, name)
		}
		if err := checkValue(f.Fields[i], val); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return nil
}

func kindOf(v any) Kind {
	switch v.(type) {
	case string:
		return String
	case json.Number:
		return Number
	case bool:
		return Bool
	case map[string]any:
		return Object
	case []any:
		return Array
	}
	return "null"
}

// decodeValue decodes the next value of dec, refusing objects that give a
// field twice (encoding/json keeps the last one silently).
func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := k.(string)
			if _, dup := obj[key]; dup {
				return nil, fmt.Errorf("field %q given twice", key)
			}
			if obj[key], err = decodeValue(dec); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token() // '}'
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token() // ']'
		return arr, err
	}
	return tok, nil
}
