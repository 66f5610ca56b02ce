package network

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
)

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
