package types

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// PortMapping publishes a container port on the host. In a container's
// options HostPort 0 asks for a free port, picked at every start; in an
// Attachment it is the port in use.
type PortMapping struct {
	HostIP        string `json:"host_ip,omitempty"` // empty: every address
	HostPort      int    `json:"host_port"`
	ContainerPort int    `json:"container_port"`
	Protocol      string `json:"protocol"` // tcp or udp
}

// String is Docker's form: 127.0.0.1:8080->80/tcp, 0.0.0.0:8080->80/tcp.
func (p PortMapping) String() string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return fmt.Sprintf("%s->%d/%s", net.JoinHostPort(ip, strconv.Itoa(p.HostPort)), p.ContainerPort, p.Protocol)
}

// Key is the port a mapping holds on the host.
func (p PortMapping) Key() string { return fmt.Sprintf("%s:%d/%s", p.HostIP, p.HostPort, p.Protocol) }

func badPublish(spec, why string) error {
	return fmt.Errorf("invalid port publication %q: %s: want [ip:][hostPort:]containerPort[/tcp|udp]: %w", spec, why, errdefs.ErrInvalidArgument)
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}

// ParsePublish parses one -p value: containerPort, hostPort:containerPort,
// ip:hostPort:containerPort or ip::containerPort, each with an optional
// /tcp or /udp (tcp when absent).
func ParsePublish(spec string) (PortMapping, error) {
	var p PortMapping
	rest, proto, hasProto := strings.Cut(spec, "/")
	p.Protocol = "tcp"
	if hasProto {
		switch proto = strings.ToLower(proto); proto {
		case "tcp", "udp":
			p.Protocol = proto
		default:
			return p, badPublish(spec, fmt.Sprintf("protocol %q is not tcp or udp", proto))
		}
	}
	if rest == "" {
		return p, badPublish(spec, "no container port")
	}
	// An IPv6 host address is in brackets: [::1]:8080:80.
	var ip string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return p, badPublish(spec, "unclosed [ in the host address")
		}
		ip, rest = rest[1:end], rest[end+2:]
	}
	parts := strings.Split(rest, ":")
	var host, ctr string
	switch {
	case ip != "" && len(parts) == 2:
		host, ctr = parts[0], parts[1]
	case ip == "" && len(parts) == 1:
		ctr = parts[0]
	case ip == "" && len(parts) == 2:
		host, ctr = parts[0], parts[1]
	case ip == "" && len(parts) == 3:
		ip, host, ctr = parts[0], parts[1], parts[2]
	default:
		return p, badPublish(spec, "too many ':'")
	}
	if strings.Contains(host, "-") || strings.Contains(ctr, "-") {
		return p, badPublish(spec, "port ranges are not supported: publish each port")
	}
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return p, badPublish(spec, fmt.Sprintf("host address %q is not an IP address", ip))
		}
		if a.To4() == nil {
			return p, badPublish(spec, "IPv6 host addresses are not supported (the networks are IPv4)")
		}
		p.HostIP = a.String()
	}
	var err error
	if p.ContainerPort, err = parsePort(ctr); err != nil {
		return p, badPublish(spec, "container "+err.Error())
	}
	if host != "" {
		if p.HostPort, err = parsePort(host); err != nil {
			return p, badPublish(spec, "host "+err.Error())
		}
	}
	return p, nil
}

// ParseExposed parses an image's exposed port ("80/tcp", "53/udp", "8080").
func ParseExposed(s string) (PortMapping, error) {
	port, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	p, err := ParsePublish(port + "/" + proto)
	if err != nil {
		return p, err
	}
	p.HostIP, p.HostPort = "", 0
	return p, nil
}

// SortPorts sorts mappings by container port, protocol, host port.
func SortPorts(ps []PortMapping) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		return a.HostPort < b.HostPort
	})
}
