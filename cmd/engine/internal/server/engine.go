package server

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/tendhq/tend/cmd/engine/internal/api"
	"github.com/tendhq/tend/libcontainerd"
)

// Engine is what the daemon serves: exactly the calls of *backend.Engine
// that the API exposes, in wire types. The daemon adapts *backend.Engine to
// it; tests use fakes.
type Engine interface {
	Create(ctx context.Context, opts api.CreateOptions) (*api.Container, error)
	Start(ctx context.Context, ref string) error
	StartFromCheckpoint(ctx context.Context, ref, checkpoint string) error
	CreateCheckpoint(ctx context.Context, ref, name string, leaveRunning bool) error
	ListCheckpoints(ctx context.Context, ref string) ([]api.Checkpoint, error)
	DeleteCheckpoint(ctx context.Context, ref, name string) error
	Stop(ctx context.Context, ref string, timeout *time.Duration) error
	Kill(ctx context.Context, ref string, sig syscall.Signal) error
	Restart(ctx context.Context, ref string, timeout *time.Duration) error
	Pause(ctx context.Context, ref string) error
	Resume(ctx context.Context, ref string) error
	Remove(ctx context.Context, ref string, force bool) error
	Exec(ctx context.Context, ref string, opts ExecOptions) (Exec, error)
	Inspect(ctx context.Context, ref string) (*api.Container, error)
	List(ctx context.Context, opts api.ListOptions) ([]*api.Container, error)
	Wait(ctx context.Context, ref string, cond string) (int, error)
	Logs(ctx context.Context, ref string, opts api.LogsOptions, fn func(api.LogEntry) error) error
	Attach(ctx context.Context, ref string, opts AttachOptions) (detach func(), err error)
	Resize(ctx context.Context, ref string, width, height uint32) error
	Events(ctx context.Context, since time.Time, filter func(api.Event) bool, fn func(api.Event) error) error
	Stats(ctx context.Context, ref string) (*libcontainerd.Stats, error)
	Top(ctx context.Context, ref string) ([]api.TopProcess, error)
	ImportImage(ctx context.Context, r io.Reader) ([]api.Image, error)
	Images(ctx context.Context) ([]api.Image, error)
	RemoveImage(ctx context.Context, ref string) error
	Info(ctx context.Context) (api.Info, error)
}

// ExecOptions mirrors backend.ExecOptions.
type ExecOptions struct {
	Cmd, Env       []string
	WorkingDir     string
	Tty            bool
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Exec is a started exec process, as *backend.Exec.
type Exec interface {
	ID() string
	Pid() uint32
	// Wait returns the exit code once the output is drained.
	Wait(ctx context.Context) (int, error)
	Resize(ctx context.Context, width, height uint32) error
}

// AttachOptions mirrors backend.AttachOptions.
type AttachOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}
