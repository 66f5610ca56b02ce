package backend

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// The limits of the numbers the engine takes, and their checks, are in
// package backend/types (aliased in types.go): every front end checks
// them before it calls the engine.

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}
