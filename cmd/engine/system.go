package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/log"
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/engine/internal/client"
	"github.com/tendhq/tend/cmd/engine/internal/daemon"
	"github.com/tendhq/tend/cmd/engine/internal/format"
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

// maxProbeConcurrency bounds --probe-concurrency: each probe is a process
// in a container; more at once than this would only contend.
const maxProbeConcurrency = 1024

func newDaemonCommand() *cobra.Command {
	o := daemon.Options{Version: cli.Version}
	var logLevel, criu, maxImport string
	var configFile *string
	cmd := &cobra.Command{
		Use:   "daemon [OPTIONS]",
		Short: "Run the engine in the foreground: containerd (supervised), the engine and its API socket",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyDaemonConfig(cmd, *configFile); err != nil {
				return err
			}
			if err := log.SetLevel(logLevel); err != nil {
				return invalid("invalid --log-level %q: want trace, debug, info, warn or error", logLevel)
			}
			o.LogLevel = logLevel
			if criu == "" {
				criu = os.Getenv("TEND_CRIU_PATH")
			}
			if criu != "" {
				for _, p := range filepath.SplitList(criu) {
					if p = strings.TrimSpace(p); p != "" {
						o.CriuPath = append(o.CriuPath, p)
					}
				}
			}
			if o.ContainerdState != "" && o.ContainerdAddress == "" {
				return invalid("--containerd-state is for the containerd of --containerd-address: the supervised containerd's is known")
			}
			if o.ProbeConcurrency < 0 || o.ProbeConcurrency > maxProbeConcurrency {
				return invalid("invalid --probe-concurrency %d: want 0 (the default) to %d", o.ProbeConcurrency, maxProbeConcurrency)
			}
			n, err := format.ParseMemory(maxImport)
			if err != nil || n < 1<<20 {
				return invalid("invalid --max-import-size %q: want a size of at least 1m, such as 8g", maxImport)
			}
			o.MaxImportBytes = n
			if os.Geteuid() != 0 {
				return &cli.StatusError{Code: 1, Err: fmt.Errorf("engine daemon must run as root (containers need it)")}
			}
			if err := daemon.Run(cmd.Context(), o); err != nil {
				return &cli.StatusError{Code: 1, Err: err}
			}
			return nil
		},
	}
	configFile = addConfigFileFlag(cmd)
	fl := cmd.Flags()
	addRegistryDaemonFlags(cmd, &o)
	fl.StringVar(&o.Root, "root", "/var/lib/tend", "engine state directory")
	fl.StringVar(&o.Socket, "socket", "/run/tend/engine.sock", "API socket path")
	fl.StringVar(&o.Namespace, "namespace", "tend", "containerd namespace")
	fl.StringVar(&logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fl.BoolVar(&o.LiveRestore, "live-restore", true, "keep containers running when the daemon stops")
	fl.IntVar(&o.ProbeConcurrency, "probe-concurrency", 0, "maximum concurrent health probes (0: default)")
	fl.StringVar(&o.InitPath, "init-path", "", "static tend-init binary for containers' PID 1 (default: tend-init next to the engine binary, else in PATH)")
	fl.StringVar(&o.ContainerdAddress, "containerd-address", "", "use this containerd socket instead of supervising a private containerd")
	fl.StringVar(&o.ContainerdState, "containerd-state", "", "state dir (--state) of the containerd of --containerd-address, to remove task bundles a containerd crash left behind")
	fl.StringVar(&o.ContainerdBinary, "containerd-binary", "containerd", "containerd binary for the supervised daemon")
	fl.StringVar(&maxImport, "max-import-size", "8g", "largest image archive `engine image import` may send (larger: 413)")
	addDockerFlags(fl, &o)
	addShimFlags(fl, &o)
	fl.StringVar(&criu, "criu-path", "", "directories put first in containerd's PATH, e.g. for criu (env TEND_CRIU_PATH)")
	registerNetworkDaemonFlags(fl, &o)
	return cmd
}
