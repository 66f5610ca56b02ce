package libcontainerd

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/io/fifoset"
)

// deleteUnstarted deletes a task the client does not know when it was
// created but never started: it never ran, so no output or exit is owed.
// Any other task the client does not know fails with unknown, the error
// task gave for it.
func (c *client) deleteUnstarted(ctx context.Context, ct *container, id string, unknown error) error {
	t, err := ct.ctr.Task(ctx, nil)
	if err != nil {
		return unknown
	}
	created, err := deleteCreated(ctx, t)
	switch {
	case !created:
		return unknown
	case err != nil:
		return fmt.Errorf("delete the never-started task of %s: %w", id, err)
	}
	c.log.WithField("container", id).Info("deleted a task that was created but never started")
	return nil
}

// deleteCreated deletes t, killing its init, when t was created but never
// started, and reports whether it was such a task.
func deleteCreated(ctx context.Context, t containerd.Task) (bool, error) {
	st, err := t.Status(ctx)
	if err != nil || st.Status != containerd.Created {
		return false, nil
	}
	if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return true, err
	}
	return true, nil
}

func (c *client) DeleteTask(ctx context.Context, id string) (uint32, time.Time, error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	ct, t, err := c.task(ctx, id)
	if errdefs.IsFailedPrecondition(err) && ct != nil {
		return 0, time.Time{}, c.deleteUnstarted(ctx, ct, id, err)
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	// A task whose init's exit containerd reported is stopped: asking
	// again would cost a call to containerd and the shim on every exit.
	c.mu.Lock()
	p := ct.procs[id]
	exited := p != nil && p.proc == t && !p.live && !p.exit.at.IsZero()
	c.mu.Unlock()
	if !exited {
		st, err := t.Status(ctx)
		switch {
		case errdefs.IsNotFound(err):
			// containerd lost the task (it was down while the task ended):
			// there is nothing to delete, but the exit is still owed.
			code, at := c.forgetTask(ct, id, t, nil)
			return code, at, nil
		case err != nil:
			return 0, time.Time{}, fmt.Errorf("status of container %s: %w", id, err)
		case st.Status != containerd.Stopped && st.Status != containerd.Created:
			return 0, time.Time{}, fmt.Errorf("container %s is %s: cannot delete its task (stop it first): %w", id, st.Status, errdefs.ErrFailedPrecondition)
		}
		exited = st.Status == containerd.Stopped
	}
	if exited {
		drainIO(t.IO())
	}
	exit, err := t.Delete(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return 0, time.Time{}, fmt.Errorf("delete task of %s: %w", id, err)
	}
	code, at := c.forgetTask(ct, id, t, exit)
	return code, at, nil
}

// forgetTask drops a deleted or lost task: it delivers the init's exit if
// it is still owed (unknown status when st is nil), and removes the FIFOs.
func (c *client) forgetTask(ct *container, id string, t containerd.Task, st *containerd.ExitStatus) (uint32, time.Time) {
	code, at, reason := uint32(ExitCodeUnknown), time.Now(), unknownExitReason
	if st != nil {
		code, at, reason = st.ExitCode(), st.ExitTime(), ""
	} else if pio := t.IO(); pio != nil {
		pio.Close()
	}
	c.mu.Lock()
	p := ct.procs[id]
	var pid uint32
	if p != nil {
		pid = p.pid
		if st == nil && !p.live && !p.exit.at.IsZero() {
			// containerd lost the task after its exit reached the
			// Backend (it was down when the task was deleted): the
			// delivered status is the real one, not an unknown.
			code, at = p.exit.code, p.exit.at
		}
	}
	c.mu.Unlock()
	// Deleting must not swallow an exit the stream has not delivered yet.
	c.deliverExit(id, id, pid, code, at, reason)
	c.mu.Lock()
	if ct.task == t {
		ct.task = nil
		for pid, p := range ct.procs {
			if !p.live {
				delete(ct.procs, pid)
			}
		}
	}
	c.mu.Unlock()
	if p != nil && p.fifos != nil {
		if err := p.fifos.Remove(); err != nil {
			c.log.WithError(err).WithField("container", id).Warn("remove stdio FIFOs")
		}
	}
	return code, at
}

func (c *client) Delete(ctx context.Context, id string) error {
	ctx, err := c.enter(ctx)
	if err != nil {
		return err
	}
	ct, err := c.container(ctx, id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	hasTask := ct.task != nil
	c.mu.Unlock()
	if hasTask {
		return fmt.Errorf("delete %s: the container has a task: stop it and DeleteTask first: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err := ct.ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		if errdefs.IsFailedPrecondition(err) {
			return fmt.Errorf("delete %s: containerd still has a task for it: Restore and stop it first: %w", id, err)
		}
		return fmt.Errorf("delete %s: %w", id, err)
	}
	c.mu.Lock()
	delete(c.containers, id)
	c.mu.Unlock()
	if err := fifoset.RemoveContainer(c.fifoRoot, id); err != nil {
		c.log.WithError(err).WithField("container", id).Warn("remove stdio FIFO dir")
	}
	return nil
}
