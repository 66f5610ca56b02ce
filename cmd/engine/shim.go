package main

import (
	"github.com/spf13/cobra"

	backendtypes "github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/api"
)

// Shared shims (see backend/shimgroup.go): `engine daemon
// --containers-per-shim N` and `engine run/create --shim-group KEY`.

// shimFlags are the shared-shim flags of run and create.
type shimFlags struct{ group string }

func (f *shimFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.group, "shim-group", "", "share the containerd shim of the containers of this group (default: the daemon's packing)")
}

// apply puts the flags into o; a malformed group exits 125.
func (f *shimFlags) apply(o *api.CreateOptions) error {
	if err := backendtypes.CheckShimGroup(f.group); err != nil {
		return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
	}
	o.ShimGroup = f.group
	return nil
}
