package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/engine/internal/api"
	"github.com/tendhq/tend/cmd/engine/internal/client"
	"github.com/tendhq/tend/cmd/engine/internal/format"
)

// RefsOptions are the inputs of commands that act on containers one by one.
type RefsOptions struct {
	Refs    []string
	Timeout *time.Duration // stop, restart
	Signal  string         // kill
	Force   bool           // rm
	Volumes bool           // rm: its anonymous volumes too
	Stdout  io.Writer
	Stderr  io.Writer
}

// Stop stops containers and prints each ref.
func Stop(ctx context.Context, c *client.Client, opts RefsOptions) error {
	return forEachPrint(opts, func(ref string) error { return c.Stop(ctx, ref, opts.Timeout) })
}

// Restart restarts containers and prints each ref.
func Restart(ctx context.Context, c *client.Client, opts RefsOptions) error {
	return forEachPrint(opts, func(ref string) error { return c.Restart(ctx, ref, opts.Timeout) })
}

// Kill signals containers and prints each ref.
func Kill(ctx context.Context, c *client.Client, opts RefsOptions) error {
	return forEachPrint(opts, func(ref string) error { return c.Kill(ctx, ref, opts.Signal) })
}

// Pause pauses containers and prints each ref.
func Pause(ctx context.Context, c *client.Client, opts RefsOptions) error {
	return forEachPrint(opts, func(ref string) error { return c.Pause(ctx, ref) })
}

// Unpause unpauses containers and prints each ref.
func Unpause(ctx context.Context, c *client.Client, opts RefsOptions) error {
	return forEachPrint(opts, func(ref string) error { return c.Unpause(ctx, ref) })
}

// Remove removes containers and prints each ref.
func Remove(ctx context.Context, c *client.Client, opts RefsOptions) error {
	return forEachPrint(opts, func(ref string) error {
		return c.RemoveContainer(ctx, ref, api.RemoveOptions{Force: opts.Force, Volumes: opts.Volumes})
	})
}

// Wait waits for containers to stop and prints each exit code.
func Wait(ctx context.Context, c *client.Client, opts RefsOptions) error {
	return forEach(opts.Refs, opts.Stderr, func(ref string) error {
		code, err := c.Wait(ctx, ref, "not-running")
		if err != nil {
			return err
		}
		fmt.Fprintln(opts.Stdout, code)
		return nil
	})
}

func forEachPrint(opts RefsOptions, fn func(string) error) error {
	return forEach(opts.Refs, opts.Stderr, func(ref string) error {
		if err := fn(ref); err != nil {
			return err
		}
		fmt.Fprintln(opts.Stdout, ref)
		return nil
	})
}

// PsOptions are the inputs of Ps.
type PsOptions struct {
	All     bool
	Quiet   bool
	Filters []string
	Format  string // "" (table) or "json"
	NoTrunc bool
	Now     func() time.Time
	Stdout  io.Writer
}

// PsEntry is one line of `ps --format json`, with docker's keys.
type PsEntry struct {
	ID           string            `json:"ID"`
	FullID       string            `json:"FullID"`
	Image        string            `json:"Image"`
	Command      string            `json:"Command"`
	CreatedAt    string            `json:"CreatedAt"`
	RunningFor   string            `json:"RunningFor"`
	State        string            `json:"State"`
	Status       string            `json:"Status"`
	Health       string            `json:"Health,omitempty"`
	Restarts     int               `json:"Restarts"`
	Names        string            `json:"Names"`
	Labels       map[string]string `json:"Labels,omitempty"`
	Pid          uint32            `json:"Pid,omitempty"`
	ExitCode     int               `json:"ExitCode"`
	RestartCount int               `json:"RestartCount"`
	Ports        string            `json:"Ports"`
}

func checkFormat(f string) error {
	switch f {
	case "", "table", "json":
		return nil
	}
	return &StatusError{Code: ExitEngineError, Err: fmt.Errorf("invalid --format %q: want table or json: %w", f, errdefs.ErrInvalidArgument)}
}

// Ps lists containers: a docker-like table, ids only, or JSON lines.
func Ps(ctx context.Context, c *client.Client, opts PsOptions) error {
	if err := checkFormat(opts.Format); err != nil {
		return err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cs, err := c.List(ctx, opts.All, opts.Filters)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	now := opts.Now()
	if opts.Quiet {
		for _, ct := range cs {
			id := ct.ID
			if !opts.NoTrunc {
				id = format.ShortID(id)
			}
			fmt.Fprintln(opts.Stdout, id)
		}
		return nil
	}
	if opts.Format == "json" {
		enc := json.NewEncoder(opts.Stdout)
		for _, ct := range cs {
			e := PsEntry{
				ID: format.ShortID(ct.ID), FullID: ct.ID, Image: format.Image(ct),
				Command: format.Command(ct.Config.Cmd), CreatedAt: ct.Created.Format("2006-01-02 15:04:05 -0700 MST"),
				RunningFor: format.Ago(now, ct.Created), State: string(ct.State), Status: format.Status(ct, now),
				Restarts: ct.RestartCount, RestartCount: ct.RestartCount, Names: ct.Name, Labels: ct.Config.Labels,
				Pid: ct.Pid, ExitCode: ct.ExitCode, Ports: format.Ports(ct),
			}
			if ct.Health != nil {
				e.Health = ct.Health.Status
			}
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(opts.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tRESTARTS\tPORTS\tNAMES")
	for _, ct := range cs {
		id, cmd := format.ShortID(ct.ID), format.Command(ct.Config.Cmd)
		if opts.NoTrunc {
			id, cmd = ct.ID, fmt.Sprintf("%q", strings.Join(ct.Config.Cmd, " "))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", id, format.Image(ct), cmd,
			format.Ago(now, ct.Created), format.Status(ct, now), ct.RestartCount, format.Ports(ct), ct.Name)
	}
	return tw.Flush()
}

// InspectOptions are the inputs of Inspect.
type InspectOptions struct {
	Refs   []string
	Stdout io.Writer
	Stderr io.Writer
}

// Inspect prints the records of containers as one indented JSON array, as
// docker inspect does; unknown refs are reported and make it fail.
func Inspect(ctx context.Context, c *client.Client, opts InspectOptions) error {
	out := []json.RawMessage{}
	var last error
	failed := 0
	for _, ref := range opts.Refs {
		raw, err := c.InspectRaw(ctx, ref)
		if err != nil {
			failed++
			last = err
			fmt.Fprintf(opts.Stderr, "Error: %v\n", err)
			continue
		}
		out = append(out, raw)
	}
	b, err := json.MarshalIndent(out, "", "    ")
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.Stdout, string(b))
	if failed > 0 {
		// Already printed; exit 1 without printing it twice.
		_ = last
		return &StatusError{Code: 1}
	}
	return nil
}

// LogsOptions are the inputs of Logs.
type LogsOptions struct {
	Ref        string
	Follow     bool
	Tail       int // <0: all
	Since      time.Time
	Timestamps bool
	Stdout     io.Writer
	Stderr     io.Writer
}

// Logs prints a container's log, stdout lines to Stdout and stderr lines to
// Stderr; with Follow it keeps printing until ctx ends.
func Logs(ctx context.Context, c *client.Client, opts LogsOptions) error {
	err := c.Logs(ctx, opts.Ref, client.LogsOptions{Follow: opts.Follow, Tail: opts.Tail, Since: opts.Since}, func(e api.LogRecord) error {
		w := opts.Stdout
		if e.Stream == "stderr" {
			w = opts.Stderr
		}
		if opts.Timestamps {
			if _, err := fmt.Fprint(w, e.Time.UTC().Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, e.Log)
		return err
	})
	if err != nil {
		if ctx.Err() != nil && opts.Follow {
			return nil
		}
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}

// TopOptions are the inputs of Top.
type TopOptions struct {
	Ref    string
	Stdout io.Writer
}

// Top prints the processes of a container.
func Top(ctx context.Context, c *client.Client, opts TopOptions) error {
	ps, err := c.Top(ctx, opts.Ref)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	tw := tabwriter.NewWriter(opts.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "PID\tPPID\tUSER\tCOMMAND")
	for _, p := range ps {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", p.Pid, p.PPid, p.User, p.Command)
	}
	return tw.Flush()
}
