package main

import (
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/client"
)

func newCheckpointCommand(g *globals, s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{Use: "checkpoint", Short: "Manage checkpoints of containers (CRIU)", Args: exactArgs(0)}
	co := cli.CheckpointOptions{Stdout: s.Stdout}
	create := &cobra.Command{
		Use:   "create [OPTIONS] CONTAINER CHECKPOINT",
		Short: "Checkpoint a running container; it stops unless --leave-running",
		Args:  namedArgs(exactArgs(2), false, argContainer, argCheckpoint),
		RunE: func(cmd *cobra.Command, args []string) error {
			co.Ref, co.Name = args[0], args[1]
			return g.withClient(func(c *client.Client) error { return cli.CheckpointCreate(cmd.Context(), c, co) })
		},
	}
	create.Flags().BoolVar(&co.LeaveRunning, "leave-running", false, "leave the container running after the checkpoint")
	lo := cli.CheckpointOptions{Stdout: s.Stdout}
	ls := &cobra.Command{
		Use:     "ls [OPTIONS] CONTAINER",
		Aliases: []string{"list"},
		Short:   "List the checkpoints of a container",
		Args:    namedArgs(exactArgs(1), false, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			lo.Ref = args[0]
			return g.withClient(func(c *client.Client) error { return cli.CheckpointList(cmd.Context(), c, lo) })
		},
	}
	ls.Flags().StringVar(&lo.Format, "format", "", "output format: table or json (one JSON object per line)")
	rm := &cobra.Command{
		Use:     "rm CONTAINER CHECKPOINT",
		Aliases: []string{"remove"},
		Short:   "Remove a checkpoint of a container",
		Args:    namedArgs(exactArgs(2), false, argContainer, argCheckpoint),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error {
				return cli.CheckpointRemove(cmd.Context(), c, cli.CheckpointOptions{Ref: args[0], Name: args[1], Stdout: s.Stdout})
			})
		},
	}
	cmd.AddCommand(create, ls, rm)
	return cmd
}
