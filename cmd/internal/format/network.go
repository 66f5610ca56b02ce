package format

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/tendhq/tend/cmd/internal/api"
	tnet "github.com/tendhq/tend/network/types"
)

// DockerPort is a port mapping's container port in docker's terms.
func DockerPort(p tnet.PortMapping) (network.Port, bool) {
	proto := network.IPProtocol(p.Protocol)
	if proto == "" {
		proto = network.TCP
	}
	return network.PortFrom(uint16(p.ContainerPort), proto)
}

// HostAddr is a mapping's host address; empty is every address.
func HostAddr(ip string) netip.Addr {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a
}

// PortMap renders port mappings as docker's PortMap; withIP fills the
// host address of every binding (what inspect shows of a running
// container), else only those given.
func PortMap(ms []tnet.PortMapping, withIP bool) network.PortMap {
	pm := network.PortMap{}
	for _, m := range ms {
		port, ok := DockerPort(m)
		if !ok {
			continue
		}
		b := network.PortBinding{HostPort: strconv.Itoa(m.HostPort)}
		if m.HostPort == 0 && !withIP {
			b.HostPort = ""
		}
		if m.HostIP != "" || withIP {
			b.HostIP = HostAddr(m.HostIP)
		}
		pm[port] = append(pm[port], b)
	}
	return pm
}

// NetworkSettings renders the network of a container's current run as
// docker's inspect does.
func NetworkSettings(c *api.Container) *container.NetworkSettings {
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
		ns.Ports = PortMap(a.Ports, true)
	}
	return ns
}
