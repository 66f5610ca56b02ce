package backend

import (
	"context"
	mrand "math/rand/v2"
	"strconv"
	"time"
)

// scheduleRestartLocked moves c to restarting and arms the backoff timer.
func (e *Engine) scheduleRestartLocked(c *container, ran time.Duration, reason string) {
	base, wait := e.backoff.next(c.rec.RestartDelay, ran, mrand.Float64())
	c.rec.RestartDelay = base
	c.rec.NextRestartAt = e.clock.Now().Add(wait)
	if err := transition(&c.rec, StateRestarting); err != nil {
		e.log.WithError(err).WithField("container", c.rec.ID).Warn("schedule restart")
		return
	}
	e.emitLocked(c, "restart", map[string]string{
		"restart_count":   strconv.Itoa(c.rec.RestartCount),
		"reason":          reason,
		"next_restart_at": c.rec.NextRestartAt.UTC().Format(time.RFC3339Nano),
	})
	e.armRestartLocked(c, wait)
}

// armRestartLocked starts the timer of c's pending restart. After Close the
// restart stays recorded for the next engine start.
func (e *Engine) armRestartLocked(c *container, wait time.Duration) {
	e.cancelRestartLocked(c)
	if e.closed.Load() {
		return
	}
	c.restartGen++
	gen := c.restartGen
	cancel := make(chan struct{})
	t := e.clock.NewTimer(wait)
	if !e.spawn(func() {
		defer t.Stop()
		select {
		case <-t.C():
			e.restartNow(c, gen)
		case <-cancel:
		case <-e.done:
		}
	}) {
		t.Stop()
		return
	}
	c.restartCancel = cancel
}

// cancelRestartLocked cancels c's pending restart, if any.
func (e *Engine) cancelRestartLocked(c *container) {
	if c.restartCancel != nil {
		close(c.restartCancel)
		c.restartCancel = nil
	}
	c.restartGen++
}

// restartNow carries out the pending restart gen of c; a failed start is
// retried with the next backoff delay.
func (e *Engine) restartNow(c *container, gen uint64) {
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	if c.restartGen != gen || c.rec.State != StateRestarting || e.closed.Load() || c.removed {
		c.mu.Unlock()
		return
	}
	c.restartCancel = nil
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.ctx, opTimeout)
	defer cancel()
	err := e.startTask(ctx, c, "policy")
	if err == nil {
		return
	}
	e.log.WithError(err).WithField("container", c.rec.ID).Warn("restart failed; retrying after backoff")
	c.mu.Lock()
	if c.rec.State == StateRestarting && !e.closed.Load() {
		base, wait := e.backoff.next(c.rec.RestartDelay, 0, mrand.Float64())
		c.rec.RestartDelay = base
		c.rec.NextRestartAt = e.clock.Now().Add(wait)
		e.armRestartLocked(c, wait)
	}
	snap := e.snapLocked(c)
	e.notifyLocked(c)
	c.mu.Unlock()
	e.save(c, snap)
}
