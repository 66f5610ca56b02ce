package main

import (
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/client"
)

// newNetworkConnectCommands are `network connect` and `network
// disconnect`, docker's commands; the engine answers that a container's
// network is fixed at create.
func newNetworkConnectCommands(g *globals, s cli.Streams) []*cobra.Command {
	mk := func(verb, short string, disconnect bool) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " NETWORK CONTAINER",
			Short: short,
			Args:  namedArgs(exactArgs(2), false, argNetwork, argContainer),
			RunE: func(cmd *cobra.Command, args []string) error {
				o := cli.NetworkConnectOptions{Network: args[0], Container: args[1], Disconnect: disconnect, Stdout: s.Stdout}
				return g.withClient(func(c *client.Client) error { return cli.NetworkConnect(cmd.Context(), c, o) })
			},
		}
	}
	return []*cobra.Command{
		mk("connect", "Connect a running container to a network (not supported: the network is fixed at create)", false),
		mk("disconnect", "Disconnect a container from a network (not supported: the network is fixed at create)", true),
	}
}
