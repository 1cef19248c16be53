package app

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ckpt-dev/ckpt/internal/hint"
	"github.com/ckpt-dev/ckpt/internal/store"
	"github.com/ckpt-dev/ckpt/internal/units"
)

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove checkpoints",
		ArgsUsage: "CONTAINER [NAME...]",
		Description: `Removes the named checkpoints of CONTAINER, or all of its checkpoints
(complete or not) when no NAME is given. The container itself is not touched.`,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("rm needs a container name")
			}
			container, names := c.Args().First(), c.Args().Tail()
			if !store.ValidName(container) {
				return usagef("invalid container name %q", container)
			}
			st, err := store.Open(c.String("store"))
			if err != nil {
				return err
			}
			ents, err := st.List(container)
			if err != nil {
				return err
			}
			if len(ents) == 0 {
				return hint.New("no checkpoints for container "+container, "ckpt ls lists the checkpoints in the store")
			}
			lock, err := st.Lock(container, "rm")
			if err != nil {
				return err
			}
			defer lock.Unlock()
			if len(names) == 0 {
				for _, e := range ents {
					names = append(names, e.Name)
				}
			}
			for _, n := range names {
				if err := st.Remove(container, n); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "removed %s:%s\n", container, n)
			}
			chunks, freed, _, err := st.CollectChunks()
			if err != nil {
				return fmt.Errorf("the checkpoints were removed, not all of the chunks they used: %w", err)
			}
			if chunks > 0 {
				fmt.Fprintf(c.App.Writer, "removed %d unused chunks (%s)\n", chunks, units.Bytes(freed))
			}
			return nil
		},
	}
}
