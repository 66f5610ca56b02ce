// Package types holds the data of package network that front ends share
// with the engine: network records and options, port mappings, host
// entries, and the pure parsers and checks of their flags. It imports no
// CNI or containerd code, so that a client (the engine CLI) can use it
// without paying for them; package network aliases every name here.
package types

import "time"

// Network modes a container can be given besides a network name.
const (
	// ModeBridge is the default network ("bridge", Docker's name).
	ModeBridge = "bridge"
	// ModeNone is a network namespace with only lo.
	ModeNone = "none"
	// ModeHost is the host's network namespace.
	ModeHost = "host"
	// ModeDefault is the empty mode: the default bridge.
	ModeDefault = ""
)

// DefaultBridge is the name of the default bridge device.
const DefaultBridge = "tend0"

// Network is a network record: what `network inspect` shows.
type Network struct {
	Name    string            `json:"name"`
	ID      string            `json:"id"`
	Driver  string            `json:"driver"` // always "bridge"
	Bridge  string            `json:"bridge"` // the bridge device
	Subnet  string            `json:"subnet"`
	Gateway string            `json:"gateway"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Default marks the engine's default network ("bridge"): it cannot be
	// removed and gives no name resolution between containers (as Docker's).
	Default bool `json:"default,omitempty"`
}

// CreateOptions describe a new user network.
type CreateOptions struct {
	Name   string            `json:"name"`
	Subnet string            `json:"subnet,omitempty"` // empty: picked
	Labels map[string]string `json:"labels,omitempty"`
}

// Attachment is what a CNI ADD gave a container: recorded with it, so that
// the DEL after an engine restart finds the same network and ports.
type Attachment struct {
	Network    string        `json:"network"`
	NetworkID  string        `json:"network_id,omitempty"`
	IPAddress  string        `json:"ip_address,omitempty"`
	PrefixLen  int           `json:"prefix_len,omitempty"`
	Gateway    string        `json:"gateway,omitempty"`
	MacAddress string        `json:"mac_address,omitempty"`
	Ports      []PortMapping `json:"ports,omitempty"`
}
