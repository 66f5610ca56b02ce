package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	backendtypes "github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/format"
	"github.com/tendhq/tend/healthcheck"
)

// runFlags are the flags of run and create.
type runFlags struct {
	detach, interactive, tty, rm, noHealthcheck bool
	init                                        bool
	name, restart, rootfs, memory, workdir      string
	env, labels                                 []string
	cpus                                        float64
	pidsLimit                                   int64
	healthCmd, onUnhealthy                      string
	healthInterval, healthTimeout               time.Duration
	healthStartPeriod, healthStartInterval      time.Duration
	healthRetries                               int
	net                                         netFlags
	volumes                                     cli.VolumeFlags
	confine                                     confineFlags
	shim                                        shimFlags
	logOpts                                     logOptFlags
}

func invalid(format string, args ...any) error {
	return &cli.StatusError{Code: cli.ExitEngineError, Err: fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)}
}

// createOptions turns the flags and arguments of run/create into the
// container's options.
func (f *runFlags) createOptions(cmd *cobra.Command, args []string) (api.CreateOptions, error) {
	o := api.CreateOptions{
		Name: f.name, Rootfs: f.rootfs, WorkingDir: f.workdir, Tty: f.tty, OpenStdin: f.interactive,
		AutoRemove: f.rm, Resources: api.Resources{CPUs: f.cpus, PidsLimit: f.pidsLimit},
	}
	if cmd.Flags().Changed("init") {
		o.Init = &f.init
	}
	if f.rootfs == "" {
		if len(args) == 0 {
			return o, invalid("%q requires an IMAGE, or --rootfs DIR", cmd.CommandPath())
		}
		o.Image, args = args[0], args[1:]
		if err := api.ValidateImageRef(o.Image); err != nil {
			return o, &cli.StatusError{Code: cli.ExitEngineError, Err: err}
		}
	}
	if len(args) > 0 && args[0] == "" {
		return o, invalid("invalid command: its first word is empty: give the program to run")
	}
	o.Cmd = args
	if f.name != "" {
		if err := api.ValidateName("container name", strings.TrimPrefix(f.name, "/")); err != nil {
			return o, &cli.StatusError{Code: cli.ExitEngineError, Err: err}
		}
	}
	env, err := cliEnv(f.env)
	if err != nil {
		return o, err
	}
	o.Env = env
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return o, invalid("invalid label %q: want KEY=VALUE", l)
		}
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[k] = v
	}
	p, err := backendtypes.ParseRestartPolicy(f.restart)
	if err != nil {
		return o, &cli.StatusError{Code: cli.ExitEngineError, Err: err}
	}
	o.Restart = api.RestartPolicy{Name: p.Name, MaximumRetryCount: p.MaximumRetryCount}
	if err := backendtypes.CheckRestart(o.Restart); err != nil {
		return o, &cli.StatusError{Code: cli.ExitEngineError, Err: fmt.Errorf("--restart %s: %w", api.Echo(f.restart), err)}
	}
	if f.rm && p.Name != "" && p.Name != "no" {
		return o, invalid("conflicting options: --restart %s and --rm: a container removed on exit cannot be restarted", f.restart)
	}
	if f.memory != "" {
		n, err := format.ParseMemory(f.memory)
		if err != nil {
			return o, &cli.StatusError{Code: cli.ExitEngineError, Err: err}
		}
		o.Resources.MemoryBytes = n
	}
	// The daemon also checks --cpus against its host's CPUs.
	for _, c := range []struct {
		flag string
		r    api.Resources
	}{
		{"--memory", api.Resources{MemoryBytes: o.Resources.MemoryBytes}},
		{"--cpus", api.Resources{CPUs: o.Resources.CPUs}},
		{"--pids-limit", api.Resources{PidsLimit: o.Resources.PidsLimit}},
	} {
		if err := backendtypes.CheckResources(c.r, 0); err != nil {
			return o, &cli.StatusError{Code: cli.ExitEngineError, Err: fmt.Errorf("%s: %w", c.flag, err)}
		}
	}
	health, err := f.health(cmd)
	if err != nil {
		return o, err
	}
	o.Health = health
	if err := f.net.apply(cmd, &o); err != nil {
		return o, err
	}
	if err := f.volumes.Apply(&o); err != nil {
		return o, err
	}
	if err := f.confine.apply(cmd, &o); err != nil {
		return o, err
	}
	if err := f.logOpts.apply(&o); err != nil {
		return o, err
	}
	if err := f.shim.apply(&o); err != nil {
		return o, err
	}
	return o, nil
}

func (f *runFlags) health(cmd *cobra.Command) (*healthcheck.Config, error) {
	changed := func(names ...string) bool {
		for _, n := range names {
			if cmd.Flags().Changed(n) {
				return true
			}
		}
		return false
	}
	tuning := changed("health-interval", "health-timeout", "health-retries", "health-start-period", "health-start-interval", "on-unhealthy")
	if f.noHealthcheck {
		if f.healthCmd != "" || tuning {
			return nil, invalid("--no-healthcheck conflicts with --health-* and --on-unhealthy options")
		}
		return &healthcheck.Config{Test: []string{healthcheck.TestNone}}, nil
	}
	if f.healthCmd == "" {
		if tuning {
			return nil, invalid("--health-* and --on-unhealthy options need --health-cmd (images carry no health check)")
		}
		return nil, nil
	}
	action, err := healthcheck.ParseAction(f.onUnhealthy)
	if err != nil {
		return nil, &cli.StatusError{Code: cli.ExitEngineError, Err: err}
	}
	h := &healthcheck.Config{
		Test:     []string{healthcheck.TestCmdShell, f.healthCmd},
		Interval: f.healthInterval, Timeout: f.healthTimeout, StartPeriod: f.healthStartPeriod,
		StartInterval: f.healthStartInterval, Retries: f.healthRetries, OnUnhealthy: action,
	}
	if err := backendtypes.CheckHealth(h); err != nil {
		return nil, &cli.StatusError{Code: cli.ExitEngineError, Err: err}
	}
	return h, nil
}

func newRunCommand(g *globals, s cli.Streams, createOnly bool) *cobra.Command {
	f := &runFlags{}
	use, short := "run [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image or a rootfs directory"
	if createOnly {
		use, short = "create [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			co, err := f.createOptions(cmd, args)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			defer c.Close()
			opts := cli.RunOptions{Create: co, Detach: f.detach, Interactive: f.interactive, Streams: s}
			if createOnly {
				return cli.Create(cmd.Context(), c, opts)
			}
			return cli.Run(cmd.Context(), c, opts)
		},
	}
	fl := cmd.Flags()
	// Flags after the image belong to the container's command.
	fl.SetInterspersed(false)
	if !createOnly {
		fl.BoolVarP(&f.detach, "detach", "d", false, "run in the background and print the container ID")
	}
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open and send it to the container")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.StringVar(&f.name, "name", "", "assign a name to the container")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables (NAME=VALUE, or NAME to pass the CLI's value)")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set metadata (KEY=VALUE)")
	fl.StringVar(&f.restart, "restart", "no", "restart policy: no, always, on-failure[:N], unless-stopped")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVar(&f.healthCmd, "health-cmd", "", "command to run to check health (run with /bin/sh -c)")
	fl.DurationVar(&f.healthInterval, "health-interval", 0, "time between running the check (default 30s)")
	fl.DurationVar(&f.healthTimeout, "health-timeout", 0, "maximum time to allow one check to run (default 30s)")
	fl.IntVar(&f.healthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy (default 3)")
	fl.DurationVar(&f.healthStartPeriod, "health-start-period", 0, "start period during which failures do not count")
	fl.DurationVar(&f.healthStartInterval, "health-start-interval", 0, "time between checks during the start period (default 5s)")
	fl.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "disable any health check")
	fl.StringVar(&f.onUnhealthy, "on-unhealthy", "none", "action when unhealthy: none, kill, restart, stop")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit (e.g. 16m, 1g)")
	fl.Float64Var(&f.cpus, "cpus", 0, "number of CPUs (e.g. 1.5)")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "maximum number of processes (0: unlimited)")
	fl.StringVar(&f.rootfs, "rootfs", "", "run from this root filesystem directory instead of an image")
	fl.BoolVar(&f.rm, "rm", false, "automatically remove the container when it exits")
	fl.BoolVar(&f.init, "init", false, "run tend-init as PID 1 to reap zombies and serve probes (default: on with a health check)")
	f.net.register(cmd)
	f.volumes.Register(cmd)
	addPullFlag(cmd, g, s)
	f.confine.register(fl)
	f.shim.register(cmd)
	f.logOpts.register(cmd)
	return cmd
}

func newStartCommand(g *globals, s cli.Streams) *cobra.Command {
	var attach, interactive bool
	var checkpoint string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  namedArgs(minArgs(1), true, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			if checkpoint != "" {
				if err := api.ValidateName(argCheckpoint, checkpoint); err != nil {
					return &cli.StatusError{Code: 1, Err: fmt.Errorf("--checkpoint: %w", err)}
				}
			}
			return g.withClient(func(c *client.Client) error {
				return cli.Start(cmd.Context(), c, cli.StartOptions{Refs: args, Attach: attach, Interactive: interactive, Checkpoint: checkpoint, Streams: s})
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach STDOUT/STDERR and return the container's exit code")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach the container's STDIN")
	cmd.Flags().StringVar(&checkpoint, "checkpoint", "", "restore the container from this checkpoint")
	return cmd
}

func newAttachCommand(g *globals, s cli.Streams) *cobra.Command {
	var noStdin bool
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach to a running container's input and output",
		Args:  namedArgs(exactArgs(1), false, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error {
				return cli.Attach(cmd.Context(), c, cli.AttachOptions{Ref: args[0], NoStdin: noStdin, Streams: s})
			})
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	return cmd
}

// newRefsCommand builds stop, restart, kill, pause, unpause, rm and wait:
// commands taking containers and acting on each.
func newRefsCommand(g *globals, s cli.Streams, name, short string, fn func(context.Context, *client.Client, cli.RefsOptions) error) *cobra.Command {
	var (
		timeout = -1
		signal  string
		force   bool
		volumes bool
	)
	cmd := &cobra.Command{
		Use:   name + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  namedArgs(minArgs(1), true, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			defer c.Close()
			o := cli.RefsOptions{Refs: args, Signal: signal, Force: force, Volumes: volumes, Stdout: s.Stdout, Stderr: s.Stderr}
			if timeout >= 0 && timeout <= backendtypes.MaxTimeoutSeconds {
				d := time.Duration(timeout) * time.Second
				o.Timeout = &d
			} else if timeout != -1 {
				return invalid("invalid --time %d: want a whole number of seconds from 0 to %d", timeout, backendtypes.MaxTimeoutSeconds)
			}
			if name == "kill" {
				// Exit 1 as when the daemon refuses it (docker's too).
				if _, err := api.ParseSignal(signal); err != nil {
					return &cli.StatusError{Code: 1, Err: err}
				}
			}
			return fn(cmd.Context(), c, o)
		},
	}
	switch name {
	case "stop", "restart":
		cmd.Flags().IntVarP(&timeout, "time", "t", -1, "seconds to wait before killing the container (default 10)")
	case "kill":
		cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal to send to the container")
	case "rm":
		cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
		cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove the anonymous volumes of the container")
	}
	return cmd
}

func newPsCommand(g *globals, s cli.Streams) *cobra.Command {
	o := cli.PsOptions{Stdout: s.Stdout}
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS]",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Example: `  engine ps -a
  engine ps --filter status=exited --filter exited=3
  engine ps --filter health=unhealthy --filter label=app=web
  engine ps -n 2 --no-trunc
  engine ps --format '{{.Names}}\t{{.Status}}'
  engine ps --format 'table {{.ID}}\t{{.Names}}\t{{.Label "app"}}'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error { return cli.Ps(cmd.Context(), c, o) })
		},
	}
	cmd.Flags().BoolVarP(&o.All, "all", "a", false, "show all containers (default shows just running)")
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "only display container IDs")
	cmd.Flags().BoolVar(&o.NoTrunc, "no-trunc", false, "don't truncate output")
	cmd.Flags().StringArrayVarP(&o.Filters, "filter", "f", nil, "filter output: status=, label=KEY[=VALUE], name=, id=, health=, ancestor=, exited=, before=, since=")
	cmd.Flags().StringVar(&o.Format, "format", "", "output format: table, json, or a Go template ('table {{.Names}}\\t{{.Status}}')")
	cmd.Flags().IntVarP(&o.Last, "last", "n", -1, "show n last created containers (includes all states)")
	cmd.Flags().BoolVarP(&o.Latest, "latest", "l", false, "show the latest created container (includes all states)")
	cmd.Flags().BoolVarP(&o.Size, "size", "s", false, "display total file sizes")
	return cmd
}

func newInspectCommand(g *globals, s cli.Streams) *cobra.Command {
	o := cli.InspectOptions{Stdout: s.Stdout, Stderr: s.Stderr}
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers, in docker's shape",
		Example: `  engine inspect web
  engine inspect --format '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}' web
  engine inspect --format '{{.State.Health.Status}}' web
  engine inspect --format '{{json .Config.Labels}}' web
  engine inspect --raw web      # tend's own record`,
		Args: namedArgs(minArgs(1), true, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Refs = args
			return g.withClient(func(c *client.Client) error { return cli.Inspect(cmd.Context(), c, o) })
		},
	}
	cmd.Flags().StringVarP(&o.Format, "format", "f", "", "format the output using a Go template ({{.State.Status}}) or json")
	cmd.Flags().BoolVarP(&o.Size, "size", "s", false, "display total file sizes")
	cmd.Flags().BoolVar(&o.Raw, "raw", false, "print tend's own container records instead of docker's shape")
	return cmd
}

func newLogsCommand(g *globals, s cli.Streams) *cobra.Command {
	var tail, since, until string
	o := cli.LogsOptions{Stdout: s.Stdout, Stderr: s.Stderr}
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  namedArgs(exactArgs(1), false, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			n, err := api.ParseTail(tail)
			if err != nil {
				return &cli.StatusError{Code: cli.ExitEngineError, Err: fmt.Errorf("invalid --tail: %w", err)}
			}
			o.Tail = n
			t, err := cli.ParseSince(since, time.Now())
			if err != nil {
				return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
			}
			o.Since = t
			if o.Until, err = cli.ParseSince(until, time.Now()); err != nil {
				return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
			}
			return g.withClient(func(c *client.Client) error { return cli.Logs(cmd.Context(), c, o) })
		},
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "follow log output")
	cmd.Flags().StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	cmd.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "show timestamps")
	cmd.Flags().StringVar(&since, "since", "", "show logs since a timestamp or relative duration (e.g. 10m)")
	cmd.Flags().StringVar(&until, "until", "", "show logs before a timestamp or relative duration (e.g. 10m)")
	cmd.Flags().BoolVar(&o.Details, "details", false, "show extra details provided to logs (the attributes --log-opt chose)")
	return cmd
}

func newExecCommand(g *globals, s cli.Streams) *cobra.Command {
	o := cli.ExecOptions{Streams: s}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  namedArgs(minArgs(2), false, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref, o.Cmd = args[0], args[1:]
			env, err := cliEnv(o.Env)
			if err != nil {
				return err
			}
			o.Env = env
			return g.withClient(func(c *client.Client) error { return cli.Exec(cmd.Context(), c, o) })
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().BoolVarP(&o.Interactive, "interactive", "i", false, "keep STDIN open and send it")
	cmd.Flags().BoolVarP(&o.Tty, "tty", "t", false, "allocate a pseudo-TTY")
	cmd.Flags().StringArrayVarP(&o.Env, "env", "e", nil, "set environment variables (NAME=VALUE, or NAME to pass the CLI's value)")
	cmd.Flags().StringVarP(&o.WorkingDir, "workdir", "w", "", "working directory inside the container")
	cmd.Flags().StringVarP(&o.User, "user", "u", "", "username or UID (format: name|uid[:group|gid])")
	cmd.Flags().BoolVarP(&o.Detach, "detach", "d", false, "detached mode: run the command in the background")
	return cmd
}

func newTopCommand(g *globals, s cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER",
		Short: "Display the running processes of a container",
		Args:  namedArgs(exactArgs(1), false, argContainer),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(c *client.Client) error {
				return cli.Top(cmd.Context(), c, cli.TopOptions{Ref: args[0], Stdout: s.Stdout})
			})
		},
	}
}

func newStatsCommand(g *globals, s cli.Streams) *cobra.Command {
	o := cli.StatsOptions{Stdout: s.Stdout}
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container resource usage",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Refs = args
			return g.withClient(func(c *client.Client) error { return cli.Stats(cmd.Context(), c, o) })
		},
	}
	cmd.Flags().BoolVar(&o.NoStream, "no-stream", false, "print one sample and exit")
	cmd.Flags().StringVar(&o.Format, "format", "", "output format: table, json, or a Go template ('{{.Name}} {{.CPUPerc}}')")
	return cmd
}

func newEventsCommand(g *globals, s cli.Streams) *cobra.Command {
	var since, until string
	o := cli.EventsOptions{Stdout: s.Stdout}
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the engine",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			var err error
			if o.Since, err = cli.ParseSince(since, now); err != nil {
				return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
			}
			if o.Until, err = cli.ParseSince(until, now); err != nil {
				return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
			}
			return g.withClient(func(c *client.Client) error { return cli.Events(cmd.Context(), c, o) })
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "show events since a timestamp or relative duration (e.g. 10m)")
	cmd.Flags().StringVar(&until, "until", "", "stream events until this timestamp or relative duration")
	cmd.Flags().StringArrayVarP(&o.Filters, "filter", "f", nil, "filter: type=container|image, event=ACTION, container=, image=, label=KEY[=VALUE], attr.NAME=")
	cmd.Flags().StringVar(&o.Format, "format", "", "output format: json (docker's event shape) or a Go template ('{{.Action}} {{.Actor.Attributes.name}}')")
	return cmd
}

// cliEnv checks -e values of run, create and exec: NAME=VALUE, or a bare
// NAME that takes its value from the CLI's environment and is dropped
// when unset there, as docker's CLI does.
func cliEnv(vals []string) ([]string, error) {
	var env []string
	for _, e := range vals {
		if e == "" || strings.HasPrefix(e, "=") {
			return nil, invalid("invalid environment variable %q: want NAME=VALUE or NAME", e)
		}
		if !strings.Contains(e, "=") {
			v, ok := os.LookupEnv(e)
			if !ok {
				continue
			}
			e += "=" + v
		}
		env = append(env, e)
	}
	return env, nil
}
