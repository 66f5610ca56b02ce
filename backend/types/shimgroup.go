package types

import (
	"fmt"

	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/errdefs"
)

// ShimGroupAnnotation is the runc v2 shim's grouping annotation.
const ShimGroupAnnotation = "io.containerd.runc.v2.group"

// MaxContainersPerShim bounds Config.ContainersPerShim: a shim serves its
// containers' events, stdio and execs on one process.
const MaxContainersPerShim = 256

// CheckShimGroup validates a container's ShimGroup ("" is none).
func CheckShimGroup(key string) error {
	if key == "" {
		return nil
	}
	if identifiers.Validate(key) != nil {
		return fmt.Errorf("invalid shim group %q: want letters and digits joined by single '_', '.' or '-', at most 76 characters: %w", key, errdefs.ErrInvalidArgument)
	}
	return nil
}

// CheckContainersPerShim validates Config.ContainersPerShim.
func CheckContainersPerShim(n int) error {
	if n < 0 || n > MaxContainersPerShim {
		return fmt.Errorf("invalid containers per shim %d: want 1 (a shim per container) to %d: %w", n, MaxContainersPerShim, errdefs.ErrInvalidArgument)
	}
	return nil
}
