package dockerapi

import (
	"github.com/moby/moby/api/types/container"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/format"
	tnet "github.com/tendhq/tend/network"
)

// portSummaries renders the published ports of a running container as
// docker ps lists them.
func portSummaries(c *backend.Container) []container.PortSummary {
	out := []container.PortSummary{}
	if c.Network == nil || c.Network.Attachment == nil {
		return out
	}
	for _, m := range c.Network.Attachment.Ports {
		port, ok := format.DockerPort(m)
		if !ok {
			continue
		}
		out = append(out, container.PortSummary{IP: format.HostAddr(m.HostIP), PrivatePort: port.Num(), PublicPort: uint16(m.HostPort), Type: string(port.Proto())})
	}
	return out
}

// legacyNetworkVersion is the API version that dropped the default
// network's address from the top of NetworkSettings (deprecated since
// 1.21 and 1.44): older clients read it there, as docker inspect -f
// '{{.NetworkSettings.IPAddress}}' does.
const legacyNetworkVersion = "1.52"

// legacyNetworkSettings adds the top-level fields of the default bridge
// network to NetworkSettings, as dockerd sends them to older clients.
type legacyNetworkSettings struct {
	*container.NetworkSettings
	Bridge      string
	EndpointID  string
	Gateway     string
	IPAddress   string
	IPPrefixLen int
	MacAddress  string
}

type legacyInspect struct {
	container.InspectResponse
	NetworkSettings *legacyNetworkSettings
}

// withLegacyNetwork renders inspect for a client before API 1.52: the
// address fields are the default bridge network's, empty on any other.
func withLegacyNetwork(out container.InspectResponse, c *backend.Container) legacyInspect {
	ns := &legacyNetworkSettings{NetworkSettings: out.NetworkSettings}
	if c.Network != nil && c.Network.Attachment != nil && c.Network.Attachment.Network == tnet.ModeBridge {
		a := c.Network.Attachment
		ns.IPAddress, ns.IPPrefixLen, ns.Gateway, ns.MacAddress = a.IPAddress, a.PrefixLen, a.Gateway, a.MacAddress
		if ep := out.NetworkSettings.Networks[a.Network]; ep != nil {
			ns.EndpointID = ep.EndpointID
		}
	}
	return legacyInspect{InspectResponse: out, NetworkSettings: ns}
}
