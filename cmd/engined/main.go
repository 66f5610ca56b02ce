// Command engined is tend's engine daemon: containerd (supervised), the
// engine and its API on a root-only unix socket, and the Docker Engine
// API. It is the heavy half of tend (the containerd client, gRPC, CNI);
// the CLI, engine, is a separate light binary that talks to it, and
// `engine daemon ARGS` replaces itself with `engined ARGS`, so that
// scripts and units that say `engine daemon` keep working.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engined/internal/daemon"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/format"
	"github.com/tendhq/tend/cmd/internal/signals"
)

// exitUsage is the exit code of bad flags and arguments, as the CLI's
// (docker's 125).
const exitUsage = 125

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the daemon and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	// The first SIGINT or SIGTERM ends ctx (graceful); a second one forces
	// the exit.
	ctx, stop := signals.Context(context.Background(), stderr)
	defer stop()

	_ = log.SetFormat(log.TextFormat)
	cmd := newDaemonCommand()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.Version = api.EngineVersion
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &statusError{Code: exitUsage, Err: fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath())}
	})
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var se *statusError
	if errors.As(err, &se) {
		fmt.Fprintf(stderr, "Error: %v\n", se.Err)
		return se.Code
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	return 1
}

// statusError ends the daemon with an exit code: exitUsage for bad flags,
// 1 when the daemon could not run or failed.
type statusError struct {
	Code int
	Err  error
}

func (e *statusError) Error() string { return e.Err.Error() }
func (e *statusError) Unwrap() error { return e.Err }

// invalid is a flag error: exit 125, class errdefs.ErrInvalidArgument.
func invalid(format string, args ...any) error {
	return &statusError{Code: exitUsage, Err: fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)}
}

// noArgs refuses positional arguments with exit 125.
func noArgs(c *cobra.Command, args []string) error {
	if err := cobra.NoArgs(c, args); err != nil {
		return &statusError{Code: exitUsage, Err: fmt.Errorf("%q %w\nSee '%s --help'.", c.CommandPath(), err, c.CommandPath())}
	}
	return nil
}

// maxProbeConcurrency bounds --probe-concurrency: each probe is a process
// in a container; more at once than this would only contend.
const maxProbeConcurrency = 1024

func newDaemonCommand() *cobra.Command {
	o := daemon.Options{Version: api.EngineVersion}
	var logLevel, criu, maxImport string
	var configFile *string
	cmd := &cobra.Command{
		Use:   "engined [OPTIONS]",
		Short: "Run the engine in the foreground: containerd (supervised), the engine and its API socket",
		Example: `  engine daemon
  engine daemon --config-file /etc/tend/daemon.json --log-level debug
  engine daemon --containerd-address /run/containerd/containerd.sock --namespace tend
  engined --root /var/lib/tend --socket /run/tend/engine.sock`,
		DisableFlagsInUseLine: true,
		Args:                  noArgs,
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
				return &statusError{Code: 1, Err: fmt.Errorf("engined (engine daemon) must run as root (containers need it)")}
			}
			if err := daemon.Run(cmd.Context(), o); err != nil {
				return &statusError{Code: 1, Err: err}
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
