package libcontainerd

import (
	"fmt"
	"io"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
)

// Pipes are the engine-side ends of a process's stdio FIFOs. A nil field is
// a stream the process does not have. Closing Stdin delivers EOF to the
// process.
type Pipes struct {
	Stdin          io.WriteCloser
	Stdout, Stderr io.ReadCloser
}

// StdioCallback attaches the engine to a process's stdio. The returned
// cio.IO owns pipes from then on: the Client waits for it and closes it when
// the process is deleted. When the callback fails, the Client closes pipes.
// See package io/attach for a ready implementation.
type StdioCallback func(cfg cio.Config, pipes Pipes) (cio.IO, error)

// CreateOption configures Create.
type CreateOption func(*createConfig) error

type createConfig struct {
	image       string
	snapshotter string
	runtime     string
	runtimeOpts any
	labels      map[string]string
	init        []string
	extra       []containerd.NewContainerOpts
	user        string
	entrypoint  []string // nil: the image's
}

// WithInit runs args in front of the container's command, once the image
// has supplied the command if the spec had none: an init process such as
// tend-init (`WithInit("/sbin/tend-init", "--")`), which the caller also
// mounts into the container through the spec. The spec itself is not
// modified.
func WithInit(args ...string) CreateOption {
	return func(c *createConfig) error {
		if len(args) == 0 || args[0] == "" {
			return fmt.Errorf("init: no command given: %w", errdefs.ErrInvalidArgument)
		}
		c.init = append([]string(nil), args...)
		return nil
	}
}

// WithImage takes the root filesystem from a snapshot of the named image
// (unpacked on demand) and applies the image's configuration as Docker
// does (containerd's oci.WithImageConfigArgs): the process runs the
// image's ENTRYPOINT followed by spec.Process.Args, or by the image's CMD
// when spec.Process.Args is empty; the environment is the image's
// overridden by the spec's variables, by name; the working directory is
// spec.Process.Cwd when set, the image's WORKDIR otherwise; the user is
// the image's USER unless WithUser names one.
func WithImage(ref string) CreateOption {
	return func(c *createConfig) error { c.image = ref; return nil }
}

// WithUser runs the container's process as user: "name", "uid",
// "uid:gid", "name:group" or "uid:group", resolved in the container's
// root filesystem (/etc/passwd, /etc/group) with the user's supplementary
// groups, as Docker's --user. A name the image does not know fails Create
// with ErrInvalidArgument. As in Docker, a process that does not run as
// uid 0 keeps its capabilities in the bounding set only.
func WithUser(user string) CreateOption {
	return func(c *createConfig) error { c.user = user; return nil }
}

// WithEntrypoint replaces the image's ENTRYPOINT with args (Docker's
// --entrypoint); the image's CMD is then not used either. No args, or one
// empty arg, clears the entrypoint: spec.Process.Args is the whole command.
func WithEntrypoint(args ...string) CreateOption {
	return func(c *createConfig) error {
		if len(args) == 1 && args[0] == "" {
			args = nil
		}
		c.entrypoint = append([]string{}, args...)
		return nil
	}
}

// WithSnapshotter names the snapshotter for WithImage (default "overlayfs").
func WithSnapshotter(name string) CreateOption {
	return func(c *createConfig) error { c.snapshotter = name; return nil }
}

// WithRuntime names the runtime and its options (default
// "io.containerd.runc.v2").
func WithRuntime(name string, options any) CreateOption {
	return func(c *createConfig) error { c.runtime, c.runtimeOpts = name, options; return nil }
}

// WithLabels sets the container's labels.
func WithLabels(labels map[string]string) CreateOption {
	return func(c *createConfig) error { c.labels = labels; return nil }
}

// WithContainerOpts passes containerd options through to NewContainer,
// after the ones Create derives itself.
func WithContainerOpts(opts ...containerd.NewContainerOpts) CreateOption {
	return func(c *createConfig) error { c.extra = append(c.extra, opts...); return nil }
}

// Each call has its own option type, so that an option a call does not use
// is a compile error rather than silently ignored. An option good for
// several calls has a type that implements each of their interfaces.

// StartOption configures Start.
type StartOption interface{ applyStart(*startConfig) }

// ExecOption configures Exec.
type ExecOption interface{ applyExec(*execConfig) }

// RestoreOption configures Restore.
type RestoreOption interface{ applyRestore(*restoreConfig) }

type startConfig struct {
	stdin           bool
	stdio           StdioCallback
	checkpointDir   string
	checkpointImage string
	checkpointWork  string
	taskOpts        []containerd.NewTaskOpts
}

type execConfig struct {
	stdin    bool
	terminal bool
	stdio    StdioCallback
}

type restoreConfig struct {
	stdio StdioCallback
}

// StdinOption is the option WithStdin returns; it configures Start and Exec.
type StdinOption bool

func (o StdinOption) applyStart(c *startConfig) { c.stdin = bool(o) }
func (o StdinOption) applyExec(c *execConfig)   { c.stdin = bool(o) }

// WithStdin gives the process a stdin FIFO. A restored task keeps the FIFOs
// it was started with, so Restore takes no WithStdin.
func WithStdin(on bool) StdinOption { return StdinOption(on) }

// ExecOptionFunc is an option that configures Exec only.
type ExecOptionFunc func(*execConfig)

func (f ExecOptionFunc) applyExec(c *execConfig) { f(c) }

// WithTerminal gives an exec process a terminal, as if spec.Terminal were
// true: its output arrives on the stdout pipe only. A container's init has a
// terminal when its spec says so, which is why Start takes no WithTerminal.
func WithTerminal(on bool) ExecOptionFunc {
	return func(c *execConfig) { c.terminal = c.terminal || on }
}

// StdioOption is the option WithStdio returns; it configures Start, Exec and
// Restore.
type StdioOption struct{ cb StdioCallback }

func (o StdioOption) applyStart(c *startConfig)     { c.stdio = o.cb }
func (o StdioOption) applyExec(c *execConfig)       { c.stdio = o.cb }
func (o StdioOption) applyRestore(c *restoreConfig) { c.stdio = o.cb }

// WithStdio attaches the engine to the process's stdio. Without it the
// output is read and discarded so the process never blocks on a full pipe.
func WithStdio(cb StdioCallback) StdioOption { return StdioOption{cb: cb} }

// StartOptionFunc is an option that configures Start only.
type StartOptionFunc func(*startConfig)

func (f StartOptionFunc) applyStart(c *startConfig) { f(c) }

// WithCheckpointDir makes Start restore the task from the CRIU checkpoint
// in dir (written by CreateCheckpoint) instead of running spec.Process
// afresh. The container may be the one checkpointed or a new one created
// with the same spec and image; its root filesystem is used as it is. A dir
// without a checkpoint fails with ErrNotFound, a restore CRIU refuses with
// ErrFailedPrecondition naming its log.
func WithCheckpointDir(dir string) StartOptionFunc {
	return func(c *startConfig) { c.checkpointDir = dir }
}

// WithCheckpointImage is WithCheckpointDir for a checkpoint image that
// CheckpointImage created; ErrNotFound when there is no such image.
func WithCheckpointImage(name string) StartOptionFunc {
	return func(c *startConfig) { c.checkpointImage = name }
}

// WithCheckpointWorkDir sets CRIU's work directory for a restore, where
// restore.log is written and kept. By default a temporary directory is
// used, removed when the restore succeeds.
func WithCheckpointWorkDir(dir string) StartOptionFunc {
	return func(c *startConfig) { c.checkpointWork = dir }
}

// WithTaskOpts passes containerd options through to NewTask.
func WithTaskOpts(opts ...containerd.NewTaskOpts) StartOptionFunc {
	return func(c *startConfig) { c.taskOpts = append(c.taskOpts, opts...) }
}
