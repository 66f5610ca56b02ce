package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/format"
)

// VolumeOptions are the inputs of the volume commands.
type VolumeOptions struct {
	Names  []string          // create (at most one), inspect, rm
	Labels map[string]string // create
	Quiet  bool              // ls
	Format string            // ls: table or json
	Force  bool              // rm: a missing volume is no error; prune: no prompt
	All    bool              // prune: named volumes too
	Stdin  io.Reader         // prune's confirmation
	Stdout io.Writer
	Stderr io.Writer
}

// VolumeCreate creates a volume and prints its name.
func VolumeCreate(ctx context.Context, c *client.Client, opts VolumeOptions) error {
	req := api.VolumeCreateRequest{Labels: opts.Labels}
	if len(opts.Names) > 0 {
		req.Name = opts.Names[0]
	}
	v, err := c.CreateVolume(ctx, req)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	fmt.Fprintln(opts.Stdout, v.Name)
	return nil
}

// VolumeList lists volumes as docker does: DRIVER and VOLUME NAME, names
// only (-q) or JSON lines.
func VolumeList(ctx context.Context, c *client.Client, opts VolumeOptions) error {
	if err := checkFormat(opts.Format); err != nil {
		return err
	}
	vs, err := c.Volumes(ctx)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	switch {
	case opts.Format == "json":
		enc := json.NewEncoder(opts.Stdout)
		for _, v := range vs {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	case opts.Quiet:
		for _, v := range vs {
			fmt.Fprintln(opts.Stdout, v.Name)
		}
		return nil
	}
	tw := tabwriter.NewWriter(opts.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
	}
	return tw.Flush()
}

// VolumeInspect prints volumes as one indented JSON array.
func VolumeInspect(ctx context.Context, c *client.Client, opts VolumeOptions) error {
	out := []*api.Volume{}
	failed := 0
	for _, name := range opts.Names {
		v, err := c.InspectVolume(ctx, name)
		if err != nil {
			failed++
			fmt.Fprintf(opts.Stderr, "Error: %v\n", err)
			continue
		}
		out = append(out, v)
	}
	b, err := json.MarshalIndent(out, "", "    ")
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.Stdout, string(b))
	if failed > 0 {
		return &StatusError{Code: 1}
	}
	return nil
}

// VolumeRemove removes volumes and prints each name.
func VolumeRemove(ctx context.Context, c *client.Client, opts VolumeOptions) error {
	return forEach(opts.Names, opts.Stderr, func(name string) error {
		if err := c.RemoveVolume(ctx, name, opts.Force); err != nil {
			return err
		}
		fmt.Fprintln(opts.Stdout, name)
		return nil
	})
}

// VolumePrune removes unused volumes (anonymous ones, or all with All),
// after a confirmation unless Force, and prints what it removed.
func VolumePrune(ctx context.Context, c *client.Client, opts VolumeOptions) error {
	if !opts.Force {
		what := "anonymous local volumes"
		if opts.All {
			what = "all local volumes"
		}
		fmt.Fprintf(opts.Stdout, "WARNING! This will remove %s not used by at least one container.\nAre you sure you want to continue? [y/N] ", what)
		answer := ""
		if opts.Stdin != nil {
			line, _ := bufio.NewReader(opts.Stdin).ReadString('\n')
			answer = strings.ToLower(strings.TrimSpace(line))
		}
		if answer != "y" && answer != "yes" {
			fmt.Fprintln(opts.Stdout)
			return &StatusError{Code: 1, Err: fmt.Errorf("volume prune has been cancelled")}
		}
	}
	rep, err := c.PruneVolumes(ctx, opts.All)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if len(rep.VolumesDeleted) > 0 {
		fmt.Fprintln(opts.Stdout, "Deleted Volumes:")
		for _, n := range rep.VolumesDeleted {
			fmt.Fprintln(opts.Stdout, n)
		}
		fmt.Fprintln(opts.Stdout)
	}
	fmt.Fprintf(opts.Stdout, "Total reclaimed space: %s\n", format.HumanSize(int64(rep.SpaceReclaimed)))
	return nil
}
