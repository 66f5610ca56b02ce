package backend

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/io/fifoset"
	"github.com/tendhq/tend/io/jsonlog"
	"github.com/tendhq/tend/libcontainerd"
)

// adopt turns a loaded record into engine state, opening its log.
func (e *Engine) adopt(r *Container) (*container, error) {
	r.LogPath = filepath.Join(e.store.containerDir(r.ID), logFile)
	w, err := jsonlog.Open(r.LogPath, jsonlog.Options{})
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if other, ok := e.names[r.Name]; ok || r.Name == "" {
		w.Close()
		return nil, fmt.Errorf("name %q is empty or also used by container %s", r.Name, other)
	}
	return &container{rec: *r, changed: make(chan struct{}), logw: w, attachs: newAttachSet()}, nil
}

// boot reconciles every loaded record with containerd (see New).
func (e *Engine) boot(ctx context.Context) {
	for _, c := range e.containers() {
		c.op.Lock()
		e.bootOne(ctx, c)
		c.op.Unlock()
	}
}

func (e *Engine) bootOne(ctx context.Context, c *container) {
	id := c.rec.ID
	lg := e.log.WithField("container", id)
	c.mu.Lock()
	state, finished := c.rec.State, c.rec.FinishedAt
	c.mu.Unlock()
	if state == StateRemoving {
		if err := e.finishRemove(ctx, c); err != nil {
			lg.WithError(err).Warn("finish the removal of a container")
		}
		return
	}
	st, err := e.client.Status(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			c.mu.Lock()
			if state != StateDead {
				_ = transition(&c.rec, StateDead)
				c.rec.Error = "containerd no longer has this container: remove it"
				c.rec.Pid = 0
			}
			snap := e.snapLocked(c)
			c.mu.Unlock()
			e.save(c, snap)
			return
		}
		lg.WithError(err).Error("cannot read the task status; leaving the record as it is")
		return
	}
	if st == libcontainerd.StatusCreated {
		// The engine died inside a start, between creating the task and
		// starting it: the task never ran. Without it, the container is
		// where its record says.
		if _, _, err := e.client.DeleteTask(ctx, id); err != nil {
			lg.WithError(err).Warn("delete a task that was created but never started")
		} else {
			st = libcontainerd.StatusNoTask
		}
	}
	if st == libcontainerd.StatusNoTask {
		switch state {
		case StateRunning, StatePaused:
			// The task died while no engine watched, and containerd
			// dropped it: its exit status is lost.
			c.mu.Lock()
			c.taskLive = true
			c.mu.Unlock()
			e.handleExit(ctx, c, libcontainerd.EventInfo{ContainerID: id, ProcessID: id, ExitCode: libcontainerd.ExitCodeUnknown, ExitedAt: e.clock.Now(), Reason: unknownExitReason})
		case StateRestarting:
			if e.hasExitRecordAfter(id, finished) {
				// The engine died inside the start it had cleared the
				// record for, and the run it began has ended since:
				// its exit is owed, or the run goes uncounted.
				lg.Info("a start the engine did not record ran and exited while it was down")
				c.mu.Lock()
				c.taskLive = true
				c.mu.Unlock()
				e.handleExit(ctx, c, libcontainerd.EventInfo{ContainerID: id, ProcessID: id, ExitCode: libcontainerd.ExitCodeUnknown, ExitedAt: e.clock.Now(), Reason: unknownExitReason})
				return
			}
			c.mu.Lock()
			wait := max(c.rec.NextRestartAt.Sub(e.clock.Now()), 0)
			e.armRestartLocked(c, wait)
			c.mu.Unlock()
		case StateCreated, StateExited:
			c.mu.Lock()
			boot := restartOnBoot(&c.rec)
			if boot {
				c.rec.ManuallyStopped = false
			}
			c.mu.Unlock()
			if boot {
				if err := e.startTask(ctx, c, "boot"); err != nil {
					lg.WithError(err).Warn("start container at engine start")
				}
			}
		}
		return
	}
	// containerd has a task: re-attach to it.
	owed := state == StateRunning || state == StatePaused || state == StateRestarting
	starting := make(chan struct{})
	c.mu.Lock()
	c.taskLive, c.starting = owed, starting
	c.mu.Unlock()
	res, err := e.client.Restore(ctx, id, libcontainerd.WithStdio(e.stdioCallback(c)))
	c.mu.Lock()
	switch {
	case err != nil:
		c.taskLive = false
		c.rec.Error = "re-attach after engine restart: " + err.Error()
		lg.WithError(err).Error("cannot re-attach to the container's task")
	case res.Alive:
		c.taskLive = true
		if st == libcontainerd.StatusPaused || st == libcontainerd.StatusPausing {
			if c.rec.State != StatePaused {
				_ = transition(&c.rec, StateRunning)
				_ = transition(&c.rec, StatePaused)
			}
		} else if c.rec.State != StateRunning {
			// The engine died between starting the task and recording it.
			_ = transition(&c.rec, StateRunning)
			c.rec.StartedAt = e.clock.Now()
		}
		c.rec.Pid = res.Pid
		c.rec.NextRestartAt = time.Time{}
		e.healthStartLocked(c, false)
		if c.rec.State == StatePaused {
			e.health.Pause(id)
		}
	case state == StateRestarting && !res.ExitedAt.IsZero() && !c.rec.FinishedAt.IsZero() && !res.ExitedAt.After(c.rec.FinishedAt):
		// The exit the record counts already: the engine recorded it but
		// could not delete the task (containerd 1.6 keeps a stopped task
		// across its restarts). Counting it again would count one run
		// twice; the exit handler only deletes the task.
		lg.WithField("exited_at", res.ExitedAt).Info("the stopped task left is the exit already recorded")
		c.taskLive = false
	default:
		// Stopped: the exit is delivered through processEvent; when no
		// exit was owed (the record already shows one) it only deletes
		// the task.
	}
	exits := c.exits
	waitExit := err == nil && !res.Alive && c.taskLive
	snap := e.snapLocked(c)
	e.notifyLocked(c)
	c.mu.Unlock()
	e.save(c, snap)
	// The exit handler waits for the record above to be on disk (see
	// startTaskFrom).
	c.mu.Lock()
	c.starting = nil
	close(starting)
	c.mu.Unlock()
	if waitExit {
		// The task died while no engine watched: New returns only once
		// its exit is recorded, so that no caller sees the container
		// running with a dead pid.
		t := time.NewTimer(opTimeout)
		defer t.Stop()
		recorded := func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.exits != exits
		}
		if err := e.waitChange(ctx, c, recorded, t.C); err != nil {
			lg.WithError(err).Warn("the exit of a task that stopped while the engine was down is not recorded yet")
		}
	}
}

// recoverTask handles a task that is in the way of a new start: one whose
// delete failed while containerd was down, or one that containerd started
// although the start call failed (containerd died during it). A stopped
// task is deleted and the start retried; a live one is adopted (its stdio
// re-attached) as the container's new task. It returns the pid of the task
// the container now has.
func (e *Engine) recoverTask(ctx context.Context, c *container) (uint32, error) {
	id := c.rec.ID
	start := func() (uint32, error) {
		return e.startClientTask(ctx, id, libcontainerd.WithStdin(c.rec.Config.OpenStdin), libcontainerd.WithStdio(e.stdioCallback(c)))
	}
	st, err := e.client.Status(ctx, id)
	if err != nil {
		return 0, err
	}
	switch st {
	case libcontainerd.StatusNoTask:
		return start()
	case libcontainerd.StatusStopped, libcontainerd.StatusCreated:
		if _, _, err := e.client.DeleteTask(ctx, id); err == nil {
			return start()
		}
	}
	// A failed start may have removed the task's FIFO directory while the
	// task lived on: recreate it so the re-attach can open (fresh) FIFOs.
	if _, err := fifoset.New(filepath.Join(e.cfg.Root, "fifo"), id, id, false, false); err != nil && !errdefs.IsAlreadyExists(err) {
		e.log.WithError(err).WithField("container", id).Debug("recreate the FIFO directory of a task in the way")
	}
	// The client does not know the task: attach to it. A live task is
	// adopted; a stopped one's exit is delivered (and handled as the exit
	// of the container's current task).
	res, err := e.client.Restore(ctx, id, libcontainerd.WithStdio(e.stdioCallback(c)))
	if err != nil {
		return 0, err
	}
	e.log.WithField("container", id).WithField("alive", res.Alive).Info("adopted a task left by an interrupted start")
	return res.Pid, nil
}
