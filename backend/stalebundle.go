package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/tendhq/tend/libcontainerd"
	"github.com/tendhq/tend/libcontainerd/supervisor"
)

// startClientTask is the client's Start that gets past a task bundle containerd
// left behind without its task (libcontainerd.StaleBundleError): when the
// engine owns that containerd's state dir (Config.ContainerdStateDir), the
// supervisor package removes the bundle, unless something still uses it,
// and the start is tried once more.
func (e *Engine) startClientTask(ctx context.Context, id string, opts ...libcontainerd.StartOption) (uint32, error) {
	pid, err := e.client.Start(ctx, id, opts...)
	var stale *libcontainerd.StaleBundleError
	if !errors.As(err, &stale) || e.cfg.ContainerdStateDir == "" {
		return pid, err
	}
	if _, rerr := supervisor.RemoveStaleTaskBundle(e.cfg.ContainerdStateDir, stale.Namespace, stale.ContainerID); rerr != nil {
		return 0, fmt.Errorf("%w (removing the stale bundle: %v)", err, rerr)
	}
	return e.client.Start(ctx, id, opts...)
}
