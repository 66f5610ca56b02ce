package main

import (
	"github.com/spf13/cobra"

	backendtypes "github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/format"
)

// dockerCommands are the docker CLI's everyday commands.
func dockerCommands(g *globals, s cli.Streams) []*cobra.Command {
	return []*cobra.Command{
		newRenameCommand(g), newUpdateCommand(g, s), newContainerCommand(g, s), newSystemCommand(g, s),
		newCpCommand(g, s), newDiffCommand(g, s), newExportCommand(g, s),
	}
}

func newRenameCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rename CONTAINER NEW_NAME",
		Short:   "Rename a container",
		Example: "  engine rename web frontend",
		Args:    namedArgs(exactArgs(2), false, argContainer, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.Rename(cmd.Context(), c, args[0], args[1]) })
		},
	}
}

func newUpdateCommand(g *globals, s cli.Streams) *cobra.Command {
	var memory, restart string
	var cpus float64
	var pids int64
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update the resources and restart policy of one or more containers",
		Example: `  engine update --memory 128m --cpus 0.5 web
  engine update --restart on-failure:5 worker`,
		Args: namedArgs(minArgs(1), true, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u api.UpdateOptions
			fl := cmd.Flags()
			if fl.Changed("memory") || fl.Changed("cpus") || fl.Changed("pids-limit") {
				// Unchanged limits keep their values: read them first.
				r := api.Resources{}
				if err := g.withClient(func(c *client.Client) error {
					ct, err := c.Inspect(cmd.Context(), args[0])
					if err == nil && len(args) == 1 {
						r = ct.Config.Resources
					}
					return nil
				}); err != nil {
					return err
				}
				if fl.Changed("memory") {
					n, err := format.ParseMemory(memory)
					if err != nil {
						return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
					}
					r.MemoryBytes = n
				}
				if fl.Changed("cpus") {
					r.CPUs = cpus
				}
				if fl.Changed("pids-limit") {
					r.PidsLimit = pids
				}
				if err := backendtypes.CheckResources(r, 0); err != nil {
					return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
				}
				u.Resources = &r
			}
			if fl.Changed("restart") {
				p, err := backendtypes.ParseRestartPolicy(restart)
				if err != nil {
					return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
				}
				u.Restart = &p
			}
			if u.Resources == nil && u.Restart == nil {
				return invalid("you must provide one or more flags when using this command")
			}
			return g.withClient(func(c *client.Client) error {
				return cli.Update(cmd.Context(), c, cli.UpdateOptions{Refs: args, Update: u, Stdout: s.Stdout, Stderr: s.Stderr})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&memory, "memory", "m", "", "memory limit (e.g. 16m, 1g; 0: none)")
	fl.Float64Var(&cpus, "cpus", 0, "number of CPUs (e.g. 1.5; 0: none)")
	fl.Int64Var(&pids, "pids-limit", 0, "maximum number of processes (0: unlimited)")
	fl.StringVar(&restart, "restart", "", "restart policy: no, always, on-failure[:N], unless-stopped")
	return cmd
}

func newPruneCommand(g *globals, s cli.Streams, system bool) *cobra.Command {
	o := cli.PruneOptions{Streams: s}
	short, example := "Remove all stopped containers", "  engine container prune -f\n  engine container prune -f --filter label=env=test"
	if system {
		short, example = "Remove unused data: stopped containers", "  engine system prune -f"
	}
	cmd := &cobra.Command{
		Use:     "prune [OPTIONS]",
		Short:   short,
		Example: example,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error {
				if system {
					return cli.SystemPrune(cmd.Context(), c, o)
				}
				return cli.ContainerPrune(cmd.Context(), c, o)
			})
		},
	}
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "do not prompt for confirmation")
	if !system {
		cmd.Flags().StringArrayVar(&o.Filters, "filter", nil, "filter: label=KEY[=VALUE]")
	}
	return cmd
}

func newContainerCommand(g *globals, s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers", Args: exactArgs(0)}
	cmd.AddCommand(newPruneCommand(g, s, false))
	return cmd
}

func newSystemCommand(g *globals, s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage the engine", Args: exactArgs(0)}
	o := cli.SystemDfOptions{Stdout: s.Stdout}
	df := &cobra.Command{
		Use:     "df [OPTIONS]",
		Short:   "Show the engine's disk usage",
		Example: "  engine system df\n  engine system df --format '{{.Type}}: {{.Size}}'",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.SystemDf(cmd.Context(), c, o) })
		},
	}
	df.Flags().StringVar(&o.Format, "format", "", "output format: table, json, or a Go template")
	cmd.AddCommand(df, newPruneCommand(g, s, true))
	return cmd
}

func newCpCommand(g *globals, s cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "cp CONTAINER:SRC_PATH DEST_PATH|-\n  engine cp SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files and directories between a container and the local filesystem",
		Long: `Copy files and directories between a container, running or stopped, and the
local filesystem. "-" as the source reads a tar stream from stdin and extracts
it into the container's directory; "-" as the destination writes a tar stream
to stdout.`,
		Example: `  engine cp web:/etc/hostname ./hostname
  engine cp ./site web:/srv/
  engine cp web:/var/log - | tar -t
  tar -c conf | engine cp - web:/etc`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.Cp(cmd.Context(), c, args[0], args[1], s) })
		},
	}
}

func newDiffCommand(g *globals, s cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:     "diff CONTAINER",
		Short:   "Inspect changes to files or directories on a container's filesystem",
		Example: "  engine diff web     # A added, C changed, D deleted",
		Args:    namedArgs(exactArgs(1), false, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.Diff(cmd.Context(), c, args[0], s.Stdout) })
		},
	}
}

func newExportCommand(g *globals, s cli.Streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "export [OPTIONS] CONTAINER",
		Short:   "Export a container's filesystem as a tar archive",
		Example: "  engine export -o web.tar web\n  engine export web | tar -t",
		Args:    namedArgs(exactArgs(1), false, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.Export(cmd.Context(), c, args[0], output, s) })
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}
