package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/format"
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
	Format  string // "", "table", "json", or a Go template ("table {{.Names}}")
	NoTrunc bool
	Last    int  // -n: the last N containers, stopped or not
	Latest  bool // -l: the last container
	Size    bool // -s: the SIZE column
	Now     func() time.Time
	Stdout  io.Writer
}

// PsEntry is one container as ps shows it: the fields of docker's ps
// templates and of `ps --format json` ({{.ID}}, {{.Names}}, {{.Status}},
// {{.Label "k"}}, ...), with a few of tend's own (FullID, Health,
// Restarts).
type PsEntry struct {
	ID           string `json:"ID"`
	FullID       string `json:"FullID"`
	Image        string `json:"Image"`
	Command      string `json:"Command"`
	CreatedAt    string `json:"CreatedAt"`
	RunningFor   string `json:"RunningFor"`
	Ports        string `json:"Ports"`
	State        string `json:"State"`
	Status       string `json:"Status"`
	Size         string `json:"Size"`
	Names        string `json:"Names"`
	Labels       string `json:"Labels"`
	Mounts       string `json:"Mounts"`
	Networks     string `json:"Networks"`
	Health       string `json:"Health,omitempty"`
	Restarts     int    `json:"Restarts"`
	Pid          uint32 `json:"Pid,omitempty"`
	ExitCode     int    `json:"ExitCode"`
	RestartCount int    `json:"RestartCount"`

	labels map[string]string
}

// Label returns the value of a label: {{.Label "app"}}.
func (e PsEntry) Label(name string) string { return e.labels[name] }

// psHeader names ps's columns as docker does.
var psHeader = format.Header{
	"ID": "CONTAINER ID", "FullID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
	"Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "Health": "HEALTH", "Restarts": "RESTARTS",
	"Pid": "PID", "ExitCode": "EXIT CODE", "RestartCount": "RESTARTS",
}

// psTable is ps's default table, docker's columns ({{.Restarts}} is
// there for a template); -s adds the SIZE column.
func psTable(size bool) string {
	t := "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	if size {
		t += "\t{{.Size}}"
	}
	return t
}

// NewPsEntry renders a container for ps; trunc shortens the id and the
// command as docker does without --no-trunc.
func NewPsEntry(ct *api.Container, now time.Time, trunc bool) PsEntry {
	e := PsEntry{
		ID: ct.ID, FullID: ct.ID, Image: format.Image(ct), Command: format.Command(ct.Config.Cmd, trunc),
		CreatedAt: ct.Created.Format("2006-01-02 15:04:05 -0700 MST"), RunningFor: format.Ago(now, ct.Created),
		State: string(ct.State), Status: format.Status(ct, now), Names: ct.Name, Labels: format.Labels(ct.Config.Labels),
		Restarts: ct.RestartCount, RestartCount: ct.RestartCount, Pid: ct.Pid, ExitCode: ct.ExitCode,
		Size: format.ContainerSize(ct.SizeRw, ct.SizeRootFs), Ports: format.Ports(ct), labels: ct.Config.Labels,
	}
	if trunc {
		e.ID = format.ShortID(ct.ID)
	}
	if ct.Health != nil {
		e.Health = ct.Health.Status
	}
	return e
}

// Ps lists containers: a docker-like table, ids only, JSON lines or a Go
// template per container.
func Ps(ctx context.Context, c *client.Client, opts PsOptions) error {
	tmpl, err := format.ParseTemplate(opts.Format, psTable(opts.Size))
	if err != nil {
		return &StatusError{Code: ExitEngineError, Err: err}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Last < -1 {
		return &StatusError{Code: ExitEngineError, Err: fmt.Errorf("invalid --last %d: want a number of containers: %w", opts.Last, errdefs.ErrInvalidArgument)}
	}
	lo := client.ListOptions{All: opts.All, Filters: opts.Filters, Limit: opts.Last, Size: opts.Size}
	if opts.Latest {
		lo.Limit = 1
	}
	if lo.Limit < 0 {
		lo.Limit = 0
	}
	cs, err := c.ListContainers(ctx, lo)
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
	items := make([]any, 0, len(cs))
	for _, ct := range cs {
		items = append(items, NewPsEntry(ct, now, !opts.NoTrunc))
	}
	if err := tmpl.Render(opts.Stdout, psHeader, items); err != nil {
		return &StatusError{Code: ExitEngineError, Err: err}
	}
	return nil
}

// InspectOptions are the inputs of Inspect.
type InspectOptions struct {
	Refs []string
	// Format is a Go template run on each container's docker-shaped
	// record ({{.State.Status}}); empty prints them as a JSON array.
	Format string
	// Raw prints tend's own records instead of docker's shape.
	Raw    bool
	Size   bool
	Stdout io.Writer
	Stderr io.Writer
}

// Inspect prints containers in docker's inspect shape as one indented JSON
// array, or a Go template per container, as docker inspect does; unknown
// refs are reported and make it fail.
func Inspect(ctx context.Context, c *client.Client, opts InspectOptions) error {
	var tmpl *format.Template
	if opts.Format != "" {
		var err error
		if tmpl, err = format.ParseTemplate(opts.Format, ""); err != nil {
			return &StatusError{Code: ExitEngineError, Err: err}
		}
	}
	out := []any{}
	failed := 0
	for _, ref := range opts.Refs {
		var v any
		if opts.Raw {
			raw, err := c.InspectRaw(ctx, ref, opts.Size)
			if err != nil {
				failed++
				fmt.Fprintf(opts.Stderr, "Error: %v\n", err)
				continue
			}
			v = raw
		} else {
			ct, err := c.InspectSize(ctx, ref, opts.Size)
			if err != nil {
				failed++
				fmt.Fprintf(opts.Stderr, "Error: %v\n", err)
				continue
			}
			v = format.DockerInspect(ct)
		}
		if tmpl != nil {
			if opts.Raw {
				var m any
				_ = json.Unmarshal(v.(json.RawMessage), &m)
				v = m
			}
			if err := tmpl.Line(opts.Stdout, v); err != nil {
				return &StatusError{Code: ExitEngineError, Err: err}
			}
			continue
		}
		out = append(out, v)
	}
	if tmpl == nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		if _, err := buf.WriteTo(opts.Stdout); err != nil {
			return err
		}
	}
	if failed > 0 {
		// Already printed; exit 1 without printing it twice.
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
	Until      time.Time
	Timestamps bool
	// Details shows the extra attributes of each line (docker's log-opt
	// labels and env) before it, as docker's: "app=web,mode=x line", or
	// " line" when the container has none.
	Details bool
	Stdout  io.Writer
	Stderr  io.Writer
}

// Logs prints a container's log, stdout lines to Stdout and stderr lines to
// Stderr; with Follow it keeps printing until ctx ends.
func Logs(ctx context.Context, c *client.Client, opts LogsOptions) error {
	err := c.Logs(ctx, opts.Ref, client.LogsOptions{Follow: opts.Follow, Tail: opts.Tail, Since: opts.Since, Until: opts.Until, Details: opts.Details}, func(e api.LogRecord) error {
		w := opts.Stdout
		if e.Stream == "stderr" {
			w = opts.Stderr
		}
		if opts.Timestamps {
			if _, err := fmt.Fprint(w, e.Time.UTC().Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		line := e.Log
		if opts.Details {
			line = format.LogAttrs(e.Attrs) + " " + line
		}
		_, err := io.WriteString(w, line)
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
