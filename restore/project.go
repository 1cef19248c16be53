package restore

import (
	"github.com/docker/docker/api/types/container"

	"github.com/ckpt-dev/ckpt/internal/format"
	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/policy"
)

// Project returns the containers of compose project project that have a
// complete checkpoint in st, dependencies first: the order to resume them
// in.
func Project(st *store.Store, project string) ([]string, error) {
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
		var labels map[string]string
		if cfg.Config != nil {
			labels = cfg.Config.Labels
		}
		cs = append(cs, policy.Container{Name: name, Labels: labels})
	}
	return policy.DependencyOrder(cs)
}
