// Package supervisor runs a private containerd daemon, as dockerd does: its
// own root, state, sockets and configuration under one directory, so that it
// never touches the system containerd or its paths (except those containerd
// hard-codes under /run/containerd, which is why every user of a private
// daemon also needs its own namespace).
//
// Start writes the configuration, starts containerd and returns once it
// serves. The Daemon owns containerd's state dir: before each (re)start it
// removes task bundles a killed containerd left behind and would never
// clean up, and RemoveStaleTaskBundle removes one that a task start ran
// into (libcontainerd.StaleBundleError). With Config.Supervise the Daemon restarts containerd with capped
// backoff whenever it dies without being asked to. Stop ends supervision and
// the process; Kill simulates a crash; Restart is a graceful Stop and start.
//
// A Daemon is safe for concurrent use; its lifecycle operations are
// serialised. The supervising goroutine belongs to the Daemon and ends in
// Stop. There is no useful zero Daemon: use Start.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/tendhq/tend/internal/pdeath"
	until "github.com/tendhq/tend/libcontainerd/internal/serving"
)

const (
	// serveTimeout bounds how long a start waits for containerd to serve.
	serveTimeout = 20 * time.Second
	// pollInterval is how often a start asks containerd whether it serves.
	pollInterval = 50 * time.Millisecond
	// minBackoff and maxBackoff cap the delay between supervised restarts.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// stableAfter is how long containerd must have run for the backoff to
	// start again from minBackoff.
	stableAfter = 10 * time.Second
	// logTail is how much of containerd's output errors quote.
	logTail = 4096
	// outputWaitDelay bounds how long waiting for containerd waits for its
	// output to be copied once it has exited (see exec.Cmd.WaitDelay).
	outputWaitDelay = 2 * time.Second
)

// ErrStopped is returned by operations on a Daemon that has been stopped.
var ErrStopped = fmt.Errorf("containerd daemon was stopped: start a new one with Start: %w", errdefs.ErrFailedPrecondition)

// Config says how to run containerd.
type Config struct {
	// Binary is the containerd binary; default "containerd", looked up in PATH.
	Binary string
	// Root is required. It is created 0700 and holds root/ (containerd
	// --root), state/ (--state), containerd.sock, containerd.sock.ttrpc,
	// config.toml and containerd.log. Keep it short: unix socket paths are
	// limited to 108 bytes.
	Root string
	// LogLevel is containerd's log level; default "info".
	LogLevel string
	// ExtraPath lists directories prepended to containerd's PATH (for
	// example a private criu wrapper); shims and runc inherit it.
	ExtraPath []string
	// Supervise restarts containerd, with backoff from 100ms up to 5s, when
	// it dies without Stop or Restart having asked it to; Kill counts as a
	// crash.
	Supervise bool
	// Output receives containerd's stdout and stderr; default
	// Root/containerd.log (0600), appended to.
	Output io.Writer
}

// Daemon is a running private containerd.
type Daemon struct {
	cfg     Config
	binary  string
	address string
	cfgPath string
	logPath string // "" when Config.Output is set
	out     io.Writer
	tail    *tailBuffer // nil when logPath is used
	logFile *os.File    // owned default output, closed by Stop

	// opMu serialises lifecycle operations: starts, stops, kills.
	opMu sync.Mutex

	mu      sync.Mutex
	proc    *process
	changed chan struct{} // closed and replaced whenever proc changes
	stopped bool

	stopCh   chan struct{} // closed when Stop begins: ends supervision
	stopOnce sync.Once
	supDone  chan struct{} // closed when the supervising goroutine returned
	done     chan struct{} // closed when Stop finished
	stopErr  error
}

// process is one run of containerd.
type process struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed once cmd.Wait returned
	waitErr error         // set before exited is closed
	// intended is set before containerd is stopped on purpose, so the
	// supervisor does not restart it.
	intended atomic.Bool
}

// Start writes Root/config.toml, starts containerd and waits until it serves
// (at most 20s, or until ctx ends). With cfg.Supervise it keeps containerd
// running until Stop.
func Start(ctx context.Context, cfg Config) (_ *Daemon, retErr error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("supervisor: Config.Root is empty: give a private directory for containerd's root, state and sockets: %w", errdefs.ErrInvalidArgument)
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("supervisor: invalid Config.Root %q: %v: %w", cfg.Root, err, errdefs.ErrInvalidArgument)
	}
	cfg.Root = root
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	d := &Daemon{
		cfg:     cfg,
		address: filepath.Join(root, "containerd.sock"),
		cfgPath: filepath.Join(root, "config.toml"),
		changed: make(chan struct{}),
		stopCh:  make(chan struct{}),
		supDone: make(chan struct{}),
		done:    make(chan struct{}),
	}
	// sockaddr_un.sun_path is 108 bytes including the terminating NUL.
	if n := len(d.address + ".ttrpc"); n > 107 {
		return nil, fmt.Errorf("supervisor: Config.Root %q is too long: socket path %q has %d bytes, unix sockets allow 107: use a shorter directory, e.g. under /tmp: %w", root, d.address+".ttrpc", n, errdefs.ErrInvalidArgument)
	}
	bin := cfg.Binary
	if bin == "" {
		bin = "containerd"
	}
	if d.binary, err = exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("supervisor: containerd binary %q not found: install containerd or set Config.Binary: %v: %w", bin, err, errdefs.ErrNotFound)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("supervisor: create root %q: %w", root, err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return nil, fmt.Errorf("supervisor: make root %q private: %w", root, err)
	}
	if err := os.MkdirAll(d.runtimeDir(), 0o700); err != nil {
		return nil, fmt.Errorf("supervisor: create %q: %w", d.runtimeDir(), err)
	}
	if err := os.WriteFile(d.cfgPath, []byte(configTOML(root, d.address)), 0o600); err != nil {
		return nil, fmt.Errorf("supervisor: write containerd config: %w", err)
	}
	if cfg.Output != nil {
		d.tail = &tailBuffer{max: logTail}
		d.out = io.MultiWriter(cfg.Output, d.tail)
	} else {
		d.logPath = filepath.Join(root, "containerd.log")
		f, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("supervisor: open containerd log: %w", err)
		}
		d.logFile, d.out = f, f
	}
	defer func() {
		if retErr != nil && d.logFile != nil {
			d.logFile.Close()
		}
	}()

	d.opMu.Lock()
	err = d.startLocked(ctx)
	if err != nil {
		if p := d.current(); p != nil {
			d.killLocked(p, true)
		}
		d.opMu.Unlock()
		return nil, err
	}
	d.opMu.Unlock()

	if cfg.Supervise {
		go d.supervise()
	} else {
		close(d.supDone)
	}
	return d, nil
}

// Address returns the path of containerd's gRPC socket.
func (d *Daemon) Address() string { return d.address }

// StateDir returns containerd's state dir (its --state), Root/state. The
// Daemon owns it: RemoveStaleTaskBundle removes in it, and so may whoever
// is given it as the state dir of a containerd they own (the backend's
// Config.ContainerdStateDir).
func (d *Daemon) StateDir() string { return filepath.Join(d.cfg.Root, "state") }

// Pid returns the pid of the current containerd process, or 0 if none was
// ever started.
func (d *Daemon) Pid() int {
	p := d.current()
	if p == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Done returns a channel closed when Stop has finished.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Stop ends supervision and stops containerd: SIGTERM, then SIGKILL when ctx
// ends, and waits for it to exit. Containers and shims keep running. Calling
// Stop again returns the first call's result once it has finished.
func (d *Daemon) Stop(ctx context.Context) error {
	first := false
	d.stopOnce.Do(func() {
		first = true
		close(d.stopCh)
	})
	if !first {
		select {
		case <-d.done:
			return d.stopErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	<-d.supDone // the supervisor watches stopCh, also while starting
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if p := d.current(); p != nil {
		d.stopErr = d.stopLocked(ctx, p)
	}
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	if d.logFile != nil {
		if err := d.logFile.Close(); err != nil && d.stopErr == nil {
			d.stopErr = fmt.Errorf("supervisor: close containerd log: %w", err)
		}
	}
	close(d.done)
	return d.stopErr
}

// Kill sends SIGKILL to containerd now and waits for it to die, as a crash
// would; shims and containers keep running. With Config.Supervise containerd
// is then restarted as after any crash; otherwise it stays down until
// Restart.
func (d *Daemon) Kill() error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if d.isStopped() {
		return ErrStopped
	}
	p := d.current()
	d.killLocked(p, false)
	return nil
}

// Restart stops containerd gracefully (as Stop, without ending supervision)
// and starts it again with the same configuration, waiting until it serves.
// It also starts containerd again after Kill.
func (d *Daemon) Restart(ctx context.Context) error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if d.isStopped() {
		return ErrStopped
	}
	if err := d.stopLocked(ctx, d.current()); err != nil {
		return err
	}
	if err := d.startLocked(ctx); err != nil {
		// Leave the failed process dead but not intended: a supervising
		// Daemon then keeps trying.
		d.killLocked(d.current(), false)
		return err
	}
	return nil
}

func (d *Daemon) current() *process {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.proc
}

func (d *Daemon) isStopped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

func (d *Daemon) setProc(p *process) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.proc = p
	close(d.changed)
	d.changed = make(chan struct{})
}

// startLocked starts one containerd process and waits until it serves.
// Called with opMu held. On error the process may still be running: the
// caller kills it.
func (d *Daemon) startLocked(ctx context.Context) error {
	args := []string{"--config", d.cfgPath, "--log-level", d.cfg.LogLevel}
	cmd := exec.Command(d.binary, args...)
	cmd.Dir = d.cfg.Root
	cmd.Env = d.env()
	cmd.Stdout, cmd.Stderr = d.out, d.out
	cmd.WaitDelay = outputWaitDelay
	// Its own session, so signals to our process group do not reach it;
	// killed if we die (pdeath.Start), so a crashed test leaves no daemon
	// behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if d.logFile != nil {
		fmt.Fprintf(d.logFile, "--- supervisor: starting %s %s at %s\n", d.binary, strings.Join(args, " "), time.Now().Format(time.RFC3339Nano))
	}
	// containerd is not running on this state dir now: bundles it would
	// never clean up are safe to remove.
	removed, err := sweepStaleBundles(d.StateDir())
	if len(removed) > 0 {
		log.G(ctx).WithField("removed", removed).Warn("supervisor: removed task bundles a killed containerd had left behind without a task; they would have kept their containers from starting")
	}
	if err != nil {
		log.G(ctx).WithError(err).Warn("supervisor: some stale task bundles are left; starts of their containers fail until they are removed")
	}
	if err := pdeath.Start(cmd, syscall.SIGKILL); err != nil {
		return fmt.Errorf("supervisor: start %s: %w", d.binary, err)
	}
	p := &process{cmd: cmd, started: time.Now(), exited: make(chan struct{})}
	// Owned by the process: ends when containerd exits, which Stop ensures.
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	d.setProc(p)
	log.G(ctx).WithField("pid", cmd.Process.Pid).WithField("address", d.address).Debug("supervisor: started containerd")
	return d.waitServing(ctx, p)
}

// waitServing polls containerd's Version until it answers, the process
// exits, the deadline passes or ctx ends.
func (d *Daemon) waitServing(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, serveTimeout)
	defer cancel()
	var lastErr error
	exited := false
	err := until.Wait(ctx, until.Backoff{Min: pollInterval, Max: pollInterval}, func(ctx context.Context) bool {
		select {
		case <-p.exited:
			exited = true
			return true
		default:
		}
		lastErr = d.ping(ctx)
		return lastErr == nil
	})
	switch {
	case exited:
		return fmt.Errorf("supervisor: containerd (pid %d) exited before serving on %s: %v; check the binary and %s; its output ends with:\n%s: %w",
			p.cmd.Process.Pid, d.address, p.waitErr, d.cfgPath, d.Tail(), errdefs.ErrUnavailable)
	case err != nil:
		return fmt.Errorf("supervisor: containerd (pid %d) did not serve on %s in time (%v); last error: %v; its output ends with:\n%s: %w",
			p.cmd.Process.Pid, d.address, err, lastErr, d.Tail(), errdefs.ErrUnavailable)
	}
	return nil
}

func (d *Daemon) ping(ctx context.Context) error {
	if _, err := os.Stat(d.address); err != nil {
		return err
	}
	c, err := client.New(d.address, client.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err
}

// stopLocked stops p gracefully: SIGTERM, SIGKILL when ctx ends.
func (d *Daemon) stopLocked(ctx context.Context, p *process) error {
	if p == nil {
		return nil
	}
	p.intended.Store(true)
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		log.G(ctx).WithError(err).Warn("supervisor: SIGTERM to containerd failed")
	}
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
	}
	log.G(ctx).WithField("pid", p.cmd.Process.Pid).Warn("supervisor: containerd did not stop in time, killing it")
	d.killLocked(p, true)
	return nil
}

// killLocked sends SIGKILL to p and waits for it to exit.
func (d *Daemon) killLocked(p *process, intended bool) {
	if p == nil {
		return
	}
	if intended {
		p.intended.Store(true)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		log.L.WithError(err).Warn("supervisor: SIGKILL to containerd failed")
	}
	<-p.exited
}

// supervise restarts containerd when it exits unintended, until Stop.
func (d *Daemon) supervise() {
	defer close(d.supDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends with supervise: cancels a start in progress on Stop
		select {
		case <-d.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := minBackoff
	for {
		d.mu.Lock()
		p, changed := d.proc, d.changed
		d.mu.Unlock()
		select {
		case <-d.stopCh:
			return
		case <-changed:
			continue
		case <-p.exited:
		}
		if p.intended.Load() {
			select {
			case <-d.stopCh:
				return
			case <-changed:
				continue
			}
		}
		if time.Since(p.started) > stableAfter {
			backoff = minBackoff
		}
		log.G(ctx).WithField("pid", p.cmd.Process.Pid).WithField("exit", p.waitErr).WithField("backoff", backoff).
			Warn("supervisor: containerd exited unexpectedly, restarting")
		timer := time.NewTimer(backoff)
		select {
		case <-d.stopCh:
			timer.Stop()
			return
		case <-changed:
			timer.Stop()
			continue
		case <-timer.C:
		}
		backoff = min(backoff*2, maxBackoff)

		d.opMu.Lock()
		if d.isStopped() || d.current() != p {
			d.opMu.Unlock()
			continue
		}
		if err := d.startLocked(ctx); err != nil {
			log.G(ctx).WithError(err).Error("supervisor: restarting containerd failed")
			if np := d.current(); np != p {
				d.killLocked(np, false) // dead and unintended: try again
			}
		}
		d.opMu.Unlock()
	}
}
