package types

import (
	networktypes "github.com/tendhq/tend/network/types"
)

// Info summarises the engine.
type Info struct {
	ContainerdVersion string `json:"containerd_version"`
	Namespace         string `json:"namespace"`
	Root              string `json:"root"`
	Containers        int    `json:"containers"`
	Running           int    `json:"running"`
	Paused            int    `json:"paused"`
	Stopped           int    `json:"stopped"`
	Images            int    `json:"images"`
	LiveRestore       bool   `json:"live_restore"`
}

// NetworkEndpoint is a container on a network, as `network inspect` shows.
type NetworkEndpoint struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	IPAddress string `json:"ip_address,omitempty"` // empty while it does not run
}

// NetworkInfo is a network and its containers.
type NetworkInfo struct {
	networktypes.Network
	Containers []NetworkEndpoint `json:"containers"`
}
