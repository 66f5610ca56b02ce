package daemon

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/engine/internal/api"
	"github.com/tendhq/tend/cmd/engine/internal/server"
	"github.com/tendhq/tend/io/jsonlog"
	"github.com/tendhq/tend/libcontainerd"
)

// engine adapts *backend.Engine to server.Engine: the calls are the same,
// the types are converted field by field between backend's and the wire's.
type engine struct {
	be *backend.Engine
}

var _ server.Engine = engine{}

func toCreate(o api.CreateOptions) backend.CreateOptions {
	return backend.CreateOptions{
		Name: o.Name, Image: o.Image, Rootfs: o.Rootfs, Cmd: o.Cmd, Env: o.Env, WorkingDir: o.WorkingDir,
		Labels: o.Labels, Tty: o.Tty, OpenStdin: o.OpenStdin,
		Restart:    backend.RestartPolicy{Name: o.Restart.Name, MaximumRetryCount: o.Restart.MaximumRetryCount},
		Health:     o.Health,
		Resources:  backend.Resources{MemoryBytes: o.Resources.MemoryBytes, CPUs: o.Resources.CPUs, PidsLimit: o.Resources.PidsLimit},
		AutoRemove: o.AutoRemove,
		Init:       o.Init,
	}
}

func fromCreate(o backend.CreateOptions) api.CreateOptions {
	return api.CreateOptions{
		Name: o.Name, Image: o.Image, Rootfs: o.Rootfs, Cmd: o.Cmd, Env: o.Env, WorkingDir: o.WorkingDir,
		Labels: o.Labels, Tty: o.Tty, OpenStdin: o.OpenStdin,
		Restart:    api.RestartPolicy{Name: o.Restart.Name, MaximumRetryCount: o.Restart.MaximumRetryCount},
		Health:     o.Health,
		Resources:  api.Resources{MemoryBytes: o.Resources.MemoryBytes, CPUs: o.Resources.CPUs, PidsLimit: o.Resources.PidsLimit},
		AutoRemove: o.AutoRemove,
		Init:       o.Init,
	}
}

func fromContainer(c *backend.Container) *api.Container {
	if c == nil {
		return nil
	}
	return &api.Container{
		ID: c.ID, Name: c.Name, Created: c.Created, Config: fromCreate(c.Config), State: string(c.State),
		Pid: c.Pid, ExitCode: c.ExitCode, OOMKilled: c.OOMKilled, ExitReason: c.ExitReason,
		StartedAt: c.StartedAt, FinishedAt: c.FinishedAt, RestartCount: c.RestartCount,
		NextRestartAt: c.NextRestartAt, ManuallyStopped: c.ManuallyStopped, Error: c.Error,
		Health: c.Health, LogPath: c.LogPath,
	}
}

func fromEvent(e backend.Event) api.Event {
	return api.Event{Time: e.Time, Type: e.Type, ContainerID: e.ContainerID, Name: e.Name, Attributes: e.Attributes}
}

func fromImage(i backend.Image) api.Image {
	return api.Image{Ref: i.Ref, Digest: i.Digest, Size: i.Size, Created: i.Created}
}

func fromImages(is []backend.Image) []api.Image {
	out := make([]api.Image, 0, len(is))
	for _, i := range is {
		out = append(out, fromImage(i))
	}
	return out
}

func (e engine) Create(ctx context.Context, opts api.CreateOptions) (*api.Container, error) {
	c, err := e.be.Create(ctx, toCreate(opts))
	if err != nil {
		return nil, err
	}
	return fromContainer(c), nil
}

func (e engine) Start(ctx context.Context, ref string) error { return e.be.Start(ctx, ref) }

func (e engine) StartFromCheckpoint(ctx context.Context, ref, checkpoint string) error {
	return e.be.StartFromCheckpoint(ctx, ref, checkpoint)
}

func (e engine) CreateCheckpoint(ctx context.Context, ref, name string, leaveRunning bool) error {
	return e.be.CreateCheckpoint(ctx, ref, name, leaveRunning)
}

func (e engine) ListCheckpoints(ctx context.Context, ref string) ([]api.Checkpoint, error) {
	cps, err := e.be.ListCheckpoints(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := make([]api.Checkpoint, 0, len(cps))
	for _, cp := range cps {
		out = append(out, api.Checkpoint{Name: cp.Name, Created: cp.Created})
	}
	return out, nil
}

func (e engine) DeleteCheckpoint(ctx context.Context, ref, name string) error {
	return e.be.DeleteCheckpoint(ctx, ref, name)
}

func (e engine) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	return e.be.Stop(ctx, ref, timeout)
}

func (e engine) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	return e.be.Kill(ctx, ref, sig)
}

func (e engine) Restart(ctx context.Context, ref string, timeout *time.Duration) error {
	return e.be.Restart(ctx, ref, timeout)
}

func (e engine) Pause(ctx context.Context, ref string) error  { return e.be.Pause(ctx, ref) }
func (e engine) Resume(ctx context.Context, ref string) error { return e.be.Resume(ctx, ref) }

func (e engine) Remove(ctx context.Context, ref string, force bool) error {
	return e.be.Remove(ctx, ref, force)
}

func (e engine) Exec(ctx context.Context, ref string, opts server.ExecOptions) (server.Exec, error) {
	x, err := e.be.Exec(ctx, ref, backend.ExecOptions{
		Cmd: opts.Cmd, Env: opts.Env, WorkingDir: opts.WorkingDir, Tty: opts.Tty,
		Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
	})
	if err != nil {
		return nil, err
	}
	return x, nil
}

func (e engine) Inspect(ctx context.Context, ref string) (*api.Container, error) {
	c, err := e.be.Inspect(ctx, ref)
	if err != nil {
		return nil, err
	}
	return fromContainer(c), nil
}

func (e engine) List(ctx context.Context, opts api.ListOptions) ([]*api.Container, error) {
	cs, err := e.be.List(ctx, backend.ListOptions{All: opts.All, Filters: opts.Filters})
	if err != nil {
		return nil, err
	}
	out := make([]*api.Container, 0, len(cs))
	for _, c := range cs {
		out = append(out, fromContainer(c))
	}
	return out, nil
}

func (e engine) Wait(ctx context.Context, ref string, cond string) (int, error) {
	return e.be.Wait(ctx, ref, backend.WaitCondition(cond))
}

func (e engine) Logs(ctx context.Context, ref string, opts api.LogsOptions, fn func(api.LogEntry) error) error {
	return e.be.Logs(ctx, ref, backend.LogsOptions{Follow: opts.Follow, Tail: opts.Tail, Since: opts.Since}, func(en jsonlog.Entry) error {
		return fn(api.LogEntry{Log: en.Log, Stream: en.Stream, Time: en.Time})
	})
}

func (e engine) Attach(ctx context.Context, ref string, opts server.AttachOptions) (func(), error) {
	return e.be.Attach(ctx, ref, backend.AttachOptions{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr})
}

func (e engine) Resize(ctx context.Context, ref string, width, height uint32) error {
	return e.be.Resize(ctx, ref, width, height)
}

func (e engine) Events(ctx context.Context, since time.Time, filter func(api.Event) bool, fn func(api.Event) error) error {
	var f func(backend.Event) bool
	if filter != nil {
		f = func(ev backend.Event) bool { return filter(fromEvent(ev)) }
	}
	return e.be.Events(ctx, since, f, func(ev backend.Event) error { return fn(fromEvent(ev)) })
}

func (e engine) Stats(ctx context.Context, ref string) (*libcontainerd.Stats, error) {
	return e.be.Stats(ctx, ref)
}

func (e engine) Top(ctx context.Context, ref string) ([]api.TopProcess, error) {
	ps, err := e.be.Top(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := make([]api.TopProcess, 0, len(ps))
	for _, p := range ps {
		out = append(out, api.TopProcess{Pid: p.Pid, PPid: p.PPid, User: p.User, Command: p.Command})
	}
	return out, nil
}

func (e engine) ImportImage(ctx context.Context, r io.Reader) ([]api.Image, error) {
	is, err := e.be.ImportImage(ctx, r)
	if err != nil {
		return nil, err
	}
	return fromImages(is), nil
}

func (e engine) Images(ctx context.Context) ([]api.Image, error) {
	is, err := e.be.Images(ctx)
	if err != nil {
		return nil, err
	}
	return fromImages(is), nil
}

func (e engine) RemoveImage(ctx context.Context, ref string) error { return e.be.RemoveImage(ctx, ref) }

func (e engine) Info(ctx context.Context) (api.Info, error) {
	i, err := e.be.Info(ctx)
	if err != nil {
		return api.Info{}, err
	}
	return api.Info{
		ContainerdVersion: i.ContainerdVersion, Namespace: i.Namespace, Root: i.Root, Containers: i.Containers,
		Running: i.Running, Paused: i.Paused, Stopped: i.Stopped, Images: i.Images, LiveRestore: i.LiveRestore,
	}, nil
}
