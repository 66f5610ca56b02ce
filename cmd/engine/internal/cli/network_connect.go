package cli

import (
	"context"
	"io"

	"github.com/tendhq/tend/cmd/internal/client"
)

// NetworkConnectOptions are the inputs of network connect and disconnect.
type NetworkConnectOptions struct {
	Network    string
	Container  string
	Disconnect bool
	Stdout     io.Writer
}

// NetworkConnect asks the engine to connect a container to a network (or
// to disconnect it). tend's engine answers that this is not supported: a
// container's network is fixed at create.
func NetworkConnect(ctx context.Context, c *client.Client, opts NetworkConnectOptions) error {
	if err := c.ConnectNetwork(ctx, opts.Network, opts.Container, opts.Disconnect); err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}
