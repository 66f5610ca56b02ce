package main

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	backendtypes "github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/cmd/engine/internal/cli"
	"github.com/tendhq/tend/cmd/internal/api"
)

// logOptFlags are run/create's --log-opt KEY=VALUE, docker's json-file
// options that choose the attributes `logs --details` shows.
type logOptFlags struct{ opts []string }

func (f *logOptFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.opts, "log-opt", nil, "log option KEY=VALUE: labels=K1,K2, labels-regex=RE, env=V1,V2, env-regex=RE (shown by logs --details)")
}

// apply puts the options into o; a malformed or unknown one exits 125.
func (f *logOptFlags) apply(o *api.CreateOptions) error {
	for _, kv := range f.opts {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return &cli.StatusError{Code: cli.ExitEngineError, Err: fmt.Errorf("invalid --log-opt %q: want KEY=VALUE (e.g. labels=app): %w", kv, errdefs.ErrInvalidArgument)}
		}
		if o.LogOpts == nil {
			o.LogOpts = map[string]string{}
		}
		o.LogOpts[k] = v
	}
	if err := backendtypes.CheckLogOpts(o.LogOpts); err != nil {
		return &cli.StatusError{Code: cli.ExitEngineError, Err: err}
	}
	return nil
}
