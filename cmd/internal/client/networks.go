package client

import (
	"context"
	"net/http"
	"net/url"

	backendtypes "github.com/tendhq/tend/backend/types"
	networktypes "github.com/tendhq/tend/network/types"
)

func netPath(name string) string { return "/networks/" + url.PathEscape(name) }

// CreateNetwork creates a user networktypes.
func (c *Client) CreateNetwork(ctx context.Context, opts networktypes.CreateOptions) (*networktypes.Network, error) {
	var n networktypes.Network
	if err := c.call(ctx, http.MethodPost, "/networks", nil, opts, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// Networks lists the networks.
func (c *Client) Networks(ctx context.Context) ([]backendtypes.NetworkInfo, error) {
	var ns []backendtypes.NetworkInfo
	return ns, c.call(ctx, http.MethodGet, "/networks", nil, nil, &ns)
}

// InspectNetwork returns a network and its containers.
func (c *Client) InspectNetwork(ctx context.Context, name string) (*backendtypes.NetworkInfo, error) {
	var n backendtypes.NetworkInfo
	if err := c.call(ctx, http.MethodGet, netPath(name), nil, nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// RemoveNetwork removes a user networktypes.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, netPath(name), nil, nil, nil)
}

// PruneNetworks removes the unused user networks.
func (c *Client) PruneNetworks(ctx context.Context) ([]string, error) {
	var names []string
	return names, c.call(ctx, http.MethodPost, "/networks/prune", nil, nil, &names)
}

// Ports lists the ports a container publishes.
func (c *Client) Ports(ctx context.Context, r string) ([]networktypes.PortMapping, error) {
	var ps []networktypes.PortMapping
	return ps, c.call(ctx, http.MethodGet, ref(r)+"/port", nil, nil, &ps)
}

// ConnectNetwork asks the engine to connect a container to a network
// (disconnect: false) or to disconnect it.
func (c *Client) ConnectNetwork(ctx context.Context, name, ctr string, disconnect bool) error {
	verb := "/connect"
	if disconnect {
		verb = "/disconnect"
	}
	return c.call(ctx, http.MethodPost, netPath(name)+verb, nil, map[string]string{"container": ctr}, nil)
}
