package backend

import (
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/io/attach"
	"github.com/tendhq/tend/libcontainerd"
)

// ExecOptions describe a process to run in a running container. As with
// docker exec, the process runs with the container's environment, user,
// working directory and confinement: Env adds to the environment (by
// name, last wins), WorkingDir and User replace the container's. Any
// stream may be nil (output is then discarded). With Tty all output
// arrives on Stdout.
type ExecOptions struct {
	Cmd, Env   []string
	WorkingDir string
	User       string // "name", "uid", "uid:gid" or "name:group"
	Tty        bool
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
}

// Exec is a process started by Engine.Exec.
type Exec struct {
	e     *Engine
	ctrID string
	id    string
	pid   uint32
	probe bool
	done  chan struct{}
	once  sync.Once
	code  int
	err   error
}

// ID returns the exec id, unique within the engine.
func (x *Exec) ID() string { return x.id }

// Pid returns the host pid of the process.
func (x *Exec) Pid() uint32 { return x.pid }

// Wait returns the exit code once the process exited and its output was
// drained to the writers given to Exec, or ctx's error.
func (x *Exec) Wait(ctx context.Context) (int, error) {
	select {
	case <-x.done:
		return x.code, x.err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// Resize resizes the terminal of an exec started with Tty.
func (x *Exec) Resize(ctx context.Context, width, height uint32) error {
	return x.e.client.ResizeTerminal(ctx, x.ctrID, x.id, width, height)
}

func (x *Exec) finish(code int, err error) {
	x.once.Do(func() {
		x.code, x.err = code, err
		close(x.done)
	})
}

// Exec starts opts.Cmd in the running container ref and returns once it
// runs. A container that is not running is an errdefs.ErrFailedPrecondition.
func (e *Engine) Exec(ctx context.Context, ref string, opts ExecOptions) (*Exec, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return nil, err
	}
	return e.exec(ctx, c, opts, false)
}

func (e *Engine) exec(ctx context.Context, c *container, opts ExecOptions, probe bool) (_ *Exec, retErr error) {
	if len(opts.Cmd) == 0 || opts.Cmd[0] == "" {
		return nil, fmt.Errorf("exec: no command given: %w", errdefs.ErrInvalidArgument)
	}
	if opts.WorkingDir != "" && !path.IsAbs(opts.WorkingDir) {
		return nil, fmt.Errorf("exec: working directory %q: want an absolute path: %w", opts.WorkingDir, errdefs.ErrInvalidArgument)
	}
	c.mu.Lock()
	if e.closed.Load() {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if c.rec.State != StateRunning {
		s, name := c.rec.State, c.rec.Name
		c.mu.Unlock()
		// docker's messages for the same refusal.
		if s == StatePaused {
			return nil, fmt.Errorf("container %s is paused, unpause the container before exec: %w", name, errdefs.ErrFailedPrecondition)
		}
		return nil, fmt.Errorf("container %s is not running (%s): exec needs a running container: %w", name, s, errdefs.ErrFailedPrecondition)
	}
	if c.pending.checkpointing {
		name := c.rec.Name
		c.mu.Unlock()
		return nil, fmt.Errorf("container %s is being checkpointed: an exec started now would hang the dump: retry when the checkpoint is done: %w", name, errdefs.ErrFailedPrecondition)
	}
	id, exits := c.rec.ID, c.exits
	x := &Exec{e: e, ctrID: id, id: "exec-" + newID()[:24], probe: probe, done: make(chan struct{})}
	// Registered before it starts (the exit may come first) and with c.mu
	// still held, so a checkpoint that set pending.checkpointing sees it.
	e.mu.Lock()
	e.execs[x.id] = x
	e.mu.Unlock()
	c.mu.Unlock()
	defer func() {
		if retErr != nil {
			e.mu.Lock()
			delete(e.execs, x.id)
			e.mu.Unlock()
		}
	}()
	// An exec that fails because the container stopped meanwhile gets
	// the refusal above, not whatever containerd said.
	notRunning := func(err error) error {
		if !stoppedSince(c, exits) {
			return err
		}
		c.mu.Lock()
		s, name := c.rec.State, c.rec.Name
		c.mu.Unlock()
		return fmt.Errorf("container %s is not running (%s): exec needs a running container: %w", name, s, errdefs.ErrFailedPrecondition)
	}
	p, err := e.client.ProcessSpec(ctx, id, opts.User)
	if err != nil {
		return nil, notRunning(fmt.Errorf("exec in %s: %w", shortID(id), err))
	}
	p.Args = append([]string(nil), opts.Cmd...)
	p.Env = MergeEnv(p.Env, opts.Env)
	if opts.WorkingDir != "" {
		p.Cwd = opts.WorkingDir
	}
	p.Terminal = opts.Tty
	p.ConsoleSize = nil
	streams := attach.Streams{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr}
	cb := func(cfg cio.Config, pipes libcontainerd.Pipes) (cio.IO, error) {
		return attach.New(cfg, pipes.Stdin, pipes.Stdout, pipes.Stderr, streams), nil
	}
	pid, err := e.client.Exec(ctx, id, x.id, p, libcontainerd.WithStdin(opts.Stdin != nil), libcontainerd.WithTerminal(opts.Tty), libcontainerd.WithStdio(cb))
	if err != nil {
		return nil, notRunning(err)
	}
	x.pid = pid
	if !probe {
		c.mu.Lock()
		e.emitLocked(c, "exec_start", map[string]string{"execID": x.id, "command": strings.Join(opts.Cmd, " ")})
		c.mu.Unlock()
	}
	return x, nil
}

// execExited routes the exit of an exec process to its Exec.
func (e *Engine) execExited(c *container, info libcontainerd.EventInfo) {
	e.mu.Lock()
	x := e.execs[info.ProcessID]
	delete(e.execs, info.ProcessID)
	e.mu.Unlock()
	c.mu.Lock()
	if x != nil && !x.probe && !e.abandoned.Load() {
		e.emitLocked(c, "exec_die", map[string]string{"execID": x.id, "exitCode": strconv.Itoa(int(info.ExitCode))})
	}
	c.mu.Unlock()
	if x != nil {
		x.finish(int(info.ExitCode), nil)
	}
}
