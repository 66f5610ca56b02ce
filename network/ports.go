package network

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"

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

// ErrPortInUse classes a host port that is taken.
var ErrPortInUse = fmt.Errorf("host port is already in use: %w", errdefs.ErrConflict)

// ResolvePorts returns the mappings to publish for want: each fixed host
// port checked free (not taken by a mapping in held, not bound on the
// host), each random one (HostPort 0) given a free port.
func ResolvePorts(want []PortMapping, held map[string]bool) ([]PortMapping, error) {
	out := make([]PortMapping, 0, len(want))
	mine := map[string]bool{}
	for _, p := range want {
		if p.HostPort == 0 {
			for tries := 0; ; tries++ {
				port, err := freePort(p.HostIP, p.Protocol)
				if err != nil {
					return nil, err
				}
				q := p
				q.HostPort = port
				if !held[q.Key()] && !mine[q.Key()] && !heldAny(held, mine, q) {
					p = q
					break
				}
				if tries > 20 {
					return nil, fmt.Errorf("no free host port for %d/%s: %w", p.ContainerPort, p.Protocol, errdefs.ErrResourceExhausted)
				}
			}
		} else {
			if held[p.Key()] || mine[p.Key()] || heldAny(held, mine, p) {
				return nil, fmt.Errorf("publish %s: host port %d/%s is published by another container: %w", p, p.HostPort, p.Protocol, ErrPortInUse)
			}
			if err := checkFree(p); err != nil {
				return nil, err
			}
		}
		mine[p.Key()] = true
		out = append(out, p)
	}
	return out, nil
}

// heldAny reports a clash of p with a mapping of the same port on every
// address, or of an every-address p with one on a single address.
func heldAny(held, mine map[string]bool, p PortMapping) bool {
	for _, m := range []map[string]bool{held, mine} {
		for k := range m {
			ip, rest, _ := strings.Cut(k, ":")
			if rest == fmt.Sprintf("%d/%s", p.HostPort, p.Protocol) && (ip == "" || p.HostIP == "" || ip == p.HostIP) {
				return true
			}
		}
	}
	return false
}

func freePort(ip, proto string) (int, error) {
	addr := net.JoinHostPort(ip, "0")
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return 0, fmt.Errorf("find a free host port: %w", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return 0, fmt.Errorf("find a free host port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkFree fails when a host process has p's port bound.
func checkFree(p PortMapping) error {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
	var err error
	if p.Protocol == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", addr); err == nil {
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", addr); err == nil {
			l.Close()
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("publish %s: host port %d/%s is in use by another program: pick another port: %w", p, p.HostPort, p.Protocol, ErrPortInUse)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("publish %s: host address %s is not an address of this host: %w", p, p.HostIP, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("publish %s: %w", p, err)
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
