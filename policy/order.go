package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Node is a container with the containers it must come after.
type Node struct {
	Name  string
	After []string
}

// Order sorts nodes into levels for resuming: every node comes after the
// nodes it names in After, and the nodes of one level do not depend on each
// other, so they can run in parallel. Names in After that are not among the
// nodes are ignored (those containers are not being resumed). A cycle is an
// error that names it. Shutdown uses the levels in reverse: dependents are
// saved before what they depend on.
func Order(nodes []Node) ([][]string, error) {
	index := map[string]int{}
	for i, n := range nodes {
		index[n.Name] = i
	}
	// state: 0 unvisited, 1 in progress, 2 done; level of each done node.
	state := make([]int, len(nodes))
	level := make([]int, len(nodes))
	var visit func(i int, stack []string) error
	visit = func(i int, stack []string) error {
		switch state[i] {
		case 2:
			return nil
		case 1:
			from := slices.Index(stack, nodes[i].Name)
			return fmt.Errorf("ordering cycle: %s", strings.Join(append(stack[from:], nodes[i].Name), " -> "))
		}
		state[i] = 1
		stack = append(stack, nodes[i].Name)
		for _, dep := range nodes[i].After {
			j, ok := index[dep]
			if !ok || j == i {
				continue
			}
			if err := visit(j, stack); err != nil {
				return err
			}
			level[i] = max(level[i], level[j]+1)
		}
		state[i] = 2
		return nil
	}
	for i := range nodes {
		if err := visit(i, nil); err != nil {
			return nil, err
		}
	}
	var levels [][]string
	for i, n := range nodes {
		for len(levels) <= level[i] {
			levels = append(levels, nil)
		}
		levels[level[i]] = append(levels[level[i]], n.Name)
	}
	for _, l := range levels {
		slices.Sort(l)
	}
	return levels, nil
}

// DependencyOrder returns the names of cs, dependencies first: compose's
// depends_on (ComposeDependencies among cs) and io.ckpt.after (After).
func DependencyOrder(cs []Container) ([]string, error) {
	nodes := make([]Node, len(cs))
	for i, c := range cs {
		nodes[i] = Node{Name: c.Name, After: append(ComposeDependencies(c, cs), After(c.Labels)...)}
	}
	levels, err := Order(nodes)
	if err != nil {
		return nil, err
	}
	return slices.Concat(levels...), nil
}
