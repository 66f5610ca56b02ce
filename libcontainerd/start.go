package libcontainerd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/tendhq/tend/io/fifoset"
	"github.com/tendhq/tend/libcontainerd/internal/serving"
)

func (c *client) Start(ctx context.Context, id string, opts ...StartOption) (_ uint32, retErr error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return 0, err
	}
	var cfg startConfig
	for _, opt := range opts {
		opt.applyStart(&cfg)
	}
	ct, err := c.container(ctx, id)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	old := ct.task
	c.mu.Unlock()
	if old != nil {
		if _, err := old.Status(ctx); !errdefs.IsNotFound(err) {
			return 0, fmt.Errorf("start %s: the container already has a task: delete it with DeleteTask first: %w", id, errdefs.ErrFailedPrecondition)
		}
		// containerd lost the old task while it was down.
		c.forgetTask(ct, id, old, nil)
	}
	set, err := fifoset.New(c.fifoRoot, id, id, cfg.stdin, ct.terminal)
	if errdefs.IsAlreadyExists(err) {
		// FIFOs left by a task that was deleted behind our back: remove them
		// unless containerd still runs that task.
		if _, terr := ct.ctr.Task(ctx, nil); terr == nil {
			return 0, fmt.Errorf("start %s: containerd already has a task for it: Restore or DeleteTask it first: %w", id, errdefs.ErrFailedPrecondition)
		}
		if rerr := fifoset.RemoveContainer(c.fifoRoot, id); rerr != nil {
			return 0, fmt.Errorf("start %s: remove stale FIFOs: %w", id, rerr)
		}
		set, err = fifoset.New(c.fifoRoot, id, id, cfg.stdin, ct.terminal)
	}
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	keepFIFOs := false // the task may outlive a failed Start: Restore needs them
	defer func() {
		if retErr != nil && !keepFIFOs {
			set.Remove()
		}
	}()
	taskOpts := cfg.taskOpts
	restore, err := c.planRestore(ctx, id, &cfg)
	if err != nil {
		return 0, err
	}
	if restore != nil {
		defer func() { restore.done(retErr != nil) }()
		taskOpts = append(append([]containerd.NewTaskOpts{}, taskOpts...), restore.opts...)
	}
	create, markStarted := c.ioCreator(set, cfg.stdio)
	t, err := ct.ctr.NewTask(ctx, func(string) (cio.IO, error) { return create() }, taskOpts...)
	if errdefs.IsAlreadyExists(err) && c.removeHalfMadeTask(ctx, ct, id) {
		t, err = ct.ctr.NewTask(ctx, func(string) (cio.IO, error) { return create() }, taskOpts...)
	}
	if serr := c.staleBundleError(ctx, ct, id, err); serr != nil {
		return 0, fmt.Errorf("start %s: %w", id, serr)
	}
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return 0, fmt.Errorf("start %s: containerd already has a task for it: Restore or DeleteTask it first: %w", id, errdefs.ErrFailedPrecondition)
		}
		if restore != nil {
			return 0, restore.error(id, err)
		}
		return 0, fmt.Errorf("start %s: %w", id, classifyCommandError(err))
	}
	p := &process{id: id, proc: t, fifos: set, pid: t.Pid(), live: true}
	c.mu.Lock()
	ct.task, ct.oomSeen = t, false
	ct.procs[id] = p
	c.mu.Unlock()
	pio := t.IO().(*procIO) // made by create
	pio.hold()
	err = t.Start(ctx)
	if startInDoubt(err) && c.startedAnyway(ctx, t, errdefs.IsUnavailable(err)) {
		err = nil
	}
	pio.release(err != nil)
	if err != nil {
		c.mu.Lock()
		ct.task = nil
		delete(ct.procs, id)
		c.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, derr := t.Delete(cctx, containerd.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
			keepFIFOs = true
			c.log.WithError(derr).WithField("container", id).Warn("delete task after failed start; it may live on: Restore it")
		}
		if restore != nil {
			return 0, restore.error(id, err)
		}
		return 0, fmt.Errorf("start %s: %w", id, classifyCommandError(err))
	}
	markStarted(t)
	if restore != nil {
		// A restored task has its pid only once CRIU restored it.
		c.mu.Lock()
		p.pid = t.Pid()
		c.mu.Unlock()
	}
	return p.pid, nil
}

// startedAnyway finds out, once containerd answers, whether a task whose
// Start failed in doubt (startInDoubt) did start. It did if it runs or
// ran: then it is kept, and the reconcile after the reconnect delivers its
// exit. One that never started is started now.
//
// A task containerd no longer has started too: a Start that never reached
// the shim leaves the task created, its init (runc init) waiting in its
// cgroup, and containerd keeps such a shim when it comes back. containerd
// 1.7 and 2.x remove, as they load, a shim with no process left
// (containerd/containerd#6860): the task ran and exited while containerd was
// down. Taking it for one that never started would start the command again
// for a run nobody counts. Its exit is delivered as lost (the reconcile's
// waiter would too; the first report wins). Up to containerd 2.3 a shim
// whose pid query fails for any reason is removed as well
// (containerd/containerd#13784), killing what it runs: a task removed that
// way while still created is the one case counted as a run it was not.
//
// A task still created is started again only when retry is set (the Start
// failed because containerd went away, not because the caller gave up).
func (c *client) startedAnyway(ctx context.Context, t containerd.Task, retry bool) bool {
	// The caller's context may be what ended the Start: the questions
	// get their own time, as long as containerd takes to come back.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startDoubtTimeout)
	defer cancel()
	st, err := statusWhenBack(ctx, t)
	if errdefs.IsNotFound(err) {
		c.log.WithField("container", t.ID()).Info("containerd went away during Start and removed the task when it came back: it ran and exited")
		c.deliverExit(t.ID(), t.ID(), t.Pid(), ExitCodeUnknown, time.Now(), unknownExitReason)
		return true
	}
	if err != nil {
		c.log.WithError(err).WithField("container", t.ID()).Warn("containerd went away during Start and cannot say whether the task started: deleting it")
		return false
	}
	switch st.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing, containerd.Stopped:
		c.log.WithField("container", t.ID()).Info("containerd went away during Start, but the task started")
		return true
	case containerd.Created:
		if !retry {
			return false
		}
		// The retry, and the question after it, each get time of their
		// own: waiting for containerd's answer above may have used up
		// ctx, and a retry sent with almost none left can reach the shim
		// and run the command with its answer lost. Asked with no time
		// left, the question below would fail and the task that runs be
		// deleted, its run uncounted (seen once in the restart storm on a
		// starved machine).
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), startDoubtTimeout)
		defer rcancel()
		if t.Start(rctx) == nil {
			return true
		}
		// A Start whose answer was lost may still have reached the shim.
		qctx, qcancel := context.WithTimeout(context.WithoutCancel(ctx), startDoubtTimeout)
		defer qcancel()
		st, err := statusWhenBack(qctx, t)
		if err == nil && st.Status != containerd.Created && st.Status != containerd.Unknown && st.Status != "" {
			c.log.WithField("container", t.ID()).Info("a Start whose answer was lost started the task")
			return true
		}
		c.log.WithError(err).WithField("container", t.ID()).Warn("containerd went away during Start and the task did not start: deleting it")
	}
	return false
}

// startInDoubt reports whether a failed Start may still have started the
// task: containerd went away, or the call's context ended while it was in
// flight (the shim may have run the command without the answer coming
// back). Deleting such a task would kill a run nobody counts.
func startInDoubt(err error) bool {
	return err != nil && (errdefs.IsUnavailable(err) || errdefs.IsDeadlineExceeded(err) || errdefs.IsCanceled(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled))
}

// startDoubtTimeout bounds how long a Start in doubt waits for containerd
// to say whether the task started. The answer decides whether a run is
// counted, so it is not cut short by a fixed few seconds: containerd
// loading its shims on a starved machine took more than 10 s in the restart
// storm, and an answer given up on there left a run that ran uncounted.
// Close ends the wait (every call fails with ErrClosed).
const startDoubtTimeout = 2 * time.Minute

// statusWhenBack asks for the status of t until containerd answers, for as
// long as ctx allows: right after containerd went away calls fail at once
// (connection refused) until the connection notices, and a containerd that
// is loading may hold a call past its own deadline. Each question has
// cleanupTimeout; one that ran out is asked again while ctx lives. A task
// that did start must not be taken for one that did not.
func statusWhenBack(ctx context.Context, t containerd.Task) (st containerd.Status, err error) {
	serving.Wait(ctx, serving.Backoff{Min: statusPollInterval, Max: time.Second}, func(ctx context.Context) bool {
		qctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
		st, err = t.Status(qctx)
		cancel()
		noAnswer := errdefs.IsUnavailable(err) || errdefs.IsDeadlineExceeded(err) || errors.Is(err, context.DeadlineExceeded)
		return !noAnswer || ctx.Err() != nil
	})
	return st, err
}

// removeHalfMadeTask deletes a task left behind by a NewTask that
// containerd died during, and reports whether the id is free again. Such a
// task is in one of two states: containerd 1.6 says it exists when asked to
// create one but not when asked for it (the shim started, the task was never
// created), or it was created but never started (containerd died before
// NewTask returned). Start calls it only when the client has no task for the
// container, so nobody holds the stdio of a created task or will start it.
func (c *client) removeHalfMadeTask(ctx context.Context, ct *container, id string) bool {
	var err error
	t, terr := ct.ctr.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(terr):
		_, err = c.cc.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id})
		err = errgrpc.ToNative(err)
	case terr != nil:
		return false
	default:
		var created bool
		if created, err = deleteCreated(ctx, t); !created {
			return false
		}
	}
	if err != nil && !errdefs.IsNotFound(err) {
		c.log.WithError(err).WithField("container", id).Warn("delete half-made task")
		return false
	}
	c.log.WithField("container", id).Info("deleted a half-made task left by a containerd crash")
	return true
}
