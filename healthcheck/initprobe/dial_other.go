//go:build !linux

package initprobe

import (
	"context"
	"fmt"
	"net"

	"github.com/containerd/errdefs"
)

func dial(ctx context.Context, socketPath string) (*net.UnixConn, error) {
	return nil, fmt.Errorf("probe socket %s: only supported on linux: %w", socketPath, errdefs.ErrNotImplemented)
}

func peerPid(conn *net.UnixConn) (int, error) {
	return 0, fmt.Errorf("peer credentials: only supported on linux: %w", errdefs.ErrNotImplemented)
}
