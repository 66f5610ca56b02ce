package backend

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/libcontainerd"
)

// Start starts a created or exited container (a running one is left alone,
// as Docker does). It clears a manual stop, the restart count and the
// backoff. A container with a pending restart is started now.
func (e *Engine) Start(ctx context.Context, ref string) error {
	c, err := e.lockContainer(ref)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	c.mu.Lock()
	switch s := c.rec.State; s {
	case StateRunning:
		c.mu.Unlock()
		return nil
	case StateCreated, StateExited, StateRestarting:
	default:
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s: cannot start it%s: %w", c.rec.Name, s, startHint(s), errdefs.ErrFailedPrecondition)
	}
	e.cancelRestartLocked(c)
	c.rec.ManuallyStopped = false
	c.rec.RestartCount = 0
	c.rec.RestartDelay = 0
	c.mu.Unlock()
	return e.startTask(ctx, c, "")
}

func startHint(s State) string {
	switch s {
	case StatePaused:
		return ": unpause it instead"
	case StateDead:
		return ": remove it"
	}
	return ""
}

// startTask starts a new task for c (whose previous task is deleted) and
// records it as running. c.op must be held. reason is "" for an API start,
// or why the engine starts it ("policy", "unhealthy", "boot").
func (e *Engine) startTask(ctx context.Context, c *container, reason string) error {
	return e.startTaskFrom(ctx, c, reason, nil)
}

// startTaskFrom is startTask restoring the task from a checkpoint when cp
// is not nil.
func (e *Engine) startTaskFrom(ctx context.Context, c *container, reason string, cp *restoreFrom) error {
	id := c.rec.ID
	starting := make(chan struct{})
	c.mu.Lock()
	if e.closed.Load() && reason != "boot" {
		c.mu.Unlock()
		return ErrClosed
	}
	c.taskLive, c.starting, c.oomSeen, c.noTask = true, starting, false, false
	c.mu.Unlock()
	e.clearExitRecord(id)
	opts := []libcontainerd.StartOption{libcontainerd.WithStdin(c.rec.Config.OpenStdin), libcontainerd.WithStdio(e.stdioCallback(c))}
	var startAttrs map[string]string
	if cp != nil {
		opts = append(opts, libcontainerd.WithCheckpointDir(cp.dir))
		startAttrs = map[string]string{"checkpoint": cp.name}
	}
	var pid uint32
	err := e.netUp(ctx, c)
	if err == nil {
		pid, err = e.startClientTask(ctx, id, opts...)
	}
	// A failed restore is no task in the way: recoverTask would start the
	// command afresh.
	if errdefs.IsFailedPrecondition(err) && cp == nil {
		if p, rerr := e.recoverTask(ctx, c); rerr == nil {
			pid, err = p, nil
		} else {
			err = fmt.Errorf("%w (recovering the task in the way: %v)", err, rerr)
		}
	}
	if err != nil {
		e.netDown(ctx, c)
	}
	// The exit handler of the new task waits for starting, which is
	// closed only once the start is on disk: an exit handled (its task
	// deleted, its exit record taken) before the record says running
	// would leave, to an engine that dies before the save, a record that
	// says restarting and nothing that shows the run happened.
	started := func() {
		c.mu.Lock()
		c.starting = nil
		close(starting)
		c.mu.Unlock()
	}
	defer started()
	c.mu.Lock()
	if err != nil {
		c.taskLive = false
		if c.io != nil {
			c.io.close()
			c.io = nil
		}
		c.rec.Error = err.Error()
		if code := libcontainerd.CommandExitCode(c.rec.Error); code != 0 {
			// As docker records it: the command never ran.
			c.rec.ExitCode = code
		}
		snap := e.snapLocked(c)
		e.notifyLocked(c)
		c.mu.Unlock()
		e.save(c, snap)
		return err
	}
	if terr := transition(&c.rec, StateRunning); terr != nil {
		// Only a concurrent removal can get here; the exit handler
		// cleans the task up.
		c.mu.Unlock()
		e.log.WithError(terr).WithField("container", id).Warn("started task of a container that changed state")
		return terr
	}
	c.rec.Pid = pid
	c.rec.StartedAt = e.clock.Now()
	c.rec.FinishedAt = time.Time{}
	c.rec.ExitCode, c.rec.OOMKilled, c.rec.ExitReason, c.rec.Error = 0, false, "", ""
	c.rec.NextRestartAt = time.Time{}
	e.emitLocked(c, "start", startAttrs)
	e.healthStartLocked(c, true)
	snap := e.snapLocked(c)
	e.notifyLocked(c)
	c.mu.Unlock()
	e.save(c, snap)
	return nil
}

// Stop stops a container: SIGTERM, then SIGKILL after timeout (nil: the
// engine's StopTimeout). The stop is manual: no restart policy undoes it. A
// pending restart is cancelled. Stopping a stopped container succeeds. A
// timeout out of range (see CheckStopTimeout) is errdefs.ErrInvalidArgument.
func (e *Engine) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	c, d, err := e.lockForStop(ref, timeout)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	return e.stopLocked(ctx, c, d)
}

// stopLocked stops c with c.op held.
func (e *Engine) stopLocked(ctx context.Context, c *container, timeout time.Duration) error {
	c.mu.Lock()
	switch c.rec.State {
	case StateRestarting:
		e.cancelRestartLocked(c)
		c.rec.ManuallyStopped = true
		c.rec.NextRestartAt = time.Time{}
		_ = transition(&c.rec, StateExited)
		e.emitLocked(c, "stop", nil)
		snap := e.snapLocked(c)
		e.notifyLocked(c)
		c.mu.Unlock()
		e.save(c, snap)
		return nil
	case StateRunning, StatePaused:
	default:
		c.mu.Unlock()
		return nil
	}
	c.rec.ManuallyStopped = true
	snap := e.snapLocked(c)
	c.mu.Unlock()
	e.save(c, snap) // a crash from here on still knows the stop was manual
	if err := e.stopTask(ctx, c, timeout); err != nil {
		return err
	}
	c.mu.Lock()
	e.emitLocked(c, "stop", nil)
	c.mu.Unlock()
	return nil
}

// stopTask signals c's task SIGTERM and, after timeout, SIGKILL, and waits
// until its exit is handled. A paused task is resumed so it can act on the
// signal.
func (e *Engine) stopTask(ctx context.Context, c *container, timeout time.Duration) (retErr error) {
	id := c.rec.ID
	c.mu.Lock()
	exits := c.exits
	paused := c.rec.State == StatePaused
	// Between two runs there is no task; the caller cancelled the restart.
	restarting := c.rec.State == StateRestarting
	c.mu.Unlock()
	if restarting {
		return nil
	}
	e.quietProbes(ctx, c)
	defer func() { e.resumeProbes(c, retErr) }()
	exited := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.exits > exits || !isActive(c.rec.State)
	}
	// A signal can find no process when the task just ended: its exit is
	// on its way. Or it finds the task's shim closing, which the exit
	// handler's deletion of the task shuts down before the exit is
	// recorded: stoppedSince tells.
	signalled := func(err error) error {
		if err == nil || exited() {
			return nil
		}
		if !stoppedSince(c, exits) && !errdefs.IsFailedPrecondition(err) && !errdefs.IsNotFound(err) {
			return err
		}
		return e.waitChange(ctx, c, exited, nil)
	}
	if err := signalled(e.signal(ctx, c, stopSignal(c))); err != nil {
		return err
	}
	if exited() {
		return nil
	}
	if paused {
		if err := e.client.Resume(ctx, id); err != nil && !errdefs.IsFailedPrecondition(err) {
			e.log.WithError(err).WithField("container", id).Warn("resume paused container to stop it")
		}
	}
	t := e.clock.NewTimer(timeout)
	defer t.Stop()
	if err := e.waitChange(ctx, c, exited, t.C()); err == nil {
		return nil
	} else if ctx.Err() != nil {
		return err
	}
	if err := signalled(e.signal(ctx, c, syscall.SIGKILL)); err != nil {
		return err
	}
	return e.waitChange(ctx, c, exited, nil)
}

// stopSignal is the first signal Stop sends c: its recorded stop signal,
// or SIGTERM.
func stopSignal(c *container) syscall.Signal {
	c.mu.Lock()
	name := c.rec.Config.StopSignal
	c.mu.Unlock()
	if name == "" {
		return syscall.SIGTERM
	}
	sig, err := ParseStopSignal(name)
	if err != nil {
		return syscall.SIGTERM
	}
	return sig
}

// signal sends sig to c's init process and emits a kill event.
func (e *Engine) signal(ctx context.Context, c *container, sig syscall.Signal) error {
	if err := e.client.SignalProcess(ctx, c.rec.ID, c.rec.ID, sig); err != nil {
		return err
	}
	c.mu.Lock()
	e.emitLocked(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	c.mu.Unlock()
	return nil
}

// terminating lists the signals after which an exit counts as a manual
// kill, never undone by a restart policy.
var terminating = map[syscall.Signal]bool{syscall.SIGKILL: true, syscall.SIGTERM: true, syscall.SIGINT: true, syscall.SIGQUIT: true}

// Kill sends sig to the container's main process. A terminating signal
// (KILL, TERM, INT, QUIT) makes the coming exit a manual one that no restart
// policy undoes. A container that is not running is an
// errdefs.ErrFailedPrecondition.
func (e *Engine) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	c, err := e.resolve(ref)
	if err != nil {
		return err
	}
	if err := CheckSignal(sig); err != nil {
		return err
	}
	c.mu.Lock()
	if !isActive(c.rec.State) {
		c.mu.Unlock()
		return fmt.Errorf("container %s is not running: %w", ref, errdefs.ErrFailedPrecondition)
	}
	exits := c.exits
	var snap *snapshot
	if terminating[sig] && !c.rec.ManuallyStopped {
		c.rec.ManuallyStopped = true
		snap = e.snapLocked(c)
	}
	c.mu.Unlock()
	e.save(c, snap)
	if sig == syscall.SIGKILL {
		e.quietProbes(ctx, c)
	}
	if err := e.signal(ctx, c, sig); err != nil {
		if stoppedSince(c, exits) || errdefs.IsFailedPrecondition(err) {
			return fmt.Errorf("container %s is not running: %w", ref, errdefs.ErrFailedPrecondition)
		}
		e.resumeProbes(c, err)
		return err
	}
	return nil
}

// stoppedSince tells whether c's task stopped after the caller read
// c.exits into exits: its exit is in the exit handler's hands (see
// stopTask) or recorded. A call to the task that failed meanwhile failed
// because the task went away, whatever error containerd gave.
func stoppedSince(c *container, exits int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exitTaken || c.exits > exits || !isActive(c.rec.State)
}

// stopTimeout is the caller's timeout (checked by CheckStopTimeout), else
// the engine's StopTimeout.
func (e *Engine) stopTimeout(timeout *time.Duration) time.Duration {
	if timeout == nil {
		return e.cfg.StopTimeout
	}
	return *timeout
}

// lockForStop checks a stop timeout, then locks the container (as
// lockContainer) and returns the timeout to use.
func (e *Engine) lockForStop(ref string, timeout *time.Duration) (*container, time.Duration, error) {
	if err := CheckStopTimeout(timeout); err != nil {
		return nil, 0, err
	}
	c, err := e.lockContainer(ref)
	if err != nil {
		return nil, 0, err
	}
	if timeout == nil {
		c.mu.Lock()
		d := e.ownStopTimeoutLocked(c)
		c.mu.Unlock()
		timeout = &d
	}
	return c, e.stopTimeout(timeout), nil
}

// ownStopTimeoutLocked is c's stop timeout when no caller gives one: its
// --stop-timeout (-1: wait for the exit), else the engine's StopTimeout.
// Every stop the engine starts by itself (on-unhealthy stop, shutdown
// without live-restore) uses it, as docker's daemon uses the container's.
// c.mu is held.
func (e *Engine) ownStopTimeoutLocked(c *container) time.Duration {
	switch t := c.rec.Config.StopTimeout; {
	case t == nil:
		return e.cfg.StopTimeout
	case *t < 0:
		return MaxTimeoutSeconds * time.Second
	default:
		return time.Duration(*t) * time.Second
	}
}

// Restart stops the container (as Stop, with timeout, checked as Stop does)
// and starts it again.
func (e *Engine) Restart(ctx context.Context, ref string, timeout *time.Duration) error {
	c, d, err := e.lockForStop(ref, timeout)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	if err := e.stopLocked(ctx, c, d); err != nil {
		return err
	}
	c.mu.Lock()
	if c.removed {
		c.mu.Unlock()
		return fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	switch c.rec.State {
	case StateCreated, StateExited:
	default:
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s: cannot restart it: %w", ref, c.rec.State, errdefs.ErrFailedPrecondition)
	}
	c.rec.ManuallyStopped = false
	c.rec.RestartCount, c.rec.RestartDelay = 0, 0
	e.emitLocked(c, "restart", map[string]string{"restart_count": "0", "reason": "manual"})
	c.mu.Unlock()
	return e.startTask(ctx, c, "")
}

// Pause freezes a running container.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	return e.pauseResume(ctx, ref, true)
}

// Resume thaws a paused container.
func (e *Engine) Resume(ctx context.Context, ref string) error {
	return e.pauseResume(ctx, ref, false)
}

func (e *Engine) pauseResume(ctx context.Context, ref string, pause bool) error {
	c, err := e.lockContainer(ref)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	from, to, what, ev := StateRunning, StatePaused, "pause", "pause"
	if !pause {
		from, to, what, ev = StatePaused, StateRunning, "unpause", "unpause"
	}
	c.mu.Lock()
	if c.rec.State != from {
		s := c.rec.State
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s: cannot %s it (it must be %s): %w", ref, s, what, from, errdefs.ErrFailedPrecondition)
	}
	exits := c.exits
	c.mu.Unlock()
	if pause {
		err = e.client.Pause(ctx, c.rec.ID)
	} else {
		err = e.client.Resume(ctx, c.rec.ID)
	}
	if err != nil {
		if stoppedSince(c, exits) {
			return fmt.Errorf("container %s is not running: cannot %s it: %w", ref, what, errdefs.ErrFailedPrecondition)
		}
		return err
	}
	c.mu.Lock()
	if err := transition(&c.rec, to); err != nil {
		c.mu.Unlock()
		return err // it exited meanwhile
	}
	if c.healthAdded {
		if pause {
			e.health.Pause(c.rec.ID)
		} else {
			e.health.Resume(c.rec.ID)
		}
	}
	e.emitLocked(c, ev, nil)
	snap := e.snapLocked(c)
	e.notifyLocked(c)
	c.mu.Unlock()
	e.save(c, snap)
	return nil
}

// Remove deletes a container, its record and its log. A running or paused
// container is refused with errdefs.ErrFailedPrecondition unless force, which
// kills it first. A pending restart is cancelled for good.
func (e *Engine) Remove(ctx context.Context, ref string, force bool) error {
	return e.RemoveContainer(ctx, ref, RemoveOptions{Force: force})
}

// RemoveContainer is Remove with docker's options: opts.Volumes also
// removes the container's anonymous volumes (docker rm -v).
func (e *Engine) RemoveContainer(ctx context.Context, ref string, opts RemoveOptions) error {
	force := opts.Force
	c, err := e.lockContainer(ref)
	if err != nil {
		return err
	}
	defer c.op.Unlock()
	c.mu.Lock()
	e.cancelRestartLocked(c)
	active := isActive(c.rec.State)
	if active && !force {
		s := c.rec.State
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s: stop it before removing it, or force the removal: %w", ref, s, errdefs.ErrFailedPrecondition)
	}
	if active {
		c.rec.ManuallyStopped = true
	}
	c.mu.Unlock()
	if active {
		if err := e.stopTask(ctx, c, 0); err != nil {
			return fmt.Errorf("remove %s: kill it: %w", ref, err)
		}
	}
	c.mu.Lock()
	if err := transition(&c.rec, StateRemoving); err != nil {
		c.mu.Unlock()
		return err
	}
	snap := e.snapLocked(c)
	c.mu.Unlock()
	e.save(c, snap)
	if err := e.finishRemove(ctx, c); err != nil {
		return err
	}
	if opts.Volumes {
		e.removeAnonymousVolumes(c.rec.Mounts)
	}
	return nil
}

// finishRemove deletes a container in state removing from containerd, the
// engine and the disk. On failure the container becomes dead.
func (e *Engine) finishRemove(ctx context.Context, c *container) error {
	id := c.rec.ID
	e.health.Remove(id)
	e.probeConns.Drop(e.probeSocket(id))
	defer e.netDown(ctx, c) // a dead or created container may hold one
	// The exit handler deletes the exited task, but may have failed to
	// (containerd slow or restarting): a task left would block the delete.
	// Asking containerd costs two calls when there is none, as after
	// every clean exit: only a task the engine does not know is gone is
	// looked for.
	c.mu.Lock()
	noTask := c.noTask
	c.mu.Unlock()
	if !noTask {
		if _, _, err := e.client.DeleteTask(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			e.log.WithError(err).WithField("container", id).Debug("remove: delete the task")
		}
	}
	if err := e.client.Delete(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		c.mu.Lock()
		_ = transition(&c.rec, StateDead)
		c.rec.Error = "remove: " + err.Error()
		snap := e.snapLocked(c)
		e.notifyLocked(c)
		c.mu.Unlock()
		e.save(c, snap)
		return err
	}
	c.mu.Lock()
	c.removed = true
	c.healthAdded = false
	e.mu.Lock()
	delete(e.ctrs, id)
	if e.names[c.rec.Name] == id {
		delete(e.names, c.rec.Name)
	}
	e.mu.Unlock()
	c.attachs.closeAll()
	e.emitLocked(c, "destroy", nil)
	e.notifyLocked(c)
	c.mu.Unlock()
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.logw.Close()
	e.releaseVolumes(id, c.rec.Mounts)
	return e.store.remove(id)
}
