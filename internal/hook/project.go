package hook

import (
	"context"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/policy"
)

// ProjectForSave returns the running containers of compose project
// project, dependents first (the order to save them in).
func ProjectForSave(ctx context.Context, eng *engine.Engine, project string) ([]string, error) {
	list, err := eng.Running(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", policy.LabelProject+"="+project))})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, hint.New("no running container of compose project "+project, "docker ps --filter label="+policy.LabelProject+"="+project+" lists them")
	}
	cs := make([]policy.Container, len(list))
	for i, c := range list {
		cs[i] = policy.Container{Name: engine.Name(&c), Labels: c.Config.Labels}
	}
	names, err := dependencyOrder(cs)
	slices.Reverse(names)
	return names, err
}

// ProjectForResume returns the containers of compose project project that
// have a complete checkpoint, dependencies first (the order to resume them
// in).
func ProjectForResume(st *store.Store, project string) ([]string, error) {
	ents, err := st.List("")
	if err != nil {
		return nil, err
	}
	latest := map[string]*store.Checkpoint{}
	for _, e := range ents {
		if e.State == store.StateComplete && e.Checkpoint.Manifest.Container.Project == project {
			latest[e.Container] = e.Checkpoint // List sorts oldest first
		}
	}
	if len(latest) == 0 {
		return nil, hint.New("no checkpoint of compose project "+project+" in "+st.Root, "ckpt ls lists the checkpoints")
	}
	var cs []policy.Container
	for name, ck := range latest {
		var cfg container.InspectResponse
		if err := ck.ReadJSON(format.ContainerFile, &cfg); err != nil {
			return nil, err
		}
		cs = append(cs, policy.Container{Name: name, Labels: cfg.Config.Labels})
	}
	return dependencyOrder(cs)
}

// dependencyOrder flattens the dependency levels of cs (compose's
// depends_on and io.ckpt.after labels), dependencies first.
func dependencyOrder(cs []policy.Container) ([]string, error) {
	var nodes []policy.Node
	for _, c := range cs {
		after := policy.ComposeDependencies(c, cs)
		if v := c.Labels[policy.LabelAfter]; v != "" {
			for _, a := range strings.Split(v, ",") {
				after = append(after, strings.TrimSpace(a))
			}
		}
		nodes = append(nodes, policy.Node{Name: c.Name, After: after})
	}
	levels, err := policy.Order(nodes)
	if err != nil {
		return nil, err
	}
	return slices.Concat(levels...), nil
}
