package format

import (
	"strings"

	backendtypes "github.com/tendhq/tend/backend/types"
	networktypes "github.com/tendhq/tend/network/types"
)

// Ports renders a container's PORTS column as docker ps does:
// "127.0.0.1:8080->80/tcp, 0.0.0.0:5353->53/udp"; empty when it publishes
// none (or does not run).
func Ports(c *backendtypes.Container) string {
	if c.Network == nil || c.Network.Attachment == nil {
		return ""
	}
	ps := append([]networktypes.PortMapping(nil), c.Network.Attachment.Ports...)
	networktypes.SortPorts(ps)
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
}
