package server

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/libcontainerd"
)

// Engine is what the daemon serves: exactly the calls of *backend.Engine
// that the API exposes, with backend's own types (package api aliases
// them), so *backend.Engine serves most of them as is; the daemon adapts
// the few that differ. Tests use fakes.
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
	Wait(ctx context.Context, ref string, cond api.WaitCondition) (int, error)
	Logs(ctx context.Context, ref string, opts api.LogsOptions, fn func(api.LogRecord) error) error
	Attach(ctx context.Context, ref string, opts AttachOptions) (detach func(), err error)
	Resize(ctx context.Context, ref string, width, height uint32) error
	Events(ctx context.Context, since time.Time, filter func(api.Event) bool, fn func(api.Event) error) error
	Stats(ctx context.Context, ref string) (*libcontainerd.Stats, error)
	Top(ctx context.Context, ref string) ([]api.TopProcess, error)
	ImportImage(ctx context.Context, r io.Reader) ([]api.Image, error)
	Images(ctx context.Context) ([]api.Image, error)
	RemoveImage(ctx context.Context, ref string) error
	// registry and image archives
	PullImage(ctx context.Context, ref string, opts backend.PullOptions, progress backend.ProgressFunc) (api.Image, error)
	PushImage(ctx context.Context, ref string, opts backend.PushOptions, progress backend.ProgressFunc) error
	TagImage(ctx context.Context, src, dst string) (string, error)
	InspectImage(ctx context.Context, ref string) (*api.ImageInspect, error)
	PruneImages(ctx context.Context, all bool) (api.PruneReport, error)
	SaveImages(ctx context.Context, refs []string, w io.Writer) error
	LoadImages(ctx context.Context, r io.Reader, progress backend.ProgressFunc) ([]api.Image, error)
	Login(ctx context.Context, server, user, secret string) error
	Info(ctx context.Context) (api.Info, error)
	// Mounts and volumes.
	RemoveContainer(ctx context.Context, ref string, opts api.RemoveOptions) error
	CreateVolume(ctx context.Context, req api.VolumeCreateRequest) (*api.Volume, error)
	Volumes(ctx context.Context) ([]api.Volume, error)
	InspectVolume(ctx context.Context, name string) (*api.Volume, error)
	RemoveVolume(ctx context.Context, name string, force bool) error
	PruneVolumes(ctx context.Context, all bool) (api.VolumePruneReport, error)

	// The docker CLI's everyday commands.
	Size(ctx context.Context, ref string) (backend.Usage, error)
	Rename(ctx context.Context, ref, newName string) error
	Update(ctx context.Context, ref string, opts api.UpdateOptions) error
	Prune(ctx context.Context, filters map[string][]string) (api.ContainerPruneReport, error)
	ArchivePath(ctx context.Context, ref, path string, w io.Writer) (api.PathStat, error)
	ExtractToDir(ctx context.Context, ref, dir string, r io.Reader) error
	Diff(ctx context.Context, ref string) ([]api.Change, error)
	Export(ctx context.Context, ref string, w io.Writer) error
	// StatPath serves the Docker API's HEAD /containers/{id}/archive.
	StatPath(ctx context.Context, ref, path string) (api.PathStat, error)
}

// ExecOptions say what to run and where its stdio goes.
type ExecOptions = backend.ExecOptions

// Exec is a started exec process, as *backend.Exec.
type Exec interface {
	ID() string
	Pid() uint32
	// Wait returns the exit code once the output is drained.
	Wait(ctx context.Context) (int, error)
	Resize(ctx context.Context, width, height uint32) error
}

// AttachOptions say where a container's stdio goes.
type AttachOptions = backend.AttachOptions
