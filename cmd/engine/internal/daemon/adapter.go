package daemon

import (
	"context"
	"io"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/engine/internal/api"
	"github.com/tendhq/tend/cmd/engine/internal/server"
)

// engine adapts *backend.Engine to server.Engine. The wire's documents are
// backend's types, so every call is backend's own except those below:
// Exec returns an interface, and Image, Info and TopProcess are mirrored
// on the wire until backend gives them JSON tags.
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

func (e engine) Top(ctx context.Context, ref string) ([]api.TopProcess, error) {
	ps, err := e.Engine.Top(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := make([]api.TopProcess, 0, len(ps))
	for _, p := range ps {
		out = append(out, api.TopProcess(p))
	}
	return out, nil
}

func images(is []backend.Image, err error) ([]api.Image, error) {
	if err != nil {
		return nil, err
	}
	out := make([]api.Image, 0, len(is))
	for _, i := range is {
		out = append(out, api.Image(i))
	}
	return out, nil
}

func (e engine) ImportImage(ctx context.Context, r io.Reader) ([]api.Image, error) {
	return images(e.Engine.ImportImage(ctx, r))
}

func (e engine) Images(ctx context.Context) ([]api.Image, error) {
	return images(e.Engine.Images(ctx))
}

func (e engine) Info(ctx context.Context) (api.Info, error) {
	i, err := e.Engine.Info(ctx)
	return api.Info(i), err
}
