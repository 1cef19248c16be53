package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/inspect"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
	"github.com/ckpt-dev/ckpt/restore"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show what a checkpoint holds",
		ArgsUsage: "CONTAINER[:NAME]",
		Description: `Shows a checkpoint (by default the container's newest complete one): when
and where it was made, its processes with their command lines, memory, open
files and sockets (decoded from the CRIU images, without running CRIU), its
volumes, bind mounts and writable layer, and how long the save took. It
reads the checkpoint only; the files' checksums are checked by resume.`,
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("inspect takes one checkpoint: CONTAINER or CONTAINER:NAME")
			}
			container, name, err := store.ParseRef(c.Args().First())
			if err != nil {
				return usageError{err: err}
			}
			_, ck, err := openCheckpoint(c, container, name)
			if err != nil {
				return err
			}
			r, err := inspect.Read(ck)
			if err != nil {
				h := "the image is damaged, or was written by a CRIU whose images this ckpt cannot read; ckpt resume checks every file's sha256 before it uses any"
				if errors.Is(err, fs.ErrPermission) {
					h = "checkpoints are readable by root only: run ckpt as root"
				}
				return hint.Wrap(fmt.Errorf("cannot read checkpoint %s:%s: %w", ck.Container, ck.Name, err), h)
			}
			// A checkpoint without a readable container.json asks for
			// nothing that can be told; resume finds it damaged.
			r.Asks, _ = restore.Powers(ck)
			if js := jsonOut(c); js != nil {
				js.result(inspectResult{Container: ck.Container, Checkpoint: ck.Name, Ref: refString(ck.Container, ck.Name), Report: r}, nil)
				return nil
			}
			return printInspect(c.App.Writer, r)
		},
	}
}

// inspectResult is the result line of ckpt inspect --json: the report,
// as one object.
type inspectResult struct {
	Container  string          `json:"container"`
	Checkpoint string          `json:"checkpoint"`
	Ref        string          `json:"ref"`
	Report     *inspect.Report `json:"report"`
}

// printInspect writes the report for a person.
func printInspect(out io.Writer, r *inspect.Report) error {
	var b bytes.Buffer
	if err := formatInspect(&b, r); err != nil {
		return err
	}
	// tabwriter pads the last column of a table too: trim it.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(out, strings.Join(lines, "\n"))
	return err
}

func formatInspect(w io.Writer, r *inspect.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", label, fmt.Sprintf(format, args...))
	}
	line("checkpoint", "%s:%s", r.Container, r.Name)
	line("created", "%s", r.Created.Local().Format("2006-01-02 15:04:05 MST"))
	switch r.Mode {
	case format.ModeHot:
		line("mode", "hot (memory and data)")
	case format.ModeCold:
		line("mode", "cold (data only)")
	default:
		line("mode", "%s", r.Mode)
	}
	switch {
	case r.Imported && r.Trust.Trusted():
		line("origin", "imported; %s: it comes back whole", r.Trust)
	case r.Imported && len(r.Asks) > 0:
		line("origin", "imported; not trusted (%s): it comes back as data only, in a plain container, without what it asks for: %s", r.Trust.Reason, strings.Join(r.Asks, "; "))
	case r.Imported:
		line("origin", "imported; not trusted (%s): it comes back as data only, in a plain container", r.Trust.Reason)
	case len(r.Asks) > 0:
		line("origin", "made on this host; its container has: %s", strings.Join(r.Asks, "; "))
	default:
		line("origin", "made on this host")
	}
	if r.LeftRunning {
		line("left running", "yes")
	} else {
		line("left running", "no (the container stopped at the save)")
	}
	line("size", "%s", units.Bytes(r.SizeBytes))
	policy := r.RestartPolicy.Name
	if policy == "" {
		policy = "no"
	}
	if r.RestartPolicy.MaximumRetryCount > 0 {
		policy += ":" + strconv.Itoa(r.RestartPolicy.MaximumRetryCount)
	}
	line("restart policy", "%s", policy)
	if s := r.Saved; s.ID != "" || s.Image != "" {
		line("container", "id %s, image %s (%s)", shortID(s.ID), orUnknown(s.Image, "?"), shortID(s.ImageID))
	}
	if r.Saved.Project != "" {
		line("compose project", "%s", r.Saved.Project)
	}
	fmt.Fprintln(tw)
	h := r.Host
	line("made on", "%s", orUnknown(h.Hostname, "?"))
	line("kernel", "%s (%s)", orUnknown(h.Kernel, "?"), orUnknown(h.Arch, "?"))
	line("engine", "Docker %s, API %s", orUnknown(h.EngineVersion, "?"), orUnknown(h.APIVersion, "?"))
	line("storage driver", "%s", orUnknown(h.StorageDriver, "?"))
	line("cgroup", "%s", cgroupLabel(h.CgroupVersion))
	line("CRIU", "%s", orUnknown(h.CRIUVersion, "?"))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if r.ProcessState != "" {
		fmt.Fprintf(w, "processes: %s\n", r.ProcessState)
	} else {
		printProcesses(w, r)
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "mounts:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range r.Volumes {
		kind := "volume"
		if v.Anonymous {
			kind = "anonymous volume"
		}
		fmt.Fprintf(tw, "  %s %s\t%s\t%s, %s\n", kind, v.Name, v.Destination, units.Bytes(v.Bytes), plural(v.Entries, "entry", "entries"))
	}
	for _, b := range r.Binds {
		mode := "read-only"
		if b.ReadWrite {
			mode = "read-write"
		}
		fmt.Fprintf(tw, "  bind %s\t%s\t%s, contents not saved\n", b.Source, b.Destination, mode)
	}
	if len(r.Volumes) == 0 {
		fmt.Fprintln(tw, "  no volumes")
	}
	if len(r.Binds) == 0 {
		fmt.Fprintln(tw, "  no bind mounts")
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(tw, "  skipped: %s\n", s)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	l := r.Layer
	fmt.Fprintf(w, "writable layer: %s, %s, %s\n", plural(l.Entries, "entry", "entries"), units.Bytes(l.Bytes), plural(l.Deleted, "deleted path", "deleted paths"))
	var ts []string
	for _, t := range r.Timings {
		ts = append(ts, fmt.Sprintf("%s %s", t.Phase, units.Duration(time.Duration(t.Millis)*time.Millisecond)))
	}
	if len(ts) > 0 {
		fmt.Fprintf(w, "timings: %s\n", strings.Join(ts, ", "))
	}
	return nil
}

// printProcesses writes the process table and each process's open files.
func printProcesses(w io.Writer, r *inspect.Report) {
	fmt.Fprintf(w, "processes: %d, memory %s (%d pages of %s)\n", len(r.Processes), units.Bytes(r.MemoryBytes), r.MemoryPages, units.Bytes(r.PageSize))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PID\tPPID\tTHREADS\tMEMORY\tCOMM\tCOMMAND")
	var notes []string
	for _, p := range r.Processes {
		cmd := argvString(p.Command)
		if p.CommandTruncated {
			cmd += " …"
		}
		if cmd == "" {
			cmd = "-"
			notes = append(notes, fmt.Sprintf("  pid %d: no command line: %s", p.PID, p.CommandUnavailable))
		}
		comm := p.Comm
		if p.State != "alive" {
			comm += " (" + p.State + ")"
		}
		fmt.Fprintf(tw, "  %d\t%d\t%d\t%s\t%s\t%s\n", p.PID, p.PPID, len(p.Threads), units.Bytes(p.MemoryBytes), comm, cmd)
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	for _, p := range r.Processes {
		if len(p.Files) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nopen files of pid %d (%s):\n", p.PID, p.Comm)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  FD\tTYPE\tSTATE\tPATH / ADDRESS")
		for _, f := range p.Files {
			state, what := "", f.Path
			if s := f.Socket; s != nil {
				state = s.State
				what = s.Local
				if f.Type == "unix" && what == "" {
					what = "(unnamed)"
				}
				if s.Peer != "" {
					what += " -> " + s.Peer
				}
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", f.FD, f.Type, state, what)
		}
		tw.Flush()
	}
}

// argvString writes argv the way a shell would read it back.
func argvString(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`!*?[]{}()<>|&;#~") || strings.IndexFunc(a, func(r rune) bool { return !strconv.IsPrint(r) }) >= 0 {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// shortID shortens an id as docker ps does, keeping a sha256: prefix.
func shortID(id string) string {
	prefix, hex, ok := strings.Cut(id, ":")
	if !ok {
		prefix, hex = "", id
	} else {
		prefix += ":"
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return prefix + orUnknown(hex, "?")
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}

func orUnknown(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

func cgroupLabel(v string) string {
	if v == "" {
		return "?"
	}
	return "v" + v
}
