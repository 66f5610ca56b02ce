package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/format"
)

// CheckpointOptions are the inputs of the checkpoint commands.
type CheckpointOptions struct {
	Ref          string
	Name         string // create, rm
	LeaveRunning bool   // create
	Format       string // ls: "" (table) or "json"
	Now          func() time.Time
	Stdout       io.Writer
}

// CheckpointCreate checkpoints a container and prints the checkpoint's
// name, as docker does.
func CheckpointCreate(ctx context.Context, c *client.Client, opts CheckpointOptions) error {
	if err := c.CreateCheckpoint(ctx, opts.Ref, opts.Name, opts.LeaveRunning); err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	fmt.Fprintln(opts.Stdout, opts.Name)
	return nil
}

// CheckpointList prints a container's checkpoints: a table, or one JSON
// object a line.
func CheckpointList(ctx context.Context, c *client.Client, opts CheckpointOptions) error {
	if err := checkFormat(opts.Format); err != nil {
		return err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cps, err := c.ListCheckpoints(ctx, opts.Ref)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if opts.Format == "json" {
		enc := json.NewEncoder(opts.Stdout)
		for _, cp := range cps {
			if err := enc.Encode(cp); err != nil {
				return err
			}
		}
		return nil
	}
	now := opts.Now()
	tw := tabwriter.NewWriter(opts.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCREATED")
	for _, cp := range cps {
		fmt.Fprintf(tw, "%s\t%s\n", cp.Name, format.Ago(now, cp.Created))
	}
	return tw.Flush()
}

// CheckpointRemove deletes a checkpoint of a container.
func CheckpointRemove(ctx context.Context, c *client.Client, opts CheckpointOptions) error {
	if err := c.DeleteCheckpoint(ctx, opts.Ref, opts.Name); err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}
