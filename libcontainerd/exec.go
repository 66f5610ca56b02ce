package libcontainerd

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/io/fifoset"
)

func (c *client) Exec(ctx context.Context, id, execID string, spec *specs.Process, opts ...ExecOption) (_ uint32, retErr error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return 0, err
	}
	if err := ValidateID(execID); err != nil {
		return 0, fmt.Errorf("exec id: %w", err)
	}
	if spec == nil || len(spec.Args) == 0 {
		return 0, fmt.Errorf("exec %s in %s: no command: set spec.Args: %w", execID, id, errdefs.ErrInvalidArgument)
	}
	var cfg execConfig
	for _, opt := range opts {
		opt.applyExec(&cfg)
	}
	if cfg.terminal && !spec.Terminal {
		p := *spec
		p.Terminal = true
		spec = &p
	}
	ct, t, err := c.task(ctx, id)
	if err != nil {
		return 0, err
	}
	if err := requireStatus(ctx, id, t, "exec into it", containerd.Running); err != nil {
		return 0, err
	}
	p := &process{id: execID, live: true}
	c.mu.Lock()
	if ct.procs[execID] != nil {
		c.mu.Unlock()
		return 0, fmt.Errorf("exec %s in %s: the exec id is in use: %w", execID, id, errdefs.ErrAlreadyExists)
	}
	ct.procs[execID] = p // reserves the id; the exit may arrive before Start returns
	c.mu.Unlock()
	defer func() {
		if retErr != nil {
			c.mu.Lock()
			delete(ct.procs, execID)
			c.mu.Unlock()
		}
	}()
	set, err := fifoset.New(c.fifoRoot, id, execID, cfg.stdin, spec.Terminal)
	if err != nil {
		return 0, fmt.Errorf("exec %s in %s: %w", execID, id, err)
	}
	p.fifos = set
	defer func() {
		if retErr != nil {
			set.Remove()
		}
	}()
	create, markStarted := c.ioCreator(set, cfg.stdio)
	proc, err := t.Exec(ctx, execID, spec, func(string) (cio.IO, error) { return create() })
	if err != nil {
		return 0, fmt.Errorf("exec %s in %s: %w", execID, id, classifyCommandError(err))
	}
	c.mu.Lock()
	p.proc = proc
	c.mu.Unlock()
	if err := proc.Start(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, derr := proc.Delete(cctx, containerd.WithProcessKill); derr != nil {
			c.log.WithError(derr).WithField("container", id).WithField("exec", execID).Warn("delete exec after failed start")
		}
		return 0, fmt.Errorf("exec %s in %s: %w", execID, id, classifyCommandError(err))
	}
	markStarted(proc)
	pid := proc.Pid()
	c.mu.Lock()
	p.pid = pid
	c.mu.Unlock()
	return pid, nil
}
