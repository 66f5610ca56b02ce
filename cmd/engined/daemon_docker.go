package main

import (
	"github.com/spf13/pflag"

	"github.com/tendhq/tend/cmd/engined/internal/daemon"
)

// addDockerFlags registers the Docker Engine API flags of `engine daemon`.
func addDockerFlags(fl *pflag.FlagSet, o *daemon.Options) {
	fl.StringVar(&o.DockerSocket, "docker-socket", daemon.DefaultDockerSocket,
		`Docker Engine API socket, for the docker CLI and SDKs (DOCKER_HOST=unix://PATH); "" to serve none`)
}
