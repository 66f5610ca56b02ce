package main

import (
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/cmd/engined/internal/daemon"
)

// addRegistryDaemonFlags adds the daemon's registry options:
// --insecure-registry (repeatable, as docker's) and --registry-certs-dir.
func addRegistryDaemonFlags(cmd *cobra.Command, o *daemon.Options) {
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Registry.Insecure, "insecure-registry", nil, "reach this registry (host[:port]) over plain HTTP; repeatable (localhost is always allowed)")
	fl.StringVar(&o.Registry.CertsDir, "registry-certs-dir", "/etc/docker/certs.d", "per-registry TLS settings: <dir>/<host:port>/ca.crt, client.cert, client.key (docker's certs.d layout) or hosts.toml")
}
