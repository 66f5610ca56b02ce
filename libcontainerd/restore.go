package libcontainerd

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/io/fifoset"
)

func (c *client) Restore(ctx context.Context, id string, opts ...RestoreOption) (RestoreResult, error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return RestoreResult{}, err
	}
	var cfg restoreConfig
	for _, opt := range opts {
		opt.applyRestore(&cfg)
	}
	ct, err := c.container(ctx, id)
	if err != nil {
		return RestoreResult{}, err
	}
	// A task created but never started (a Start interrupted by the
	// engine's death) never ran: it is not alive and owes no exit.
	if t, err := ct.ctr.Task(ctx, nil); err == nil {
		if st, err := t.Status(ctx); err == nil && st.Status == containerd.Created {
			return RestoreResult{}, fmt.Errorf("restore %s: its task was created but never started (a start was interrupted): delete it with DeleteTask, then start the container: %w", id, errdefs.ErrFailedPrecondition)
		}
	}
	var (
		set         *fifoset.Set
		markStarted func(containerd.Process)
	)
	t, err := ct.ctr.Task(ctx, func(fs *cio.FIFOSet) (cio.IO, error) {
		set = fifoset.FromPaths(fs.Stdin, fs.Stdout, fs.Stderr, fs.Terminal)
		var create func() (cio.IO, error)
		create, markStarted = c.ioCreator(set, cfg.stdio)
		return create()
	})
	if err != nil {
		if errdefs.IsNotFound(err) {
			return RestoreResult{}, fmt.Errorf("restore %s: containerd has no task for it (it exited and was cleaned up, or never started): %w", id, errdefs.ErrNotFound)
		}
		return RestoreResult{}, fmt.Errorf("restore %s: %w", id, err)
	}
	st, err := t.Status(ctx)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore %s: status: %w", id, err)
	}
	if markStarted != nil {
		markStarted(t)
	}
	// A task that had stopped before the attach has no writer left on its
	// FIFOs: the shim closed them when the process's output ended, and a
	// reopened FIFO sees no writer again, so a drain would only wait out
	// ioDrainTimeout before the exit reaches the Backend.
	if pio, ok := t.IO().(*procIO); ok && st.Status == containerd.Stopped {
		pio.ended.Store(true)
	}
	pid := t.Pid()
	c.mu.Lock()
	ct.task, ct.oomSeen = t, false
	ct.procs[id] = &process{id: id, proc: t, fifos: set, pid: pid, live: true}
	gen := c.genCtx
	c.mu.Unlock()
	// The exit may have been published before we knew the process: a waiter
	// catches it either way, and the exactly-once check drops the double.
	c.waitExit(gen, id, id, t, pid)
	if st.Status == containerd.Stopped {
		return RestoreResult{Pid: pid, ExitCode: st.ExitStatus, ExitedAt: st.ExitTime}, nil
	}
	return RestoreResult{Alive: true, Pid: pid}, nil
}
