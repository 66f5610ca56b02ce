package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/client"
)

func newImageCommand(g *globals, s cli.Streams) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images", Args: exactArgs(0)}
	imp := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Import an image from an OCI layout or docker-archive tar (- reads stdin)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = s.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return &cli.StatusError{Code: 1, Err: fmt.Errorf("open image archive: %w", err)}
				}
				defer f.Close()
				in = f
			}
			return g.withClient(func(c *client.Client) error {
				return cli.ImageImport(cmd.Context(), c, cli.ImageOptions{Input: in, Stdout: s.Stdout, Stderr: s.Stderr})
			})
		},
	}
	lo := cli.ImageOptions{Stdout: s.Stdout, Stderr: s.Stderr}
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.ImageList(cmd.Context(), c, lo) })
		},
	}
	ls.Flags().StringVar(&lo.Format, "format", "", "output format: table, json, or a Go template ('{{.Repository}}:{{.Tag}}')")
	ls.Flags().BoolVarP(&lo.Quiet, "quiet", "q", false, "only show image references")
	rm := &cobra.Command{
		Use:     "rm IMAGE [IMAGE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more images",
		Args:    namedArgs(minArgs(1), true, argImage),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error {
				return cli.ImageRemove(cmd.Context(), c, cli.ImageOptions{Refs: args, Stdout: s.Stdout, Stderr: s.Stderr})
			})
		},
	}
	cmd.AddCommand(imp, ls, rm)
	cmd.AddCommand(imageRegistryCommands(g, s)...)
	return cmd
}

func newVersionCommand(g *globals, s cli.Streams) *cobra.Command {
	o := cli.InfoOptions{Stdout: s.Stdout}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the client and engine versions",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.PrintVersion(cmd.Context(), c, o) })
		},
	}
	cmd.Flags().StringVar(&o.Format, "format", "", "output format: table, json, or a Go template ('{{.Server.Version}}')")
	return cmd
}

func newInfoCommand(g *globals, s cli.Streams) *cobra.Command {
	o := cli.InfoOptions{Stdout: s.Stdout}
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Display engine-wide information",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.PrintInfo(cmd.Context(), c, o) })
		},
	}
	cmd.Flags().StringVar(&o.Format, "format", "", "output format: table, json, or a Go template ('{{.ContainersRunning}}')")
	return cmd
}
