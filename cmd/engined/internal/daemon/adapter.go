package daemon

import (
	"context"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/engined/internal/server"
)

// engine adapts *backend.Engine to server.Engine. The wire's documents are
// backend's types, so every call is backend's own except Exec, which
// returns an interface.
type engine struct {
	*backend.Engine
}

var _ server.Engine = engine{}

func (e engine) Exec(ctx context.Context, ref string, opts server.ExecOptions) (server.Exec, error) {
	x, err := e.Engine.Exec(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	return x, nil
}
