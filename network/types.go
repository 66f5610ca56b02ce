package network

import "github.com/tendhq/tend/network/types"

// The data of networks lives in package network/types, which a client can
// import without CNI; these aliases keep it in this package's API.

// Network modes a container can be given besides a network name.
const (
	ModeBridge  = types.ModeBridge
	ModeNone    = types.ModeNone
	ModeHost    = types.ModeHost
	ModeDefault = types.ModeDefault
)

// DefaultBridge is the name of the default bridge device.
const DefaultBridge = types.DefaultBridge

type (
	// Network is a network record: what `network inspect` shows.
	Network = types.Network
	// CreateOptions describe a new user network.
	CreateOptions = types.CreateOptions
	// Attachment is what a CNI ADD gave a container.
	Attachment = types.Attachment
	// PortMapping publishes a container port on the host.
	PortMapping = types.PortMapping
	// HostEntry is one line of /etc/hosts.
	HostEntry = types.HostEntry
)

// ParsePublish parses one -p value; see types.ParsePublish.
func ParsePublish(spec string) (PortMapping, error) { return types.ParsePublish(spec) }

// ParseExposed parses an image's exposed port ("80/tcp", "53/udp", "8080").
func ParseExposed(s string) (PortMapping, error) { return types.ParseExposed(s) }

// SortPorts sorts mappings by container port, protocol, host port.
func SortPorts(ps []PortMapping) { types.SortPorts(ps) }

// ParseAddHost parses --add-host name:ip (docker's form; name=ip too).
func ParseAddHost(s string) (HostEntry, error) { return types.ParseAddHost(s) }

// CheckHostname checks a --hostname (RFC 1123, as runc sets it).
func CheckHostname(h string) error { return types.CheckHostname(h) }

// CheckDNS checks --dns servers.
func CheckDNS(servers []string) error { return types.CheckDNS(servers) }
