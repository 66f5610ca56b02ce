package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/format"
	networktypes "github.com/tendhq/tend/network/types"
)

// NetworkOptions are the inputs of the network commands.
type NetworkOptions struct {
	Names  []string
	Create networktypes.CreateOptions
	Format string // ls: "" (table) or "json"
	Quiet  bool
	Stdout io.Writer
	Stderr io.Writer
}

// NetworkCreate creates a network and prints its id.
func NetworkCreate(ctx context.Context, c *client.Client, opts NetworkOptions) error {
	n, err := c.CreateNetwork(ctx, opts.Create)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	fmt.Fprintln(opts.Stdout, n.ID)
	return nil
}

// NetworkList prints the networks as docker network ls does.
func NetworkList(ctx context.Context, c *client.Client, opts NetworkOptions) error {
	if err := checkFormat(opts.Format); err != nil {
		return err
	}
	ns, err := c.Networks(ctx)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	switch {
	case opts.Format == "json":
		enc := json.NewEncoder(opts.Stdout)
		for _, n := range ns {
			if err := enc.Encode(n); err != nil {
				return err
			}
		}
		return nil
	case opts.Quiet:
		for _, n := range ns {
			fmt.Fprintln(opts.Stdout, format.ShortID(n.ID))
		}
		return nil
	}
	tw := tabwriter.NewWriter(opts.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tBRIDGE\tSUBNET\tCONTAINERS")
	for _, n := range ns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", format.ShortID(n.ID), n.Name, n.Driver, n.Bridge, n.Subnet, len(n.Containers))
	}
	return tw.Flush()
}

// NetworkInspect prints networks as one indented JSON array.
func NetworkInspect(ctx context.Context, c *client.Client, opts NetworkOptions) error {
	out := []any{}
	failed := false
	for _, name := range opts.Names {
		n, err := c.InspectNetwork(ctx, name)
		if err != nil {
			failed = true
			fmt.Fprintf(opts.Stderr, "Error: %v\n", err)
			continue
		}
		out = append(out, n)
	}
	b, err := json.MarshalIndent(out, "", "    ")
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.Stdout, string(b))
	if failed {
		return &StatusError{Code: 1}
	}
	return nil
}

// NetworkRemove removes networks, printing each name removed.
func NetworkRemove(ctx context.Context, c *client.Client, opts NetworkOptions) error {
	failed := false
	for _, name := range opts.Names {
		if err := c.RemoveNetwork(ctx, name); err != nil {
			failed = true
			fmt.Fprintf(opts.Stderr, "Error: %v\n", err)
			continue
		}
		fmt.Fprintln(opts.Stdout, name)
	}
	if failed {
		return &StatusError{Code: 1}
	}
	return nil
}

// NetworkPrune removes unused user networks.
func NetworkPrune(ctx context.Context, c *client.Client, opts NetworkOptions) error {
	names, err := c.PruneNetworks(ctx)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if len(names) > 0 {
		fmt.Fprintln(opts.Stdout, "Deleted Networks:")
		for _, n := range names {
			fmt.Fprintln(opts.Stdout, n)
		}
	}
	return nil
}

// PortOptions are the inputs of Port.
type PortOptions struct {
	Ref    string
	Filter string // "80" or "80/tcp": only that container port
	Stdout io.Writer
}

// Port prints a container's published ports as docker port does:
// "80/tcp -> 127.0.0.1:8080".
func Port(ctx context.Context, c *client.Client, opts PortOptions) error {
	ps, err := c.Ports(ctx, opts.Ref)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	var want *networktypes.PortMapping
	if opts.Filter != "" {
		p, err := networktypes.ParseExposed(opts.Filter)
		if err != nil {
			return &StatusError{Code: 1, Err: err}
		}
		want = &p
	}
	found := false
	for _, p := range ps {
		if want != nil && (p.ContainerPort != want.ContainerPort || p.Protocol != want.Protocol) {
			continue
		}
		found = true
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		if want != nil {
			fmt.Fprintf(opts.Stdout, "%s:%d\n", ip, p.HostPort)
		} else {
			fmt.Fprintf(opts.Stdout, "%d/%s -> %s:%d\n", p.ContainerPort, p.Protocol, ip, p.HostPort)
		}
	}
	if want != nil && !found {
		return &StatusError{Code: 1, Err: fmt.Errorf("no public port '%s' published for %s", opts.Filter, opts.Ref)}
	}
	return nil
}
