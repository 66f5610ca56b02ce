package backend

// Restarts by policy, as Docker does: ParseRestartPolicy and shouldRestart
// decide whether an exit is followed by a restart (pure functions), Backoff
// computes the delay, and restartManager owns the pending restart of one
// container: its timer, its cancellation and its generation (moby's
// restartmanager).

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/healthcheck"
)

// validateRestartPolicy checks a policy that did not come from
// ParseRestartPolicy.
func validateRestartPolicy(p RestartPolicy) error {
	if err := CheckRestart(p); err != nil {
		return err
	}
	if p.MaximumRetryCount > 0 && p.Name != RestartOnFailure {
		return fmt.Errorf("invalid restart policy %+v: only on-failure takes a retry count: %w", p, errdefs.ErrInvalidArgument)
	}
	_, err := ParseRestartPolicy(p.Name)
	return err
}

// exitInfo is what a restart decision looks at.
type exitInfo struct {
	exitCode     int
	oomKilled    bool
	manual       bool // stopped or killed through the API
	unhealthy    bool // killed by the on-unhealthy "restart" action
	restartCount int  // restarts so far
}

// shouldRestart is the pure restart decision. A manual stop is never undone;
// always and unless-stopped restart on any exit; on-failure restarts on a
// non-zero exit or an OOM kill, at most MaximumRetryCount times (0:
// unlimited). A restart asked for by the on-unhealthy action happens under
// any policy but still counts toward on-failure's limit.
func shouldRestart(p RestartPolicy, x exitInfo) bool {
	if x.manual {
		return false
	}
	limited := p.Name == RestartOnFailure && p.MaximumRetryCount > 0 && x.restartCount >= p.MaximumRetryCount
	if x.unhealthy {
		return !limited
	}
	switch p.Name {
	case RestartAlways, RestartUnlessStopped:
		return true
	case RestartOnFailure:
		return (x.exitCode != 0 || x.oomKilled) && !limited
	default:
		return false
	}
}

// restartOnBoot reports whether a container that is stopped when the engine
// starts should be started: always does, unless-stopped does unless it was
// stopped by hand, and only containers that ran before.
func restartOnBoot(c *Container) bool {
	if c.StartedAt.IsZero() {
		return false
	}
	switch c.Config.Restart.Name {
	case RestartAlways:
		return true
	case RestartUnlessStopped:
		return !c.ManuallyStopped
	default:
		return false
	}
}

// Backoff configures the delay before each restart: Initial for the first,
// multiplied by Multiplier for each further one up to Max, back to Initial
// once the container ran for ResetAfter. Jitter (0..1) spreads each delay by
// up to that fraction either way. Zero fields take the defaults (Docker's):
// 100ms, 1m, 10s, x2, no jitter.
type Backoff struct {
	Initial, Max, ResetAfter time.Duration
	Multiplier, Jitter       float64
}

// Backoff defaults.
const (
	DefaultBackoffInitial    = 100 * time.Millisecond
	DefaultBackoffMax        = time.Minute
	DefaultBackoffResetAfter = 10 * time.Second
	DefaultBackoffMultiplier = 2
)

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.ResetAfter <= 0 {
		b.ResetAfter = DefaultBackoffResetAfter
	}
	if b.Multiplier < 1 {
		b.Multiplier = DefaultBackoffMultiplier
	}
	b.Jitter = min(max(b.Jitter, 0), 1)
	return b
}

// next returns the base delay of the next restart given the previous base
// delay (0: none yet) and how long the container ran, and the delay to
// actually wait: the base spread by jitter, with rnd uniform in [0,1).
func (b Backoff) next(prev, ran time.Duration, rnd float64) (base, wait time.Duration) {
	b = b.withDefaults()
	switch {
	case prev <= 0 || ran >= b.ResetAfter:
		base = b.Initial
	default:
		base = min(time.Duration(float64(prev)*b.Multiplier), b.Max)
	}
	wait = base
	if b.Jitter > 0 {
		wait = time.Duration(float64(base) * (1 + b.Jitter*(2*rnd-1)))
	}
	return base, max(wait, 0)
}

// restartManager owns the pending restart of one container: the timer, its
// cancellation and a generation that tells the current restart from one
// cancelled or replaced after its timer fired. It is guarded by its
// container's mu; its zero value has nothing pending.
type restartManager struct {
	gen   uint64            // bumped by every arm and cancel
	stop  chan struct{}     // closed to cancel the pending restart; nil when none
	timer healthcheck.Timer // of the pending restart
}

// arm replaces any pending restart by one that calls fire(gen) once wait
// has passed on clock, unless it is cancelled or done is closed first.
// spawn runs the goroutine that waits (its owner waits for it); when spawn
// refuses, nothing is pending and arm returns false.
func (m *restartManager) arm(clock healthcheck.Clock, wait time.Duration, done <-chan struct{}, spawn func(func()) bool, fire func(gen uint64)) bool {
	m.cancel()
	gen := m.gen
	stop := make(chan struct{})
	t := clock.NewTimer(wait)
	if !spawn(func() {
		defer t.Stop()
		select {
		case <-t.C():
			fire(gen)
		case <-stop:
		case <-done:
		}
	}) {
		t.Stop()
		return false
	}
	m.stop, m.timer = stop, t
	return true
}

// cancel cancels the pending restart, if any: its timer is stopped so that
// it cannot fire any more. A restart whose timer fired already finds, in
// take, that it was cancelled.
func (m *restartManager) cancel() {
	if m.stop != nil {
		m.timer.Stop()
		close(m.stop)
		m.stop, m.timer = nil, nil
	}
	m.gen++
}

// take claims the restart gen, whose timer fired, for carrying out: false
// when it was cancelled or replaced meanwhile.
func (m *restartManager) take(gen uint64) bool {
	if gen != m.gen {
		return false
	}
	m.stop, m.timer = nil, nil
	return true
}

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

// armRestartLocked starts the timer of c's pending restart, replacing any
// other. After Close the restart stays recorded for the next engine start.
func (e *Engine) armRestartLocked(c *container, wait time.Duration) {
	if e.closed.Load() {
		c.restart.cancel()
		return
	}
	c.restart.arm(e.clock, wait, e.done, e.spawn, func(gen uint64) { e.restartNow(c, gen) })
}

// cancelRestartLocked cancels c's pending restart, if any.
func (e *Engine) cancelRestartLocked(c *container) { c.restart.cancel() }

// restartNow carries out the pending restart gen of c; a failed start is
// retried with the next backoff delay.
func (e *Engine) restartNow(c *container, gen uint64) {
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	if c.rec.State != StateRestarting || e.closed.Load() || c.removed || !c.restart.take(gen) {
		c.mu.Unlock()
		return
	}
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
