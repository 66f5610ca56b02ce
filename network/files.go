package network

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
)

// HostsFile is the content of a container's /etc/hosts: localhost, the
// container's own address and names, then extra entries (--add-host and,
// on a user network, the other containers).
func HostsFile(ip string, self []string, extra []HostEntry) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	for _, e := range extra {
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
	}
	if ip != "" && len(self) > 0 {
		fmt.Fprintf(&b, "%s\t%s\n", ip, strings.Join(self, " "))
	}
	return b.Bytes()
}

// fallbackDNS are used when the host's resolver is a local stub
// (127.0.0.x, ::1) that a container cannot reach: Docker's choice.
var fallbackDNS = []string{"8.8.8.8", "8.8.4.4"}

// ResolvConf is a container's /etc/resolv.conf: the host's (path, normally
// /etc/resolv.conf) with servers replaced by dns when given, and loopback
// servers dropped (all of them loopback: Docker's public fallback).
func ResolvConf(path string, dns []string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read the host's %s: %w", path, err)
	}
	var b bytes.Buffer
	var servers []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			ip := net.ParseIP(f[1])
			if ip != nil && !ip.IsLoopback() {
				servers = append(servers, f[1])
			}
			continue
		}
		b.WriteString(line + "\n")
	}
	switch {
	case len(dns) > 0:
		servers = dns
	case len(servers) == 0:
		servers = fallbackDNS
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	return b.Bytes(), nil
}

// WriteInPlace rewrites a file that may be bind-mounted into a running
// container: in place (truncate and write), as a rename would leave the
// container with the old inode.
func WriteInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
