package backend

import (
	"context"
	"strconv"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/libcontainerd"
)

// processEvent is the libcontainerd Backend: it runs on the client's serial
// queue of the container.
func (e *Engine) processEvent(ctx context.Context, id string, et libcontainerd.EventType, info libcontainerd.EventInfo) error {
	e.mu.Lock()
	c := e.ctrs[id]
	e.mu.Unlock()
	if c == nil {
		return nil
	}
	switch et {
	case libcontainerd.EventExit:
		if info.ProcessID != "" && info.ProcessID != id {
			e.execExited(c, info)
			return nil
		}
		e.handleExit(ctx, c, info)
	case libcontainerd.EventOOM:
		c.mu.Lock()
		c.oomSeen = true
		if !e.abandoned.Load() {
			e.emitLocked(c, "oom", nil)
		}
		c.mu.Unlock()
	}
	return nil
}

// handleExit records the exit of c's init process, deletes the task and
// applies the restart policy.
func (e *Engine) handleExit(ctx context.Context, c *container, info libcontainerd.EventInfo) {
	id := c.rec.ID
	c.mu.Lock()
	starting := c.starting
	c.mu.Unlock()
	if starting != nil {
		<-starting // the exit of a task whose start is still being recorded
	}
	c.mu.Lock()
	if e.abandoned.Load() {
		c.mu.Unlock()
		return
	}
	if info.Pid != 0 && c.rec.Pid != 0 && info.Pid != c.rec.Pid && c.taskLive {
		// The exit of a stale task, not of the current one.
		c.mu.Unlock()
		return
	}
	owed := c.taskLive
	c.taskLive = false
	c.exitTaken = owed
	tio := c.io
	c.io = nil
	c.mu.Unlock()

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	if _, _, err := e.client.DeleteTask(dctx, id); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) {
		e.log.WithError(err).WithField("container", id).Warn("delete the exited task")
	} else if err == nil || errdefs.IsNotFound(err) {
		c.mu.Lock()
		c.noTask = !c.taskLive && c.starting == nil
		c.mu.Unlock()
	}
	if tio != nil {
		tio.finish()
	}
	e.probeConns.Drop(e.probeSocket(id)) // its tend-init is gone
	if !owed {
		return
	}
	e.netDown(ctx, c) // before a restart can ask for a new one
	info = withExitRecord(info, e.takeExitRecord(id))

	c.mu.Lock()
	if e.abandoned.Load() {
		c.mu.Unlock()
		return
	}
	finished := exitTime(info.ExitedAt, c.rec.StartedAt, e.clock.Now())
	c.exits++
	c.exitTaken = false
	c.rec.Pid = 0
	c.rec.ExitCode = int(info.ExitCode)
	c.rec.OOMKilled = info.OOMKilled || c.oomSeen
	c.rec.FinishedAt = finished
	c.rec.ExitReason = info.Reason
	cause := c.pending.exit
	c.pending.exit = exitUnrequested
	unhealthy := cause.unhealthy()
	switch {
	case unhealthy:
		c.rec.ExitReason = "unhealthy"
	case cause == exitCheckpoint:
		c.rec.ExitReason = exitReasonCheckpointed
	}
	e.emitAtLocked(c, finished, "die", map[string]string{
		"exitCode":   strconv.Itoa(c.rec.ExitCode),
		"oom_killed": strconv.FormatBool(c.rec.OOMKilled),
		"reason":     c.rec.ExitReason,
	})
	if c.healthAdded {
		e.health.Pause(id)
	}
	x := exitInfo{
		exitCode: c.rec.ExitCode, oomKilled: c.rec.OOMKilled, manual: c.rec.ManuallyStopped,
		unhealthy: cause == exitUnhealthyRestart, restartCount: c.rec.RestartCount,
	}
	// A stop by a shutdown without live-restore is no failure to act on:
	// the next engine start applies restartOnBoot instead.
	shutdownStop := e.closed.Load() && !e.cfg.LiveRestore
	restart := c.rec.State != StateRemoving && !shutdownStop && shouldRestart(c.rec.Config.Restart, x)
	if restart {
		reason := "policy"
		if unhealthy {
			reason = "unhealthy"
		}
		c.rec.RestartCount++
		e.scheduleRestartLocked(c, finished.Sub(c.rec.StartedAt), reason)
	} else if c.rec.State != StateRemoving {
		if err := transition(&c.rec, StateExited); err != nil {
			e.log.WithError(err).WithField("container", id).Warn("record exit")
		}
	}
	snap := e.snapLocked(c)
	e.notifyLocked(c)
	if !restart && c.rec.Config.AutoRemove {
		// Not after Close (spawn refuses then).
		e.spawn(func() {
			rctx, cancel := context.WithTimeout(e.ctx, opTimeout)
			defer cancel()
			// As docker's --rm, with the container's anonymous volumes.
			if err := e.RemoveContainer(rctx, id, RemoveOptions{Force: true, Volumes: true}); err != nil && !errdefs.IsNotFound(err) {
				e.log.WithError(err).WithField("container", id).Warn("auto-remove")
			}
		})
	}
	c.mu.Unlock()
	e.save(c, snap)
}

// exitTime is the FinishedAt of an exit: the time the process exited, as
// containerd (or the init) saw it, not the time the engine handled the exit,
// which may be much later (a drain, a containerd restart, an engine that was
// down). Without a time of its own (a lost exit) it is now. A fast process can
// exit before its start is recorded: the exit is then no earlier than the
// start, so that FinishedAt - StartedAt is never negative.
func exitTime(exitedAt, startedAt, now time.Time) time.Time {
	switch {
	case exitedAt.IsZero() || exitedAt.After(now):
		return now
	case exitedAt.Before(startedAt):
		return startedAt
	}
	return exitedAt
}
