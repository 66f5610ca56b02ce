package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/healthcheck/initprobe"
)

// flushHealth writes the records whose health log has results not yet
// persisted.
func (e *Engine) flushHealth() {
	type dirty struct {
		c    *container
		snap *snapshot
	}
	var todo []dirty
	for _, c := range e.containers() {
		c.mu.Lock()
		if c.healthDirty && !c.removed {
			c.healthDirty = false
			todo = append(todo, dirty{c, e.snapLocked(c)})
		}
		c.mu.Unlock()
	}
	for _, p := range todo {
		e.save(p.c, p.snap)
	}
}

// healthExecer runs probes through tend-init, or as exec processes.
type healthExecer struct{ e *Engine }

var _ healthcheck.Execer = healthExecer{}

// Start runs the probe through the container's tend-init when it has one
// (a fork in the container), else, or when tend-init does not answer (not
// listening yet, or a restored container from before), as a containerd exec:
// of tend-init's probe mode when the container has this engine's tend-init
// mounted (PID 1 or not), of the bare probe otherwise.
func (h healthExecer) Start(ctx context.Context, containerID string, argv []string, out io.Writer) (healthcheck.Process, error) {
	e := h.e
	e.mu.Lock()
	c := e.ctrs[containerID]
	e.mu.Unlock()
	var useInit bool
	var pid uint32
	if c != nil {
		c.mu.Lock()
		useInit = c.rec.Config.Init != nil && *c.rec.Config.Init && c.rec.State == StateRunning && !c.pending.checkpointing
		pid = c.rec.Pid
		if useInit {
			// Counted from before the connection, and with c.mu held so
			// that a checkpoint that set pending.checkpointing sees it:
			// it waits for the probe (CRIU cannot dump a connection to
			// the engine).
			e.mu.Lock()
			e.initProbes[containerID]++
			e.mu.Unlock()
		}
		c.mu.Unlock()
	}
	if c == nil {
		return nil, fmt.Errorf("No such container: %s: %w", containerID, errdefs.ErrNotFound)
	}
	if useInit {
		done := func() {
			e.mu.Lock()
			if e.initProbes[containerID]--; e.initProbes[containerID] <= 0 {
				delete(e.initProbes, containerID)
			}
			e.mu.Unlock()
		}
		opts := initprobe.StartOptions{ServerPid: int(pid)}
		lw, _ := out.(healthcheck.LimitedWriter)
		if lw != nil {
			opts.Limit = lw.Limit()
		}
		p, err := e.probeConns.Start(ctx, e.probeSocket(containerID), argv, out, opts)
		if err == nil {
			return &initProbe{p: p, out: lw, done: done}, nil
		}
		done()
		if !errdefs.IsUnavailable(err) || ctx.Err() != nil {
			return nil, err
		}
		e.log.WithError(err).WithField("container", containerID).Debug("tend-init does not serve probes: running this one as an exec")
	}
	// Guarded as tend-init guards the probes it runs: nothing the probe
	// starts outlives it, and nothing holds its output. Every container
	// with exec probes has tend-init mounted, PID 1 or not; one created
	// before that has not, and its probes run bare.
	guarded := e.mountsOwnInit(pid)
	if guarded {
		argv = initprobe.SubreaperArgv(argv)
	}
	x, err := e.exec(ctx, c, ExecOptions{Cmd: argv, Stdout: out, Stderr: out}, true)
	if err != nil {
		if e.stoppedUnder(c, pid) {
			err = fmt.Errorf("%w: %w", healthcheck.ErrContainerStopped, err)
		}
		return nil, err
	}
	return probeProcess{x: x, c: c, initPid: pid, subreaper: guarded}, nil
}

// stoppedUnder tells whether c stopped under a probe started while its
// init was pid: its exit is in hand or recorded, or its init has exited and
// the exit is on its way. A probe that failed then was cut by the exit.
func (e *Engine) stoppedUnder(c *container, pid uint32) bool {
	c.mu.Lock()
	stopped := c.exitTaken || c.rec.State != StateRunning || c.rec.Pid != pid
	c.mu.Unlock()
	return stopped || pid > 0 && e.initExited(int(pid))
}

// initProbe is a probe run by tend-init as a healthcheck.Process.
type initProbe struct {
	p    *initprobe.Probe
	out  healthcheck.LimitedWriter // nil: the writer does not count drops
	once sync.Once
	done func() // the probe is over (its connection closed)
}

// Wait returns once the probe ended: even when ctx ends first, the
// connection is closed by then, which kills the probe.
func (p *initProbe) Wait(ctx context.Context) (int, error) {
	code, err := p.p.Wait(ctx)
	p.once.Do(p.done)
	if errors.Is(err, initprobe.ErrInitExited) {
		err = fmt.Errorf("%w: %w", healthcheck.ErrContainerStopped, err)
	}
	if err == nil && p.out != nil {
		if n := p.p.Dropped(); n > 0 {
			p.out.Omitted(n)
		}
	}
	return code, err
}

// Kill has tend-init kill the probe's tree and session and reap them; its
// Wait returns after that.
func (p *initProbe) Kill() error { return p.p.Kill() }

// probeProcess is a probe's exec as a healthcheck.Process.
type probeProcess struct {
	x       *Exec
	c       *container
	initPid uint32 // the container's init on the host when the probe started
	// subreaper: the exec is tend-init's probe mode (SubreaperArgv), which
	// on SIGTERM kills and reaps all the probe started before it exits.
	subreaper bool
}

// subreaperKillTimeout bounds the wait for a probe's subreaper to clean up
// after a SIGTERM, before the kill falls back to the host-side tree kill.
const subreaperKillTimeout = 2 * time.Second

// Wait returns the exec's status. A probe that failed because its
// container's init exited under it (the runtime kills a container's
// processes with its init: 137) is no failure of the probe: the error then
// wraps healthcheck.ErrContainerStopped. The init is known gone from the
// host (the shim reaps it at once), while containerd still reports the task
// running until every exec exited, and the exit reaches the engine after
// the exec's.
func (p probeProcess) Wait(ctx context.Context) (int, error) {
	code, err := p.x.Wait(ctx)
	if (err != nil || code != 0) && ctx.Err() == nil && p.x.e.stoppedUnder(p.c, p.initPid) {
		return code, fmt.Errorf("%w: the probe ended with %d as its container's init exited", healthcheck.ErrContainerStopped, code)
	}
	return code, err
}

// Kill kills the probe. Under a subreaper it asks the subreaper, which
// kills and reaps everything below itself (all the probe started, whatever
// it did with sessions) and exits: killed from the host instead, its
// orphans' zombies would go to a PID 1 that may never reap them. Otherwise,
// or when the subreaper does not exit in time, it kills the probe's process
// tree from the host, which holds everything the subreaper adopted, then
// SIGKILLs the process through containerd in case the tree walk missed it.
func (p probeProcess) Kill() error {
	select {
	case <-p.x.done:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(p.x.e.ctx, opTimeout)
	defer cancel()
	if p.subreaper {
		// A SIGTERM before tend-init handles it kills it before it
		// started the probe: nothing is left then either.
		err := p.x.e.client.SignalProcess(ctx, p.x.ctrID, p.x.id, syscall.SIGTERM)
		if err != nil && (errdefs.IsFailedPrecondition(err) || errdefs.IsNotFound(err)) {
			return nil
		}
		l := p.x.e.log.WithField("container", p.x.ctrID)
		if err != nil {
			l.WithError(err).Warn("SIGTERM the probe's subreaper: killing its tree from the host")
		} else {
			t := time.NewTimer(subreaperKillTimeout)
			defer t.Stop()
			select {
			case <-p.x.done:
				return nil
			case <-t.C:
			}
			l.Warnf("probe subreaper did not exit within %v of SIGTERM: killing its tree from the host", subreaperKillTimeout)
		}
	}
	treeErr := healthcheck.KillTree(int(p.x.pid))
	if err := p.x.e.client.SignalProcess(ctx, p.x.ctrID, p.x.id, syscall.SIGKILL); err != nil && !errdefs.IsFailedPrecondition(err) && !errdefs.IsNotFound(err) {
		if treeErr != nil {
			return fmt.Errorf("kill probe %s: %w (and %v)", p.x.id, err, treeErr)
		}
	}
	return nil
}

// healthStartLocked registers c with the health scheduler when its task
// starts. fresh is true for a new task (the status starts over) and false
// for a re-attached one (the stored status is resumed).
func (e *Engine) healthStartLocked(c *container, fresh bool) {
	hc := c.rec.Config.Health
	if hc == nil {
		return
	}
	id := c.rec.ID
	if fresh {
		st := healthcheck.State{Status: healthcheck.StatusStarting}
		if c.rec.Health != nil {
			st.Log = c.rec.Health.Clone().Log
		}
		c.rec.Health = &st
	}
	if c.healthAdded {
		if fresh {
			e.health.Reset(id)
		} else {
			e.health.Resume(id)
		}
		return
	}
	var initial *healthcheck.State
	if c.rec.Health != nil {
		st := c.rec.Health.Clone()
		initial = &st
	}
	if err := e.health.Add(id, *hc, initial); err != nil {
		e.log.WithError(err).WithField("container", id).Warn("start health checks")
		return
	}
	c.healthAdded = true
}

// probeQuiesceTimeout bounds how long ending a task waits for its running
// probe to be killed and reaped; past it the task is ended anyway.
const probeQuiesceTimeout = 5 * time.Second

// quietProbes stops c's probes before the engine ends c's task itself, and
// waits for a running one to be cancelled, killed and reaped (its result is
// dropped): a probe starting or running in a task that is going away fails
// ("cannot exec into it") and would be logged and recorded as a failed
// check. The exit handling keeps them stopped; resumeProbes undoes this
// when the task lives on. c.mu must not be held: a result already computed
// may still be on its way to onHealth.
func (e *Engine) quietProbes(ctx context.Context, c *container) {
	c.mu.Lock()
	added := c.healthAdded
	c.mu.Unlock()
	if !added {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, probeQuiesceTimeout)
	defer cancel()
	if err := e.health.Quiesce(ctx, c.rec.ID); err != nil {
		e.log.WithError(err).WithField("container", c.rec.ID).Debug("end the task without waiting for its running probe")
	}
}

// resumeProbes resumes the probes that quietProbes stopped when ending the
// task failed with err and the task still runs. A task that is gone (not
// found, not running) has its exit on the way: its probes stay stopped.
func (e *Engine) resumeProbes(c *container, err error) {
	if err == nil || errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.healthAdded && !c.removed && c.rec.State == StateRunning {
		e.health.Resume(c.rec.ID)
	}
}

// onHealth receives every probe result: the state is recorded (and
// persisted, so it survives an engine restart), a status change is an event,
// and a change to unhealthy carries out the on-unhealthy action.
func (e *Engine) onHealth(id string, st healthcheck.State, changed bool) {
	e.mu.Lock()
	c := e.ctrs[id]
	e.mu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	if e.abandoned.Load() || c.removed {
		c.mu.Unlock()
		return
	}
	// Persist on a change of status or of the failing streak, not after
	// every probe: a write is two fsyncs, and a steady container's probes
	// would otherwise cost as much disk work as their exec. Close flushes
	// the latest log.
	persist := changed || c.rec.Health == nil || c.rec.Health.FailingStreak != st.FailingStreak
	c.rec.Health = &st
	c.healthDirty = !persist
	if changed {
		e.emitLocked(c, "health_status", map[string]string{"health_status": st.Status})
	}
	action := healthcheck.ActionNone
	if hc := c.rec.Config.Health; hc != nil && hc.OnUnhealthy != "" {
		action = hc.OnUnhealthy
	}
	act := changed && st.Status == healthcheck.StatusUnhealthy && action != healthcheck.ActionNone &&
		c.rec.State == StateRunning
	var snap *snapshot
	if persist {
		snap = e.snapLocked(c)
	}
	c.mu.Unlock()
	if snap != nil {
		e.save(c, snap)
	}
	if act {
		e.spawn(func() { e.healthAction(c, action) }) // not after Close
	}
}

// healthAction carries out the on-unhealthy action through the same
// machinery as an API call: stop is a manual stop; kill and restart kill the
// task and let the exit handling restart it (restart even under the "no"
// policy), with the reason "unhealthy".
func (e *Engine) healthAction(c *container, action healthcheck.Action) {
	c.mu.Lock()
	timeout := e.ownStopTimeoutLocked(c)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.ctx, timeout+opTimeout)
	defer cancel()
	lg := e.log.WithField("container", c.rec.ID).WithField("action", action)
	if action == healthcheck.ActionStop {
		c.op.Lock()
		defer c.op.Unlock()
		if err := e.stopLocked(ctx, c, timeout); err != nil {
			lg.WithError(err).Warn("on-unhealthy stop")
		}
		return
	}
	c.mu.Lock()
	if c.rec.State != StateRunning || c.rec.ManuallyStopped {
		c.mu.Unlock()
		return
	}
	cause := exitUnhealthyKill
	if action == healthcheck.ActionRestart {
		cause = exitUnhealthyRestart
	}
	c.pending.exit = cause
	c.mu.Unlock()
	e.quietProbes(ctx, c)
	if err := e.signal(ctx, c, syscall.SIGKILL); err != nil {
		e.resumeProbes(c, err)
		lg.WithError(err).Warn("on-unhealthy kill")
		c.mu.Lock()
		if c.pending.exit == cause {
			c.pending.exit = exitUnrequested
		}
		c.mu.Unlock()
	}
}
