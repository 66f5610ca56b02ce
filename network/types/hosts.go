package types

import (
	"fmt"
	"net"
	"strings"

	"github.com/containerd/errdefs"
)

// HostEntry is one line of /etc/hosts.
type HostEntry struct {
	IP    string
	Names []string
}

// ParseAddHost parses --add-host name:ip (docker's form; name=ip too).
func ParseAddHost(s string) (HostEntry, error) {
	name, ip, ok := strings.Cut(s, "=")
	if !ok {
		name, ip, ok = strings.Cut(s, ":")
	}
	name = strings.TrimSpace(name)
	ip = strings.Trim(strings.TrimSpace(ip), "[]")
	if !ok || name == "" || strings.ContainsAny(name, " \t\n#") || net.ParseIP(ip) == nil {
		return HostEntry{}, fmt.Errorf("invalid --add-host %q: want name:ip: %w", s, errdefs.ErrInvalidArgument)
	}
	return HostEntry{IP: net.ParseIP(ip).String(), Names: []string{name}}, nil
}

// CheckHostname checks a --hostname (RFC 1123, as runc sets it).
func CheckHostname(h string) error {
	if h == "" {
		return nil
	}
	if len(h) > 253 {
		return fmt.Errorf("invalid hostname %q: at most 253 characters: %w", h, errdefs.ErrInvalidArgument)
	}
	for _, l := range strings.Split(h, ".") {
		ok := len(l) >= 1 && len(l) <= 63 && l[0] != '-' && l[len(l)-1] != '-'
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				ok = false
			}
		}
		if !ok {
			return fmt.Errorf("invalid hostname %q: want labels of letters, digits and '-' joined by '.': %w", h, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// CheckDNS checks --dns servers.
func CheckDNS(servers []string) error {
	for _, s := range servers {
		if net.ParseIP(s) == nil {
			return fmt.Errorf("invalid --dns %q: want an IP address: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
