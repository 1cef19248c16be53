package app

import (
	"strings"

	"github.com/distribution/reference"
	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/store"
)

// flagsBeforeArgs moves the flags a command was given after its arguments
// in front of them: "ckpt export web -o web.ckpt" reads as "ckpt export -o
// web.ckpt web". The command line library stops reading flags at the first
// argument, and people write them in both places. "--" ends the flags, as
// usual; "-" is an argument (standard input or output).
func flagsBeforeArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	flags, cmds := app.Flags, app.Commands
	// Walk the command path: global flags, then (sub)command names.
	for len(rest) > 0 {
		a := rest[0]
		if strings.HasPrefix(a, "-") && a != "-" && a != "--" {
			n := flagWidth(flags, rest)
			out, rest = append(out, rest[:n]...), rest[n:]
			continue
		}
		c := findCommand(cmds, a)
		if c == nil {
			break
		}
		out, rest = append(out, a), rest[1:]
		flags, cmds = c.Flags, c.Subcommands
	}
	var fl, pos []string
	for len(rest) > 0 {
		a := rest[0]
		switch {
		case a == "--":
			pos = append(pos, rest...)
			rest = nil
		case strings.HasPrefix(a, "-") && a != "-" && lookupFlag(flags, a) != nil:
			n := flagWidth(flags, rest)
			fl, rest = append(fl, rest[:n]...), rest[n:]
		default:
			pos, rest = append(pos, a), rest[1:]
		}
	}
	return append(append(out, fl...), pos...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// lookupFlag finds the flag that arg ("-o", "--store=x") names.
func lookupFlag(flags []cli.Flag, arg string) cli.Flag {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// flagWidth is how many arguments the flag at args[0] takes: one for a
// boolean or a "--name=value", two for a flag and its value.
func flagWidth(flags []cli.Flag, args []string) int {
	f := lookupFlag(flags, args[0])
	if f == nil || strings.Contains(args[0], "=") || len(args) < 2 {
		return 1
	}
	if dv, ok := f.(cli.DocGenerationFlag); ok && !dv.TakesValue() {
		return 1
	}
	return 2
}

// checkpointRef is a CONTAINER[:NAME] given on the command line: name is
// "" when only the container was given.
type checkpointRef struct{ container, name string }

// String is the reference as it is written: "web:cp1", or "web".
func (r checkpointRef) String() string { return refString(r.container, r.name) }

// refString writes container's checkpoint name as CONTAINER:NAME, the one
// way ckpt names a checkpoint; just the container when name is "".
func refString(container, name string) string {
	if name == "" {
		return container
	}
	return container + ":" + name
}

// parseRefs parses args, each a CONTAINER[:NAME]. A registry reference
// (HOST/REPOSITORY:TAG) is refused, saying where it goes: to pull, or to
// resume --from.
func parseRefs(args []string) ([]checkpointRef, error) {
	refs := make([]checkpointRef, 0, len(args))
	for _, a := range args {
		c, n, err := store.ParseRef(a)
		if err != nil {
			if _, rerr := reference.ParseNormalizedNamed(a); rerr == nil && isRegistryRef(a) {
				return nil, usagef("%s is a registry reference, not CONTAINER[:NAME]: ckpt pull or ckpt resume --from take it", a)
			}
			return nil, usageError{err: err}
		}
		refs = append(refs, checkpointRef{c, n})
	}
	return refs, nil
}
