package libcontainerd

import (
	"context"
	"fmt"
	"syscall"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func (c *client) SignalProcess(ctx context.Context, id, processID string, sig syscall.Signal) error {
	ctx, p, err := c.processOf(ctx, id, processID)
	if err != nil {
		return err
	}
	if err := p.Kill(ctx, sig); err != nil {
		if errdefs.IsNotFound(err) || shimGone(err) {
			return fmt.Errorf("signal %v to %s/%s: the process is not running: %w", sig, id, processID, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("signal %v to %s/%s: %w", sig, id, processID, err)
	}
	return nil
}

func (c *client) ResizeTerminal(ctx context.Context, id, processID string, width, height uint32) error {
	ctx, p, err := c.processOf(ctx, id, processID)
	if err != nil {
		return err
	}
	if err := p.Resize(ctx, width, height); err != nil {
		return fmt.Errorf("resize terminal of %s/%s: %w", id, processID, err)
	}
	return nil
}

func (c *client) CloseStdin(ctx context.Context, id, processID string) error {
	ctx, p, err := c.processOf(ctx, id, processID)
	if err != nil {
		return err
	}
	// The shim passes EOF on only when every writer of the FIFO is gone:
	// the engine's end too.
	if pio, ok := p.IO().(*procIO); ok && pio.stdin != nil {
		pio.stdin.closeQuietly()
	}
	if err := p.CloseIO(ctx, containerd.WithStdinCloser); err != nil {
		return fmt.Errorf("close stdin of %s/%s: %w", id, processID, err)
	}
	return nil
}

func (c *client) Pause(ctx context.Context, id string) error { return c.freeze(ctx, id, true) }

func (c *client) Resume(ctx context.Context, id string) error { return c.freeze(ctx, id, false) }

// freeze pauses (or resumes) the container's task after checking that it
// runs (or is paused).
func (c *client) freeze(ctx context.Context, id string, pause bool) error {
	ctx, t, err := c.taskOf(ctx, id)
	if err != nil {
		return err
	}
	verb, want, do := "pause", containerd.Running, t.Pause
	if !pause {
		verb, want, do = "resume", containerd.Paused, t.Resume
	}
	if err := requireStatus(ctx, id, t, verb+" it", want); err != nil {
		return err
	}
	if err := do(ctx); err != nil {
		return fmt.Errorf("%s %s: %w", verb, id, err)
	}
	return nil
}

func (c *client) ListPids(ctx context.Context, id string) ([]uint32, error) {
	ctx, t, err := c.taskOf(ctx, id)
	if err != nil {
		return nil, err
	}
	infos, err := t.Pids(ctx)
	if err != nil {
		return nil, fmt.Errorf("pids of %s: %w", id, err)
	}
	pids := make([]uint32, 0, len(infos))
	for _, i := range infos {
		pids = append(pids, i.Pid)
	}
	return pids, nil
}

func (c *client) UpdateResources(ctx context.Context, id string, resources *specs.LinuxResources) error {
	if resources == nil {
		return fmt.Errorf("update %s: resources are nil: %w", id, errdefs.ErrInvalidArgument)
	}
	ctx, t, err := c.taskOf(ctx, id)
	if err != nil {
		return err
	}
	if err := t.Update(ctx, containerd.WithResources(resources)); err != nil {
		return fmt.Errorf("update resources of %s: %w", id, err)
	}
	return nil
}

func (c *client) Status(ctx context.Context, id string) (Status, error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return StatusUnknown, err
	}
	ct, err := c.container(ctx, id)
	if err != nil {
		return StatusUnknown, err
	}
	c.mu.Lock()
	t := ct.task
	c.mu.Unlock()
	if t == nil {
		// A task of an earlier run that was not restored yet still counts.
		if t, err = ct.ctr.Task(ctx, nil); err != nil {
			if errdefs.IsNotFound(err) {
				return StatusNoTask, nil
			}
			return StatusUnknown, fmt.Errorf("status of %s: %w", id, err)
		}
	}
	st, err := t.Status(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return StatusNoTask, nil
		}
		return StatusUnknown, fmt.Errorf("status of %s: %w", id, err)
	}
	return Status(st.Status), nil
}
