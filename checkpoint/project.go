package checkpoint

import (
	"context"
	"slices"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/ckpt-dev/ckpt/internal/engine"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/policy"
)

// Project returns the running containers of compose project project,
// dependents first: the order to save them in.
func Project(ctx context.Context, eng Engine, project string) ([]string, error) {
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
	names, err := policy.DependencyOrder(cs)
	slices.Reverse(names)
	return names, err
}
