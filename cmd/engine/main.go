// Command engine is tend's container engine CLI: a docker-like client of
// the engine's API on a unix socket. The daemon is the separate binary
// engined (cmd/engined), which `engine daemon ARGS` runs in its place. The
// CLI imports none of the daemon's runtime (containerd client, gRPC, CNI:
// TestCLIIsLight), so that each command starts about as fast as a small Go
// program.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/containerd/log"
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/signals"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// The first SIGINT or SIGTERM ends ctx (graceful); a second one forces
	// the exit.
	ctx, stop := signals.Context(context.Background(), stderr)
	defer stop()

	_ = log.SetFormat(log.TextFormat)
	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if code, ok := signalExit(context.Cause(ctx)); ok && errors.Is(err, context.Canceled) {
		// Ctrl-C: the command was cancelled (a pull's daemon side with it);
		// exit as a shell reports a process ended by the signal, as docker.
		return code
	}
	var se *cli.StatusError
	if errors.As(err, &se) {
		if se.Err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", se.Err)
		}
		return se.Code
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	return cli.ExitEngineError
}

// globals are the flags every client command shares.
type globals struct {
	host string
}

func (g *globals) client() (*client.Client, error) {
	c, err := client.New(g.host)
	if err != nil {
		return nil, &cli.StatusError{Code: cli.ExitEngineError, Err: err}
	}
	return c, nil
}

// withClient runs fn with a client of the engine and closes it after.
func (g *globals) withClient(fn func(c *client.Client) error) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "engine",
		Short:         "tend's container engine: a docker-like CLI of the engine daemon (engined)",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       api.EngineVersion,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &cli.StatusError{Code: cli.ExitEngineError, Err: fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath())}
	})
	host := os.Getenv("TEND_HOST")
	if host == "" {
		host = client.DefaultSocket
	}
	root.PersistentFlags().StringVarP(&g.host, "host", "H", host, "engine socket to connect to (env TEND_HOST)")
	s := cli.Streams{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	root.AddCommand(dockerCommands(g, s)...)
	root.AddCommand(
		newDaemonCommand(),
		newRunCommand(g, s, false),
		newRunCommand(g, s, true),
		newStartCommand(g, s),
		newAttachCommand(g, s),
		newRefsCommand(g, s, "stop", "Stop one or more running containers", cli.Stop),
		newRefsCommand(g, s, "restart", "Restart one or more containers", cli.Restart),
		newRefsCommand(g, s, "kill", "Kill one or more running containers", cli.Kill),
		newRefsCommand(g, s, "pause", "Pause all processes within one or more containers", cli.Pause),
		newRefsCommand(g, s, "unpause", "Unpause all processes within one or more containers", cli.Unpause),
		newRefsCommand(g, s, "rm", "Remove one or more containers", cli.Remove),
		newRefsCommand(g, s, "wait", "Block until one or more containers stop, then print their exit codes", cli.Wait),
		newPsCommand(g, s),
		newInspectCommand(g, s),
		newLogsCommand(g, s),
		newExecCommand(g, s),
		newTopCommand(g, s),
		newStatsCommand(g, s),
		newEventsCommand(g, s),
		newImageCommand(g, s),
		newVolumeCommand(g, s),
		newCheckpointCommand(g, s),
		newVersionCommand(g, s),
		newInfoCommand(g, s),
		newNetworkCommand(g, s),
		newPortCommand(g, s),
	)
	root.AddCommand(registryCommands(g, s)...)
	addExamples(root)
	return root
}

// exactArgs and minArgs wrap cobra's validators so that a wrong number of
// arguments exits 125 like any flag error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(c, args); err != nil {
			return &cli.StatusError{Code: cli.ExitEngineError, Err: fmt.Errorf("%q %w\nSee '%s --help'.", c.CommandPath(), err, c.CommandPath())}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(c, args); err != nil {
			return &cli.StatusError{Code: cli.ExitEngineError, Err: fmt.Errorf("%q %w\nSee '%s --help'.", c.CommandPath(), err, c.CommandPath())}
		}
		return nil
	}
}

// Kinds of positional arguments for namedArgs.
const (
	argContainer  = "container reference"
	argCheckpoint = "checkpoint name"
	argImage      = "image reference"
)

// namedArgs runs pa, then checks that each argument can name what it
// names (kinds[i] for args[i]; with rest, the last kind for every argument
// after it too), so that a reference such as ".." or "a/b" is refused
// before anything is sent. It exits 1, as when the daemon refuses an
// unknown reference (and as docker does), not 125: the flags were fine.
func namedArgs(pa cobra.PositionalArgs, rest bool, kinds ...string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := pa(c, args); err != nil {
			return err
		}
		for i, a := range args {
			kind := ""
			switch {
			case i < len(kinds):
				kind = kinds[i]
			case rest && len(kinds) > 0:
				kind = kinds[len(kinds)-1]
			}
			var err error
			switch kind {
			case argContainer:
				err = api.ValidateName(kind, strings.TrimPrefix(a, "/"))
			case argCheckpoint:
				err = api.ValidateName(kind, a)
			case argImage:
				err = api.ValidateImageRef(a)
			case argNetwork:
				err = api.ValidateName(kind, a)
			}
			if err != nil {
				return &cli.StatusError{Code: 1, Err: err}
			}
		}
		return nil
	}
}

// signalExit is the exit code of a command cancelled by a signal
// (128+signal: 130 for SIGINT) when cause is signal.NotifyContext's.
func signalExit(cause error) (int, bool) {
	if cause == nil {
		return 0, false
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		if cause.Error() == sig.String()+" signal received" {
			return 128 + int(sig), true
		}
	}
	return 0, false
}
