package backend

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/healthcheck/initprobe"
	"github.com/tendhq/tend/io/attach"
	"github.com/tendhq/tend/io/fifoset"
	"github.com/tendhq/tend/libcontainerd"
)

// ExecOptions describe a process to run in a running container. Env adds to
// the container's environment; WorkingDir defaults to the container's. Any
// stream may be nil (output is then discarded). With Tty all output arrives
// on Stdout.
type ExecOptions struct {
	Cmd, Env   []string
	WorkingDir string
	Tty        bool
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
}

// Exec is a process started by Engine.Exec.
type Exec struct {
	e     *Engine
	ctrID string
	id    string
	pid   uint32
	probe bool
	done  chan struct{}
	once  sync.Once
	code  int
	err   error
}

// ID returns the exec id, unique within the engine.
func (x *Exec) ID() string { return x.id }

// Pid returns the host pid of the process.
func (x *Exec) Pid() uint32 { return x.pid }

// Wait returns the exit code once the process exited and its output was
// drained to the writers given to Exec, or ctx's error.
func (x *Exec) Wait(ctx context.Context) (int, error) {
	select {
	case <-x.done:
		return x.code, x.err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// Resize resizes the terminal of an exec started with Tty.
func (x *Exec) Resize(ctx context.Context, width, height uint32) error {
	return x.e.client.ResizeTerminal(ctx, x.ctrID, x.id, width, height)
}

func (x *Exec) finish(code int, err error) {
	x.once.Do(func() {
		x.code, x.err = code, err
		close(x.done)
	})
}

// Exec starts opts.Cmd in the running container ref and returns once it
// runs. A container that is not running is an errdefs.ErrFailedPrecondition.
func (e *Engine) Exec(ctx context.Context, ref string, opts ExecOptions) (*Exec, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return nil, err
	}
	return e.exec(ctx, c, opts, false)
}

func (e *Engine) exec(ctx context.Context, c *container, opts ExecOptions, probe bool) (_ *Exec, retErr error) {
	if len(opts.Cmd) == 0 || opts.Cmd[0] == "" {
		return nil, fmt.Errorf("exec: no command given: %w", errdefs.ErrInvalidArgument)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if c.rec.State != StateRunning {
		s, name := c.rec.State, c.rec.Name
		e.mu.Unlock()
		return nil, fmt.Errorf("container %s is %s: exec needs a running container: %w", name, s, errdefs.ErrFailedPrecondition)
	}
	if c.checkpointing {
		name := c.rec.Name
		e.mu.Unlock()
		return nil, fmt.Errorf("container %s is being checkpointed: an exec started now would hang the dump: retry when the checkpoint is done: %w", name, errdefs.ErrFailedPrecondition)
	}
	cfg := cloneRecord(c.rec).Config
	id := c.rec.ID
	x := &Exec{e: e, ctrID: id, id: "exec-" + newID()[:24], probe: probe, done: make(chan struct{})}
	e.execs[x.id] = x // before it starts: the exit may come first
	e.mu.Unlock()
	defer func() {
		if retErr != nil {
			e.mu.Lock()
			delete(e.execs, x.id)
			e.mu.Unlock()
		}
	}()
	cfg.Tty = false
	spec, err := e.buildSpec(id, &cfg)
	if err != nil {
		return nil, err
	}
	p := spec.Process
	p.Args = append([]string(nil), opts.Cmd...)
	p.Env = append(p.Env, opts.Env...)
	if opts.WorkingDir != "" {
		p.Cwd = opts.WorkingDir
	}
	p.Terminal = opts.Tty
	streams := attach.Streams{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr}
	cb := func(cfg cio.Config, pipes *fifoset.Pipes) (cio.IO, error) {
		return attach.New(cfg, pipes.Stdin, pipes.Stdout, pipes.Stderr, streams), nil
	}
	pid, err := e.client.Exec(ctx, id, x.id, p, libcontainerd.WithStdin(opts.Stdin != nil), libcontainerd.WithTerminal(opts.Tty), libcontainerd.WithStdio(cb))
	if err != nil {
		return nil, err
	}
	x.pid = pid
	if !probe {
		e.mu.Lock()
		e.emitLocked(c, "exec_start", map[string]string{"exec_id": x.id, "command": strings.Join(opts.Cmd, " ")})
		e.mu.Unlock()
	}
	return x, nil
}

// execExited routes the exit of an exec process to its Exec.
func (e *Engine) execExited(c *container, info libcontainerd.EventInfo) {
	e.mu.Lock()
	x := e.execs[info.ProcessID]
	delete(e.execs, info.ProcessID)
	if x != nil && !x.probe && !e.abandoned {
		e.emitLocked(c, "exec_die", map[string]string{"exec_id": x.id, "exit_code": strconv.Itoa(int(info.ExitCode))})
	}
	e.mu.Unlock()
	if x != nil {
		x.finish(int(info.ExitCode), nil)
	}
}

// --- health ----------------------------------------------------------------

// healthExecer runs probes through tend-init, or as exec processes.
type healthExecer struct{ e *Engine }

var _ healthcheck.Execer = healthExecer{}

// Start runs the probe through the container's tend-init when it has one
// (a fork in the container), else, or when tend-init does not answer (not
// listening yet, or a restored container from before), as a containerd exec.
func (h healthExecer) Start(ctx context.Context, containerID string, argv []string, out io.Writer) (healthcheck.Process, error) {
	e := h.e
	e.mu.Lock()
	c := e.ctrs[containerID]
	var hasInit, useInit bool
	var pid uint32
	if c != nil {
		hasInit = c.rec.Config.Init != nil && *c.rec.Config.Init
		useInit = hasInit && c.rec.State == StateRunning && !c.checkpointing
		pid = c.rec.Pid
	}
	if useInit {
		// Counted from before the connection: a checkpoint waits for it
		// (CRIU cannot dump a connection to the engine).
		e.initProbes[containerID]++
	}
	e.mu.Unlock()
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
		p, err := initprobe.Start(ctx, e.probeSocket(containerID), argv, out, opts)
		if err == nil {
			return &initProbe{p: p, out: lw, done: done}, nil
		}
		done()
		if !errdefs.IsUnavailable(err) || ctx.Err() != nil {
			return nil, err
		}
		e.log.WithError(err).WithField("container", containerID).Debug("tend-init does not serve probes: running this one as an exec")
	}
	if hasInit && e.runsOwnInit(pid) {
		// Guarded as tend-init guards the probes it runs: nothing the
		// probe starts outlives it, and nothing holds its output.
		argv = initprobe.SubreaperArgv(argv)
	}
	x, err := e.exec(ctx, c, ExecOptions{Cmd: argv, Stdout: out, Stderr: out}, true)
	if err != nil {
		return nil, err
	}
	return probeProcess{x}, nil
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
type probeProcess struct{ x *Exec }

func (p probeProcess) Wait(ctx context.Context) (int, error) { return p.x.Wait(ctx) }

// Kill kills the probe's process tree from the host, then SIGKILLs the
// process through containerd in case the tree walk missed it.
func (p probeProcess) Kill() error {
	select {
	case <-p.x.done:
		return nil
	default:
	}
	treeErr := healthcheck.KillTree(int(p.x.pid))
	ctx, cancel := context.WithTimeout(p.x.e.ctx, opTimeout)
	defer cancel()
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

// onHealth receives every probe result: the state is recorded (and
// persisted, so it survives an engine restart), a status change is an event,
// and a change to unhealthy carries out the on-unhealthy action.
func (e *Engine) onHealth(id string, st healthcheck.State, changed bool) {
	e.mu.Lock()
	c := e.ctrs[id]
	if c == nil || e.abandoned || c.removed {
		e.mu.Unlock()
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
		c.rec.State == StateRunning && !e.closed
	if act {
		e.wg.Add(1)
	}
	var snap *snapshot
	if persist {
		snap = e.snapLocked(c)
	}
	e.mu.Unlock()
	if snap != nil {
		e.save(c, snap)
	}
	if act {
		go func() {
			defer e.wg.Done()
			e.healthAction(c, action)
		}()
	}
}

// healthAction carries out the on-unhealthy action through the same
// machinery as an API call: stop is a manual stop; kill and restart kill the
// task and let the exit handling restart it (restart even under the "no"
// policy), with the reason "unhealthy".
func (e *Engine) healthAction(c *container, action healthcheck.Action) {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.StopTimeout+opTimeout)
	defer cancel()
	lg := e.log.WithField("container", c.rec.ID).WithField("action", action)
	if action == healthcheck.ActionStop {
		c.op.Lock()
		defer c.op.Unlock()
		if err := e.stopLocked(ctx, c, e.cfg.StopTimeout); err != nil {
			lg.WithError(err).Warn("on-unhealthy stop")
		}
		return
	}
	e.mu.Lock()
	if c.rec.State != StateRunning || c.rec.ManuallyStopped {
		e.mu.Unlock()
		return
	}
	c.unhealthyKill = true
	c.unhealthyRestart = action == healthcheck.ActionRestart
	e.mu.Unlock()
	if err := e.signal(ctx, c, syscall.SIGKILL); err != nil {
		lg.WithError(err).Warn("on-unhealthy kill")
		e.mu.Lock()
		c.unhealthyKill, c.unhealthyRestart = false, false
		e.mu.Unlock()
	}
}
