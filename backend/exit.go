package backend

import (
	"context"
	"strconv"

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
		e.mu.Lock()
		c.oomSeen = true
		if !e.abandoned {
			e.emitLocked(c, "oom", nil)
		}
		e.mu.Unlock()
	}
	return nil
}

// handleExit records the exit of c's init process, deletes the task and
// applies the restart policy.
func (e *Engine) handleExit(ctx context.Context, c *container, info libcontainerd.EventInfo) {
	id := c.rec.ID
	e.mu.Lock()
	starting := c.starting
	e.mu.Unlock()
	if starting != nil {
		<-starting // the exit of a task whose start is still being recorded
	}
	e.mu.Lock()
	if e.abandoned {
		e.mu.Unlock()
		return
	}
	if info.Pid != 0 && c.rec.Pid != 0 && info.Pid != c.rec.Pid && c.taskLive {
		// The exit of a stale task, not of the current one.
		e.mu.Unlock()
		return
	}
	owed := c.taskLive
	c.taskLive = false
	tio := c.io
	c.io = nil
	e.mu.Unlock()

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	if _, _, err := e.client.DeleteTask(dctx, id); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) {
		e.log.WithError(err).WithField("container", id).Warn("delete the exited task")
	}
	if tio != nil {
		tio.finish()
	}
	if !owed {
		return
	}

	e.mu.Lock()
	if e.abandoned {
		e.mu.Unlock()
		return
	}
	now := e.clock.Now()
	c.exits++
	c.rec.Pid = 0
	c.rec.ExitCode = int(info.ExitCode)
	c.rec.OOMKilled = info.OOMKilled || c.oomSeen
	c.rec.FinishedAt = now
	c.rec.ExitReason = info.Reason
	unhealthy := c.unhealthyKill
	if unhealthy {
		c.rec.ExitReason = "unhealthy"
	}
	if c.checkpointExit {
		c.checkpointExit = false
		c.rec.ExitReason = exitReasonCheckpointed
	}
	e.emitLocked(c, "die", map[string]string{
		"exit_code":  strconv.Itoa(c.rec.ExitCode),
		"oom_killed": strconv.FormatBool(c.rec.OOMKilled),
		"reason":     c.rec.ExitReason,
	})
	if c.healthAdded {
		e.health.Pause(id)
	}
	x := exitInfo{
		exitCode: c.rec.ExitCode, oomKilled: c.rec.OOMKilled, manual: c.rec.ManuallyStopped,
		unhealthy: c.unhealthyRestart, restartCount: c.rec.RestartCount,
	}
	c.unhealthyKill, c.unhealthyRestart = false, false
	// A stop by a shutdown without live-restore is no failure to act on:
	// the next engine start applies restartOnBoot instead.
	shutdownStop := e.closed && !e.cfg.LiveRestore
	restart := c.rec.State != StateRemoving && !shutdownStop && shouldRestart(c.rec.Config.Restart, x)
	if restart {
		reason := "policy"
		if unhealthy {
			reason = "unhealthy"
		}
		c.rec.RestartCount++
		e.scheduleRestartLocked(c, now.Sub(c.rec.StartedAt), reason)
	} else if c.rec.State != StateRemoving {
		if err := transition(&c.rec, StateExited); err != nil {
			e.log.WithError(err).WithField("container", id).Warn("record exit")
		}
	}
	autoRemove := !restart && c.rec.Config.AutoRemove && !e.closed
	snap := e.snapLocked(c)
	e.notifyLocked(c)
	if autoRemove {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			rctx, cancel := context.WithTimeout(e.ctx, opTimeout)
			defer cancel()
			if err := e.Remove(rctx, id, true); err != nil && !errdefs.IsNotFound(err) {
				e.log.WithError(err).WithField("container", id).Warn("auto-remove")
			}
		}()
	}
	e.mu.Unlock()
	e.save(c, snap)
}
