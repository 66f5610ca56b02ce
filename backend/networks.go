package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/network"
)

func (e *Engine) networks() (*network.Manager, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	if e.net == nil {
		return nil, ErrNetworkDisabled
	}
	return e.net, nil
}

// CreateNetwork creates a user network.
func (e *Engine) CreateNetwork(ctx context.Context, opts network.CreateOptions) (*network.Network, error) {
	m, err := e.networks()
	if err != nil {
		return nil, err
	}
	if err := CheckLabels(opts.Labels); err != nil {
		return nil, err
	}
	return m.Create(opts)
}

func (e *Engine) endpoints(name string) []NetworkEndpoint {
	var out []NetworkEndpoint
	for _, c := range e.containers() {
		c.mu.Lock()
		if c.rec.Config.NetworkMode == name && !c.removed {
			ep := NetworkEndpoint{ID: c.rec.ID, Name: c.rec.Name}
			if c.rec.Network != nil && c.rec.Network.Attachment != nil {
				ep.IPAddress = c.rec.Network.Attachment.IPAddress
			}
			out = append(out, ep)
		}
		c.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if out == nil {
		out = []NetworkEndpoint{}
	}
	return out
}

// InspectNetwork returns a network (by name or id) with its containers.
func (e *Engine) InspectNetwork(ctx context.Context, ref string) (*NetworkInfo, error) {
	m, err := e.networks()
	if err != nil {
		return nil, err
	}
	n, err := m.Get(ref)
	if err != nil {
		return nil, err
	}
	return &NetworkInfo{Network: *n, Containers: e.endpoints(n.Name)}, nil
}

// Networks lists the networks with their containers.
func (e *Engine) Networks(ctx context.Context) ([]NetworkInfo, error) {
	m, err := e.networks()
	if err != nil {
		return nil, err
	}
	var out []NetworkInfo
	for _, n := range m.List() {
		out = append(out, NetworkInfo{Network: n, Containers: e.endpoints(n.Name)})
	}
	return out, nil
}

// RemoveNetwork removes a user network and its bridge. A network that a
// container (in any state) uses is errdefs.ErrConflict: remove the
// containers first.
func (e *Engine) RemoveNetwork(ctx context.Context, ref string) error {
	m, err := e.networks()
	if err != nil {
		return err
	}
	n, err := m.Get(ref)
	if err != nil {
		return err
	}
	// Creates on this network hold e.netMu too, so none slips in between
	// the check and the removal.
	e.netMu.Lock()
	defer e.netMu.Unlock()
	if eps := e.endpoints(n.Name); len(eps) > 0 && !n.Default {
		names := make([]string, 0, len(eps))
		for _, ep := range eps {
			names = append(names, ep.Name)
		}
		return fmt.Errorf("network %s is in use by container(s) %s: remove them first: %w", n.Name, strings.Join(names, ", "), errdefs.ErrConflict)
	}
	if _, err := m.Remove(n.Name); err != nil {
		return err
	}
	if err := network.DeleteBridge(n.Bridge); err != nil {
		e.log.WithError(err).WithField("network", n.Name).Warn("delete the bridge of a removed network")
	}
	return nil
}

// PruneNetworks removes every user network no container uses and returns
// their names.
func (e *Engine) PruneNetworks(ctx context.Context) ([]string, error) {
	m, err := e.networks()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, n := range m.List() {
		if n.Default {
			continue
		}
		if err := e.RemoveNetwork(ctx, n.Name); err != nil {
			if errdefs.IsConflict(err) || errdefs.IsNotFound(err) {
				continue
			}
			return removed, err
		}
		removed = append(removed, n.Name)
	}
	return removed, nil
}

// Ports returns the ports a running container publishes.
func (e *Engine) Ports(ctx context.Context, ref string) ([]network.PortMapping, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.Network == nil || c.rec.Network.Attachment == nil {
		return []network.PortMapping{}, nil
	}
	out := append([]network.PortMapping{}, c.rec.Network.Attachment.Ports...)
	network.SortPorts(out)
	return out, nil
}

// ErrNetworkConnectUnsupported is the answer to connect and disconnect: a
// container has one network, fixed at create.
var ErrNetworkConnectUnsupported = fmt.Errorf("a container's network is fixed at create (--network); remove the container and run it again on the network you want: %w", errdefs.ErrNotImplemented)

// ConnectNetwork would attach a container to one more network while it
// runs (docker network connect). Not supported: a container has one
// network (its record holds one attachment, its ports and /etc/hosts
// follow that one). An unknown network or container is still
// errdefs.ErrNotFound, so a mistyped name is told apart.
func (e *Engine) ConnectNetwork(ctx context.Context, netRef, ctrRef string) error {
	return e.networkConnect("connect", netRef, ctrRef)
}

// DisconnectNetwork would detach a container from a network (docker
// network disconnect); not supported, as ConnectNetwork.
func (e *Engine) DisconnectNetwork(ctx context.Context, netRef, ctrRef string) error {
	return e.networkConnect("disconnect", netRef, ctrRef)
}

func (e *Engine) networkConnect(verb, netRef, ctrRef string) error {
	m, err := e.networks()
	if err != nil {
		return err
	}
	n, err := m.Get(netRef)
	if err != nil {
		return err
	}
	c, err := e.resolve(ctrRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	name := c.rec.Name
	c.mu.Unlock()
	return fmt.Errorf("network %s of container %s to %s is not supported: %w", verb, name, n.Name, ErrNetworkConnectUnsupported)
}
