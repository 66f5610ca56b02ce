package main

import (
	"strings"

	"github.com/spf13/cobra"

	backendtypes "github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/client"
)

// volumeArgs checks that each argument can be a volume name.
func volumeArgs(pa cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := pa(c, args); err != nil {
			return err
		}
		for _, a := range args {
			if err := backendtypes.ValidateVolumeName(a); err != nil {
				return &cli.StatusError{Code: 1, Err: err}
			}
		}
		return nil
	}
}

func newVolumeCommand(g *globals, s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes", Args: exactArgs(0)}
	opts := func() cli.VolumeOptions {
		return cli.VolumeOptions{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr}
	}

	var labels []string
	create := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume (a random name when none is given)",
		Args:  volumeArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := opts()
			o.Names = args
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				if k == "" {
					return invalid("invalid label %q: want KEY=VALUE", l)
				}
				if o.Labels == nil {
					o.Labels = map[string]string{}
				}
				o.Labels[k] = v
			}
			return g.withClient(func(c *client.Client) error { return cli.VolumeCreate(cmd.Context(), c, o) })
		},
	}
	create.Flags().StringArrayVarP(&labels, "label", "l", nil, "set metadata on the volume (KEY=VALUE)")

	lo := opts()
	ls := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.VolumeList(cmd.Context(), c, lo) })
		},
	}
	ls.Flags().BoolVarP(&lo.Quiet, "quiet", "q", false, "only display volume names")
	ls.Flags().StringVar(&lo.Format, "format", "", "output format: table or json (one JSON object per line)")

	inspect := &cobra.Command{
		Use:   "inspect VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes as JSON",
		Args:  volumeArgs(minArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := opts()
			o.Names = args
			return g.withClient(func(c *client.Client) error { return cli.VolumeInspect(cmd.Context(), c, o) })
		},
	}

	ro := opts()
	rm := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes; a volume in use by a container cannot be removed",
		Args:    volumeArgs(minArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ro.Names = args
			return g.withClient(func(c *client.Client) error { return cli.VolumeRemove(cmd.Context(), c, ro) })
		},
	}
	rm.Flags().BoolVarP(&ro.Force, "force", "f", false, "do not fail for a volume that does not exist")

	po := opts()
	prune := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes (anonymous ones unless --all)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.VolumePrune(cmd.Context(), c, po) })
		},
	}
	prune.Flags().BoolVarP(&po.All, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	prune.Flags().BoolVarP(&po.Force, "force", "f", false, "do not prompt for confirmation")

	cmd.AddCommand(create, ls, inspect, rm, prune)
	return cmd
}
