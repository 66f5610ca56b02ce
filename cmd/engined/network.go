package main

import (
	"github.com/spf13/pflag"

	"github.com/tendhq/tend/cmd/engined/internal/daemon"
	networktypes "github.com/tendhq/tend/network/types"
)

// registerNetworkDaemonFlags adds the daemon's network flags.
func registerNetworkDaemonFlags(fl *pflag.FlagSet, o *daemon.Options) {
	fl.StringVar(&o.Bridge, "bridge", networktypes.DefaultBridge, "bridge device of the default network; none: no networking")
	fl.StringVar(&o.BridgeSubnet, "bridge-subnet", "", "IPv4 subnet of the default bridge (default: the one used before, else a free /24 of 10.88.0.0/14)")
	fl.StringArrayVar(&o.CNIPluginDirs, "cni-plugin-dir", nil, "directory of the CNI plugins (default /usr/lib/cni, /opt/cni/bin)")
}
