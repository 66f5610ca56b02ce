package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/client"
)

// registryCommands are the top-level commands of images from registries
// and archives: pull, push, login, logout, tag, save, load.
func registryCommands(g *globals, s cli.Streams) []*cobra.Command {
	return []*cobra.Command{
		newPullCommand(g, s), newPushCommand(g, s), newLoginCommand(g, s), newLogoutCommand(s),
		newTagCommand(g, s), newSaveCommand(g, s), newLoadCommand(g, s),
	}
}

// imageRegistryCommands are the same under `image`, with inspect and prune.
func imageRegistryCommands(g *globals, s cli.Streams) []*cobra.Command {
	return []*cobra.Command{
		newPullCommand(g, s), newPushCommand(g, s), newTagCommand(g, s), newSaveCommand(g, s), newLoadCommand(g, s),
		newImageInspectCommand(g, s), newImagePruneCommand(g, s),
	}
}

func newPullCommand(g *globals, s cli.Streams) *cobra.Command {
	o := cli.PullOptions{Out: s.Stdout, Stdout: s.Stdout}
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  namedArgs(exactArgs(1), false, argImage),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			return g.withClient(func(c *client.Client) error { return cli.Pull(cmd.Context(), c, o) })
		},
	}
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "suppress the progress output")
	cmd.Flags().StringVar(&o.Platform, "platform", "", "pull this platform (os/arch[/variant]) instead of the host's")
	return cmd
}

func newPushCommand(g *globals, s cli.Streams) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  namedArgs(exactArgs(1), false, argImage),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.Push(cmd.Context(), c, args[0], quiet, s.Stdout) })
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the progress output")
	return cmd
}

func newLoginCommand(g *globals, s cli.Streams) *cobra.Command {
	o := cli.LoginOptions{Streams: s}
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (credentials go to docker's config file)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Server = args[0]
			}
			if o.Password != "" && o.PasswordStdin {
				return invalid("--password and --password-stdin are mutually exclusive")
			}
			return g.withClient(func(c *client.Client) error { return cli.Login(cmd.Context(), c, o) })
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Username, "username", "u", "", "username")
	fl.StringVarP(&o.Password, "password", "p", "", "password")
	fl.BoolVar(&o.PasswordStdin, "password-stdin", false, "take the password from stdin")
	return cmd
}

func newLogoutCommand(s cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			return cli.Logout(server, s.Stdout)
		},
	}
}

func newTagCommand(g *globals, s cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  namedArgs(exactArgs(2), false, argImage, argImage),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.Tag(cmd.Context(), c, args[0], args[1]) })
		},
	}
}

func newSaveCommand(g *globals, s cli.Streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save images to a tar archive (docker save's format; streamed to stdout by default)",
		Args:  namedArgs(minArgs(1), true, argImage),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.Save(cmd.Context(), c, args, output, s.Stdout) })
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file instead of stdout")
	return cmd
}

func newLoadCommand(g *globals, s cli.Streams) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load images from a tar archive (docker save's format or an OCI layout) or stdin",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = s.Stdin
			if input != "" && input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return &cli.StatusError{Code: 1, Err: fmt.Errorf("open image archive: %w", err)}
				}
				defer f.Close()
				in = f
			}
			return g.withClient(func(c *client.Client) error { return cli.Load(cmd.Context(), c, in, quiet, s.Stdout) })
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from a tar archive file instead of stdin")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	return cmd
}

func newImageInspectCommand(g *globals, s cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  namedArgs(minArgs(1), true, argImage),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error {
				return cli.ImageInspect(cmd.Context(), c, args, s.Stdout, s.Stderr)
			})
		},
	}
}

func newImagePruneCommand(g *globals, s cli.Streams) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images (untagged only, unless -a)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.ImagePrune(cmd.Context(), c, all, s.Stdout) })
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all images no container uses, not just untagged ones")
	// Docker asks for confirmation without -f; this engine does not ask.
	cmd.Flags().BoolP("force", "f", false, "do not prompt for confirmation (never prompts)")
	return cmd
}

// addPullFlag adds --pull to run and create. As docker's CLI does, a
// create that fails for want of the image pulls it and creates again
// (missing); always pulls first; never does not pull.
func addPullFlag(cmd *cobra.Command, g *globals, s cli.Streams) {
	var policy string
	cmd.Flags().StringVar(&policy, "pull", "missing", "pull the image before creating: missing, always or never")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p, err := cli.ParsePullPolicy(policy)
		if err != nil {
			return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
		}
		image := len(args) > 0 && !cmd.Flags().Changed("rootfs")
		if image && p == cli.PullAlways {
			if err := g.withClient(func(c *client.Client) error { return cli.EnsureImage(cmd.Context(), c, args[0], p, s.Stderr) }); err != nil {
				return err
			}
		}
		err = run(cmd, args)
		if image && p == cli.PullMissing && cli.IsImageMissing(err) {
			if err := g.withClient(func(c *client.Client) error { return cli.EnsureImage(cmd.Context(), c, args[0], p, s.Stderr) }); err != nil {
				return err
			}
			return run(cmd, args)
		}
		return err
	}
}
