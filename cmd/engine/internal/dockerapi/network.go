package dockerapi

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/tendhq/tend/backend"
	tnet "github.com/tendhq/tend/network"
)

func toPort(p tnet.PortMapping) (network.Port, bool) {
	proto := network.IPProtocol(p.Protocol)
	if proto == "" {
		proto = network.TCP
	}
	return network.PortFrom(uint16(p.ContainerPort), proto)
}

func hostAddr(ip string) netip.Addr {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a
}

// portMap renders port mappings as Docker's PortMap.
func portMap(ms []tnet.PortMapping, withIP bool) network.PortMap {
	pm := network.PortMap{}
	for _, m := range ms {
		port, ok := toPort(m)
		if !ok {
			continue
		}
		b := network.PortBinding{HostPort: strconv.Itoa(m.HostPort)}
		if m.HostPort == 0 && !withIP {
			b.HostPort = ""
		}
		if m.HostIP != "" || withIP {
			b.HostIP = hostAddr(m.HostIP)
		}
		pm[port] = append(pm[port], b)
	}
	return pm
}

// networkSettings renders the network of a container's current run.
func networkSettings(c *backend.Container) *container.NetworkSettings {
	ns := &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}, Ports: network.PortMap{}}
	if c.Network == nil {
		return ns
	}
	ns.SandboxKey = c.Network.NetNS
	if a := c.Network.Attachment; a != nil {
		ep := &network.EndpointSettings{NetworkID: a.NetworkID, IPPrefixLen: a.PrefixLen}
		if ip, err := netip.ParseAddr(a.IPAddress); err == nil {
			ep.IPAddress = ip
		}
		if gw, err := netip.ParseAddr(a.Gateway); err == nil {
			ep.Gateway = gw
		}
		if mac, err := net.ParseMAC(a.MacAddress); err == nil {
			ep.MacAddress = network.HardwareAddr(mac)
		}
		ns.Networks[a.Network] = ep
		ns.Ports = portMap(a.Ports, true)
	}
	return ns
}

// portSummaries renders the published ports of a running container as
// docker ps lists them.
func portSummaries(c *backend.Container) []container.PortSummary {
	out := []container.PortSummary{}
	if c.Network == nil || c.Network.Attachment == nil {
		return out
	}
	for _, m := range c.Network.Attachment.Ports {
		port, ok := toPort(m)
		if !ok {
			continue
		}
		out = append(out, container.PortSummary{IP: hostAddr(m.HostIP), PrivatePort: port.Num(), PublicPort: uint16(m.HostPort), Type: string(port.Proto())})
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
