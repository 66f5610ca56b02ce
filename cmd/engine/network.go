package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	networktypes "github.com/tendhq/tend/network/types"
)

// Networking: `engine network ...`, `engine port`, and the
// network flags of run and create.

const argNetwork = "network"

// netFlags are the network flags of run and create.
type netFlags struct {
	network, hostname   string
	publish, dns, hosts []string
	publishAll          bool
}

func (f *netFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.network, "network", "bridge", "connect the container to a network: bridge, none, host or a network's name")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port to the host: [ip:][hostPort:]containerPort[/tcp|udp]")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish every exposed port of the image to a random host port")
	fl.StringVar(&f.hostname, "hostname", "", "container host name (default: the short container id)")
	fl.StringArrayVar(&f.dns, "dns", nil, "set a DNS server for /etc/resolv.conf")
	fl.StringArrayVar(&f.hosts, "add-host", nil, "add a line to /etc/hosts (name:ip)")
}

// apply puts the flags into o; malformed values exit 125.
func (f *netFlags) apply(cmd *cobra.Command, o *api.CreateOptions) error {
	if cmd.Flags().Changed("network") {
		o.NetworkMode = f.network
	}
	for _, p := range f.publish {
		pm, err := networktypes.ParsePublish(p)
		if err != nil {
			return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
		}
		o.Publish = append(o.Publish, pm)
	}
	for _, h := range f.hosts {
		if _, err := networktypes.ParseAddHost(h); err != nil {
			return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
		}
	}
	if err := networktypes.CheckDNS(f.dns); err != nil {
		return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
	}
	if err := networktypes.CheckHostname(f.hostname); err != nil {
		return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
	}
	o.PublishAll, o.Hostname, o.DNS, o.ExtraHosts = f.publishAll, f.hostname, f.dns, f.hosts
	return nil
}

func newNetworkCommand(g *globals, s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks", Args: exactArgs(0)}
	co := cli.NetworkOptions{Stdout: s.Stdout, Stderr: s.Stderr}
	var labels []string
	create := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a bridge network; its containers reach each other by name",
		Args:  namedArgs(exactArgs(1), false, argNetwork),
		RunE: func(cmd *cobra.Command, args []string) error {
			co.Create.Name = args[0]
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				if k == "" {
					return invalid("invalid label %q: want KEY=VALUE", l)
				}
				if co.Create.Labels == nil {
					co.Create.Labels = map[string]string{}
				}
				co.Create.Labels[k] = v
			}
			return g.withClient(func(c *client.Client) error { return cli.NetworkCreate(cmd.Context(), c, co) })
		},
	}
	create.Flags().StringVar(&co.Create.Subnet, "subnet", "", "IPv4 subnet in CIDR form (default: a free /24 of 10.88.0.0/14)")
	create.Flags().StringArrayVar(&labels, "label", nil, "set metadata (KEY=VALUE)")
	lo := cli.NetworkOptions{Stdout: s.Stdout, Stderr: s.Stderr}
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.NetworkList(cmd.Context(), c, lo) })
		},
	}
	ls.Flags().StringVar(&lo.Format, "format", "", "output format: table or json (one JSON object per line)")
	ls.Flags().BoolVarP(&lo.Quiet, "quiet", "q", false, "only display network IDs")
	names := func(use, short string, fn func(*cobra.Command, *client.Client, cli.NetworkOptions) error) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  namedArgs(minArgs(1), true, argNetwork),
			RunE: func(cmd *cobra.Command, args []string) error {
				o := cli.NetworkOptions{Names: args, Stdout: s.Stdout, Stderr: s.Stderr}
				return g.withClient(func(c *client.Client) error { return fn(cmd, c, o) })
			},
		}
	}
	inspect := names("inspect NETWORK [NETWORK...]", "Display detailed information on one or more networks",
		func(cmd *cobra.Command, c *client.Client, o cli.NetworkOptions) error {
			return cli.NetworkInspect(cmd.Context(), c, o)
		})
	rm := names("rm NETWORK [NETWORK...]", "Remove one or more networks (not while containers use them)",
		func(cmd *cobra.Command, c *client.Client, o cli.NetworkOptions) error {
			return cli.NetworkRemove(cmd.Context(), c, o)
		})
	rm.Aliases = []string{"remove"}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove all networks no container uses",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := cli.NetworkOptions{Stdout: s.Stdout, Stderr: s.Stderr}
			return g.withClient(func(c *client.Client) error { return cli.NetworkPrune(cmd.Context(), c, o) })
		},
	}
	prune.Flags().BoolP("force", "f", false, "do not prompt for confirmation (there is no prompt)")
	cmd.AddCommand(create, ls, inspect, rm, prune)
	cmd.AddCommand(newNetworkConnectCommands(g, s)...)
	return cmd
}

func newPortCommand(g *globals, s cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  namedArgs(rangeArgs(1, 2), false, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := cli.PortOptions{Ref: args[0], Stdout: s.Stdout}
			if len(args) == 2 {
				o.Filter = args[1]
			}
			return g.withClient(func(c *client.Client) error { return cli.Port(cmd.Context(), c, o) })
		},
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(lo, hi)(c, args); err != nil {
			return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
		}
		return nil
	}
}
