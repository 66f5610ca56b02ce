//go:build !linux

package healthcheck

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// KillTree kills a host process tree; it needs /proc and is only
// implemented on Linux.
func KillTree(pid int) error {
	return fmt.Errorf("kill process tree of %d: only supported on linux: %w", pid, errdefs.ErrNotImplemented)
}
