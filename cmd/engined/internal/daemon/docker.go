package daemon

import (
	"context"
	"net"

	"github.com/containerd/log"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/engined/internal/dockerapi"
	"github.com/tendhq/tend/cmd/engined/internal/server"
)

// DefaultDockerSocket is where `engine daemon` serves the Docker Engine API
// unless told otherwise: next to the tend socket, root-only like it.
const DefaultDockerSocket = "/run/tend/docker.sock"

// listenDocker claims the Docker API socket (0660 in a 0700 dir, as the
// tend socket), or returns nil when there is none.
func listenDocker(opts Options) (net.Listener, error) {
	if opts.DockerSocket == "" {
		return nil, nil
	}
	return server.Listen(opts.DockerSocket)
}

// serveDocker serves the Docker API on l until ctx ends; the channel
// yields Serve's error once it stopped (at once when l is nil).
func serveDocker(ctx context.Context, be *backend.Engine, opts Options, root string, l net.Listener) <-chan error {
	done := make(chan error, 1)
	if l == nil {
		done <- nil
		return done
	}
	srv := dockerapi.New(engine{Engine: be}, dockerapi.Options{Version: opts.Version, Root: root, MaxImportBytes: opts.MaxImportBytes})
	log.G(ctx).WithField("socket", opts.DockerSocket).Info("docker API serving")
	go func() { done <- srv.Serve(ctx, l) }()
	return done
}
