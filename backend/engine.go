package backend

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/pkg/apparmor"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/healthcheck/initprobe"
	"github.com/tendhq/tend/internal/crashtest"
	"github.com/tendhq/tend/internal/proctree"
	"github.com/tendhq/tend/libcontainerd"
	"github.com/tendhq/tend/network"
)

// ErrClosed is returned by calls on an Engine after Close.
var ErrClosed = fmt.Errorf("engine is closed: %w", errdefs.ErrFailedPrecondition)

const (
	// DefaultNamespace is the containerd namespace of an engine.
	DefaultNamespace = "tend"
	// DefaultStopTimeout is how long Stop waits after SIGTERM.
	DefaultStopTimeout = 10 * time.Second
	// opTimeout bounds engine-internal containerd calls that no caller
	// context bounds (restarts, shutdown clean-up).
	opTimeout = 30 * time.Second
	// unknownExitReason explains an exit the engine had to assume.
	unknownExitReason = "the task was gone when the engine started again: exit status unknown"
)

// Config configures an Engine. Only ContainerdAddress and Root are required.
type Config struct {
	// Root holds the engine state: containers/<id>/ (record file, log,
	// checkpoints/<name>/), fifo/, checkpoints/ and volumes/<name>/_data.
	// Created 0700.
	Root string
	// ContainerdAddress is containerd's socket.
	ContainerdAddress string
	// ContainerdStateDir is the state dir (--state) of a containerd the
	// engine owns, if any: with it a start removes a task bundle that a
	// containerd crash left behind and that would keep the container from
	// starting (libcontainerd.StaleBundleError,
	// supervisor.RemoveStaleTaskBundle). Leave it empty for a containerd
	// shared with others.
	ContainerdStateDir string
	// InitPath is a statically linked tend-init (cmd/tend-init); empty:
	// InitBinary next to the running executable, else in PATH. Without one,
	// containers run without an init and probes run as containerd execs.
	InitPath string
	// Namespace is the containerd namespace; default "tend". Two engines
	// must not share one.
	Namespace string
	// LiveRestore makes Close leave containers running, to be re-attached
	// by the next New on the same Root; without it Close stops them
	// (SIGTERM, then SIGKILL after StopTimeout).
	LiveRestore bool
	// ProbeConcurrency caps concurrent health probes (0: healthcheck's
	// default).
	ProbeConcurrency int
	// Backoff paces restarts by policy.
	Backoff Backoff
	// StopTimeout is the default time between SIGTERM and SIGKILL; default
	// 10s.
	StopTimeout time.Duration
	// Clock is the source of time for restart backoff, stop timeouts and
	// probes; nil is the real clock.
	Clock healthcheck.Clock

	// Network gives containers their networks (see
	// backend/network.go); nil: no networking, every container in a
	// namespace of its own with lo only (down).
	Network *network.Manager
	// registry: how registries are reached (insecure hosts, TLS).
	Registry RegistryConfig
	// ProtectedPaths are more directories of the engine's own (the
	// daemon's root, containerd's root) that a container may not bind
	// mount, nor any directory holding them, unless privileged; Root and
	// ContainerdStateDir always are.
	ProtectedPaths []string

	// ContainersPerShim packs new containers without a ShimGroup into
	// shared shims of up to this many (see backend/shimgroup.go);
	// 0 or 1: a shim per container.
	ContainersPerShim int
}

// Engine manages containers on containerd: durable records, the state
// machine, restart policies with backoff, health probes and live-restore.
// See the package documentation.
type Engine struct {
	cfg     Config
	clock   healthcheck.Clock
	backoff Backoff
	store   store
	volumes *volumeStore
	client  libcontainerd.Client
	health  *healthcheck.Scheduler
	log     *log.Entry
	ctx     context.Context // carries the namespace; never cancelled before Close
	cancel  context.CancelFunc

	initPath   string         // installed tend-init; "" when not available
	initErr    error          // why not
	initProbes map[string]int // (mu) probes tend-init runs, by container
	// probeConns keeps each container's connection to its tend-init
	// between probes; dropped when the task ends and before a checkpoint.
	probeConns *initprobe.Pool
	// initExited tells whether a container's init (host pid) has exited:
	// proctree.Exited; the unit tests' fake client answers for its pids.
	initExited func(pid int) bool
	apparmor   bool // the host enforces AppArmor profiles

	loadErrors []error
	events     eventLog
	done       chan struct{} // closed by Close: timers and helpers stop
	wg         sync.WaitGroup

	// closed is set with mu held (see spawn); abandoned stops all record
	// writes. Both are read without mu.
	closed    atomic.Bool
	abandoned atomic.Bool

	// mu guards the engine's maps only; each container's state is under
	// its own lock (see container for the lock order).
	mu    sync.Mutex
	ctrs  map[string]*container // (mu)
	names map[string]string     // (mu) name -> id, including reservations
	execs map[string]*Exec      // (mu)

	// Networking.
	net     *network.Manager
	netMu   sync.RWMutex // creates (read) against network removals (write)
	hostsMu sync.Mutex   // serialises /etc/hosts rewrites
	// registry: pulls in flight, one per reference (its own lock).
	pulls pullGroup

	// Shared shims: groups being filled (its own lock).
	shims shimPacker
}

// New loads the records under cfg.Root (a corrupt record is logged with its
// path, skipped and listed by LoadErrors), connects to containerd and
// re-attaches to every container: live tasks keep running with their stdio
// and health state, exits that happened while no engine ran are handled (and
// restart policies applied), pending restarts are rescheduled, and stopped
// always/unless-stopped containers are started as after a reboot.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	return newEngine(ctx, cfg, func(ctx context.Context, b libcontainerd.Backend, fifoDir string) (libcontainerd.Client, error) {
		return libcontainerd.New(ctx, cfg.ContainerdAddress, cfg.Namespace, b,
			libcontainerd.WithFIFODir(fifoDir))
	})
}

type clientFactory func(ctx context.Context, b libcontainerd.Backend, fifoDir string) (libcontainerd.Client, error)

func newEngine(ctx context.Context, cfg Config, newClient clientFactory) (_ *Engine, retErr error) {
	if cfg.Root == "" || !filepath.IsAbs(cfg.Root) || filepath.Clean(cfg.Root) != cfg.Root {
		return nil, fmt.Errorf("engine root %q: want a clean absolute path: %w", cfg.Root, errdefs.ErrInvalidArgument)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if err := CheckStopTimeout(&cfg.StopTimeout); err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	if err := CheckContainersPerShim(cfg.ContainersPerShim); err != nil {
		return nil, fmt.Errorf("engine config: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = healthcheck.RealClock{}
	}
	for _, d := range []string{cfg.Root, filepath.Join(cfg.Root, "containers"), filepath.Join(cfg.Root, "fifo"), filepath.Join(cfg.Root, "checkpoints")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create engine directory: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("engine directory %s: %w", d, err)
		}
	}
	e := &Engine{
		cfg:     cfg,
		clock:   cfg.Clock,
		backoff: cfg.Backoff.withDefaults(),
		store:   store{dir: filepath.Join(cfg.Root, "containers")},
		log:     log.G(ctx).WithField("component", "backend").WithField("namespace", cfg.Namespace),
		done:    make(chan struct{}),
		ctrs:    make(map[string]*container),
		names:   make(map[string]string),
		execs:   make(map[string]*Exec),

		initProbes: make(map[string]int),
		probeConns: initprobe.NewPool(),
		initExited: proctree.Exited,
		net:        cfg.Network,
	}
	e.volumes = newVolumeStore(filepath.Join(cfg.Root, volumesDir), e.log)
	if err := e.volumes.load(); err != nil {
		return nil, err
	}
	e.ctx, e.cancel = context.WithCancel(namespaces.WithNamespace(context.WithoutCancel(ctx), cfg.Namespace))
	defer func() {
		if retErr != nil {
			e.cancel()
		}
	}()
	if e.apparmor = apparmor.HostSupports(); !e.apparmor {
		e.log.Info("AppArmor is not enabled on this host: containers run without an AppArmor profile (seccomp, capabilities and masked paths still apply)")
	}
	if src, err := findInit(cfg.InitPath); err != nil {
		if cfg.InitPath != "" {
			return nil, fmt.Errorf("engine init: %w", err)
		}
		e.initErr = err
		e.log.WithError(err).Warn("containers run without an init: probes use a containerd exec each and orphaned zombies stay under a PID 1 that does not reap")
	} else if e.initPath, err = installInit(cfg.Root, src); err != nil {
		return nil, fmt.Errorf("engine init: %w", err)
	}

	recs, bad, err := e.store.load()
	if err != nil {
		return nil, err
	}
	for _, err := range bad {
		e.log.WithError(err).Error("skipping a container record")
	}
	e.loadErrors = bad
	for _, r := range recs {
		c, err := e.adopt(r)
		if err != nil {
			e.log.WithError(err).WithField("container", r.ID).Error("skipping a container record")
			e.loadErrors = append(e.loadErrors, &RecordError{Path: filepath.Join(e.store.containerDir(r.ID), recordFile), Err: err})
			continue
		}
		e.ctrs[r.ID] = c
		e.names[r.Name] = r.ID
		e.refVolumes(r)
	}

	e.health = healthcheck.NewScheduler(healthExecer{e}, healthcheck.WithClock(e.clock),
		healthcheck.WithMaxConcurrent(cfg.ProbeConcurrency), healthcheck.WithNotify(e.onHealth))
	client, err := newClient(ctx, libcontainerd.BackendFunc(e.processEvent), filepath.Join(cfg.Root, "fifo"))
	if err != nil {
		e.health.Close()
		e.closeLogs()
		return nil, err
	}
	e.client = client
	e.boot(ctx)
	e.reconcileNetwork(ctx)
	return e, nil
}

// LoadErrors lists the records New could not load (each a *RecordError
// naming the file); those containers are not managed by this Engine.
func (e *Engine) LoadErrors() []error { return append([]error(nil), e.loadErrors...) }

// Close shuts the engine down. With LiveRestore containers keep running;
// otherwise they are stopped (the stop signal, SIGKILL after the
// container's --stop-timeout or the engine's StopTimeout; not
// counted as manual stops, so restart policies apply at the next start).
// Pending restarts are cancelled and stay recorded. Nothing of the Engine
// runs after Close returns. Close is idempotent.
func (e *Engine) Close(ctx context.Context) error {
	// The project's crash-recovery tests close an engine as a SIGKILL of
	// the engine process would (see internal/crashtest).
	abandon := crashtest.Take(e)
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return nil
	}
	e.closed.Store(true)
	e.abandoned.Store(abandon)
	all := e.containersLocked()
	close(e.done)
	e.mu.Unlock()
	var active []*container
	for _, c := range all {
		c.mu.Lock()
		if isActive(c.rec.State) {
			active = append(active, c)
		}
		c.mu.Unlock()
	}

	e.health.Close()
	e.probeConns.Close()
	if !abandon {
		e.flushHealth()
	}
	if !e.cfg.LiveRestore && !abandon {
		var wg sync.WaitGroup
		for _, c := range active {
			wg.Go(func() {
				c.mu.Lock()
				timeout := e.ownStopTimeoutLocked(c)
				c.mu.Unlock()
				if err := e.stopTask(ctx, c, timeout); err != nil {
					e.log.WithError(err).WithField("container", c.rec.ID).Warn("stop container at engine shutdown")
				}
			})
		}
		wg.Wait()
	}
	e.wg.Wait()
	err := e.client.Close()
	e.abandoned.Store(true) // nothing is written after this point
	for _, c := range e.containers() {
		c.mu.Lock()
		if c.io != nil {
			c.io.close()
			c.io = nil
		}
		c.mu.Unlock()
	}
	e.mu.Lock()
	execs := e.execs
	e.execs = map[string]*Exec{}
	e.mu.Unlock()
	for _, x := range execs {
		x.finish(-1, ErrClosed)
	}
	e.closeLogs()
	e.events.close()
	e.cancel()
	return err
}

func (e *Engine) closeLogs() {
	for _, c := range e.containers() {
		c.attachs.closeAll()
		if c.logw != nil {
			c.logw.Close()
		}
	}
}

func (e *Engine) isClosed() bool { return e.closed.Load() }

// containers returns the engine's containers, to be locked one by one.
func (e *Engine) containers() []*container {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.containersLocked()
}

func (e *Engine) containersLocked() []*container {
	all := make([]*container, 0, len(e.ctrs))
	for _, c := range e.ctrs {
		all = append(all, c)
	}
	return all
}

// spawn runs f on a goroutine that Close waits for; false (f not run) once
// the engine is closed. It takes e.mu, so the check and the WaitGroup's Add
// are one step against Close.
func (e *Engine) spawn(f func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
	return true
}
