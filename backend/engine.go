package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/io/fifoset"
	"github.com/tendhq/tend/io/jsonlog"
	"github.com/tendhq/tend/libcontainerd"
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
	// checkpoints/<name>/), fifo/ and checkpoints/. Created 0700.
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
	// Abandon: for tests of crash recovery. Close then behaves like a
	// SIGKILL of the engine process: containers are neither stopped nor
	// waited for, no record is written from the moment Close is called,
	// pending restarts are dropped as they are (and happen after the next
	// New). Goroutines and connections are still released.
	Abandon bool
}

// Engine manages containers on containerd: durable records, the state
// machine, restart policies with backoff, health probes and live-restore.
// See the package documentation.
type Engine struct {
	cfg     Config
	clock   healthcheck.Clock
	backoff Backoff
	store   store
	client  libcontainerd.Client
	health  *healthcheck.Scheduler
	log     *log.Entry
	ctx     context.Context // carries the namespace; never cancelled before Close
	cancel  context.CancelFunc

	initPath   string         // installed tend-init; "" when not available
	initErr    error          // why not
	initProbes map[string]int // (mu) probes tend-init runs, by container

	imagesOnce sync.Once
	images     *containerd.Client
	imagesErr  error

	loadErrors []error
	events     eventLog
	done       chan struct{} // closed by Close: timers and helpers stop
	wg         sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	abandoned bool
	ctrs      map[string]*container
	names     map[string]string // name -> id, including reservations
	execs     map[string]*Exec
}

// container is the engine's state of one container. rec and the fields
// marked (mu) are guarded by Engine.mu.
type container struct {
	rec Container // (mu)

	// op serialises lifecycle operations (start, stop, restart, pause,
	// resume, remove). Exit handling never takes it, so an operation may
	// hold it while waiting for an exit.
	op sync.Mutex

	changed  chan struct{} // (mu) closed and replaced on every change
	exits    int           // (mu) init exits handled
	taskLive bool          // (mu) an exit is owed for the current task
	starting chan struct{} // (mu) closed once an in-flight start or restore updated rec
	oomSeen  bool          // (mu) the current task was OOM-killed
	removed  bool          // (mu)

	unhealthyKill    bool // (mu) the next exit was caused by the on-unhealthy action
	unhealthyRestart bool // (mu) ... and should restart whatever the policy
	checkpointExit   bool // (mu) the next exit ends a checkpoint that stops the container

	restartGen    uint64        // (mu) identifies the pending restart
	restartCancel chan struct{} // (mu) closed to cancel the pending restart

	healthAdded bool // (mu) registered with the health scheduler
	healthDirty bool // (mu) rec.Health has probe results not yet written

	checkpointing bool // (mu) CRIU may be dumping it: no exec may start

	io *taskIO // (mu) stdio of the current task

	logw    *jsonlog.Writer
	attachs *attachSet

	saveMu    sync.Mutex
	seq       uint64 // (mu) bumped on every snapshot
	savedSeq  uint64 // (saveMu)
	saveDirty bool
}

// snapshot is a copy of a record to write, ordered by seq.
type snapshot struct {
	rec Container
	seq uint64
}

// New loads the records under cfg.Root (a corrupt record is logged with its
// path, skipped and listed by LoadErrors), connects to containerd and
// re-attaches to every container: live tasks keep running with their stdio
// and health state, exits that happened while no engine ran are handled (and
// restart policies applied), pending restarts are rescheduled, and stopped
// always/unless-stopped containers are started as after a reboot.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	return newEngine(ctx, cfg, func(ctx context.Context, b libcontainerd.Backend, fifoDir string) (libcontainerd.Client, error) {
		return libcontainerd.New(ctx, cfg.ContainerdAddress, cfg.Namespace, b, libcontainerd.WithFIFODir(fifoDir))
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
	}
	e.ctx, e.cancel = context.WithCancel(namespaces.WithNamespace(context.WithoutCancel(ctx), cfg.Namespace))
	defer func() {
		if retErr != nil {
			e.cancel()
		}
	}()
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
	return e, nil
}

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

// LoadErrors lists the records New could not load (each a *RecordError
// naming the file); those containers are not managed by this Engine.
func (e *Engine) LoadErrors() []error { return append([]error(nil), e.loadErrors...) }

// boot reconciles every loaded record with containerd (see New).
func (e *Engine) boot(ctx context.Context) {
	e.mu.Lock()
	all := make([]*container, 0, len(e.ctrs))
	for _, c := range e.ctrs {
		all = append(all, c)
	}
	e.mu.Unlock()
	for _, c := range all {
		c.op.Lock()
		e.bootOne(ctx, c)
		c.op.Unlock()
	}
}

func (e *Engine) bootOne(ctx context.Context, c *container) {
	id := c.rec.ID
	lg := e.log.WithField("container", id)
	e.mu.Lock()
	state := c.rec.State
	e.mu.Unlock()
	if state == StateRemoving {
		if err := e.finishRemove(ctx, c); err != nil {
			lg.WithError(err).Warn("finish the removal of a container")
		}
		return
	}
	st, err := e.client.Status(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			e.mu.Lock()
			if state != StateDead {
				_ = transition(&c.rec, StateDead)
				c.rec.Error = "containerd no longer has this container: remove it"
				c.rec.Pid = 0
			}
			snap := e.snapLocked(c)
			e.mu.Unlock()
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
			e.mu.Lock()
			c.taskLive = true
			e.mu.Unlock()
			e.handleExit(ctx, c, libcontainerd.EventInfo{ContainerID: id, ProcessID: id, ExitCode: libcontainerd.ExitCodeUnknown, ExitedAt: e.clock.Now(), Reason: unknownExitReason})
		case StateRestarting:
			e.mu.Lock()
			wait := max(c.rec.NextRestartAt.Sub(e.clock.Now()), 0)
			e.armRestartLocked(c, wait)
			e.mu.Unlock()
		case StateCreated, StateExited:
			e.mu.Lock()
			boot := restartOnBoot(&c.rec)
			if boot {
				c.rec.ManuallyStopped = false
			}
			e.mu.Unlock()
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
	e.mu.Lock()
	c.taskLive, c.starting = owed, starting
	e.mu.Unlock()
	res, err := e.client.Restore(ctx, id, libcontainerd.WithStdio(e.stdioCallback(c)))
	e.mu.Lock()
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
	default:
		// Stopped: the exit is delivered through processEvent; when no
		// exit was owed (the record already shows one) it only deletes
		// the task.
	}
	c.starting = nil
	close(starting)
	snap := e.snapLocked(c)
	e.notifyLocked(c)
	e.mu.Unlock()
	e.save(c, snap)
}

// Close shuts the engine down. With LiveRestore containers keep running;
// otherwise they are stopped (SIGTERM, SIGKILL after StopTimeout; not
// counted as manual stops, so restart policies apply at the next start).
// Pending restarts are cancelled and stay recorded. Nothing of the Engine
// runs after Close returns. Close is idempotent.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.abandoned = e.cfg.Abandon
	var active []*container
	for _, c := range e.ctrs {
		if isActive(c.rec.State) {
			active = append(active, c)
		}
	}
	close(e.done)
	e.mu.Unlock()

	e.health.Close()
	if !e.cfg.Abandon {
		e.flushHealth()
	}
	if !e.cfg.LiveRestore && !e.cfg.Abandon {
		var wg sync.WaitGroup
		for _, c := range active {
			wg.Go(func() {
				timeout := e.cfg.StopTimeout
				if err := e.stopTask(ctx, c, timeout); err != nil {
					e.log.WithError(err).WithField("container", c.rec.ID).Warn("stop container at engine shutdown")
				}
			})
		}
		wg.Wait()
	}
	e.wg.Wait()
	err := e.client.Close()
	e.mu.Lock()
	e.abandoned = true // nothing is written after this point
	for _, c := range e.ctrs {
		if c.io != nil {
			c.io.close()
			c.io = nil
		}
	}
	for _, x := range e.execs {
		x.finish(-1, ErrClosed)
	}
	e.execs = map[string]*Exec{}
	e.mu.Unlock()
	e.closeLogs()
	e.events.close()
	e.cancel()
	if e.images != nil {
		e.images.Close()
	}
	return err
}

// flushHealth writes the records whose health log has results not yet
// persisted.
func (e *Engine) flushHealth() {
	type pending struct {
		c    *container
		snap *snapshot
	}
	var todo []pending
	e.mu.Lock()
	for _, c := range e.ctrs {
		if c.healthDirty && !c.removed {
			c.healthDirty = false
			todo = append(todo, pending{c, e.snapLocked(c)})
		}
	}
	e.mu.Unlock()
	for _, p := range todo {
		e.save(p.c, p.snap)
	}
}

func (e *Engine) closeLogs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.ctrs {
		c.attachs.closeAll()
		if c.logw != nil {
			c.logw.Close()
		}
	}
}

// --- records ---------------------------------------------------------------

// snapLocked copies the record for save; nil once nothing may be written.
func (e *Engine) snapLocked(c *container) *snapshot {
	if e.abandoned || c.removed {
		return nil
	}
	c.seq++
	return &snapshot{rec: cloneRecord(c.rec), seq: c.seq}
}

// save writes a snapshot unless a newer one was written already.
func (e *Engine) save(c *container, s *snapshot) {
	if s == nil {
		return
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	if s.seq <= c.savedSeq {
		return
	}
	e.mu.Lock()
	skip := e.abandoned || c.removed
	e.mu.Unlock()
	if skip {
		return
	}
	if err := e.store.write(&s.rec); err != nil {
		e.log.WithError(err).WithField("container", s.rec.ID).Error("persist container record")
		return
	}
	c.savedSeq = s.seq
}

// notifyLocked wakes everyone waiting for a change of c.
func (e *Engine) notifyLocked(c *container) {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (e *Engine) emitLocked(c *container, typ string, attrs map[string]string) {
	e.events.emit(Event{Time: e.clock.Now(), Type: typ, ContainerID: c.rec.ID, Name: c.rec.Name, Attributes: attrs})
}

func cloneRecord(r Container) Container {
	r.Config.Cmd = append([]string(nil), r.Config.Cmd...)
	r.Config.Env = append([]string(nil), r.Config.Env...)
	if r.Config.Labels != nil {
		m := make(map[string]string, len(r.Config.Labels))
		for k, v := range r.Config.Labels {
			m[k] = v
		}
		r.Config.Labels = m
	}
	if r.Config.Init != nil {
		v := *r.Config.Init
		r.Config.Init = &v
	}
	if r.Config.Health != nil {
		h := *r.Config.Health
		h.Test = append([]string(nil), h.Test...)
		r.Config.Health = &h
	}
	if r.Health != nil {
		h := r.Health.Clone()
		r.Health = &h
	}
	return r
}

// --- lookup ----------------------------------------------------------------

// resolve finds a container by id, name or unique id prefix.
func (e *Engine) resolve(ref string) (*container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	return e.resolveLocked(ref)
}

func (e *Engine) resolveLocked(ref string) (*container, error) {
	ref = strings.TrimPrefix(ref, "/")
	if ref == "" {
		return nil, fmt.Errorf("no container given: name a container by id, id prefix or name: %w", errdefs.ErrInvalidArgument)
	}
	if c, ok := e.ctrs[ref]; ok {
		return c, nil
	}
	if id, ok := e.names[ref]; ok {
		if c, ok := e.ctrs[id]; ok {
			return c, nil
		}
	}
	var found *container
	for id, c := range e.ctrs {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, fmt.Errorf("container reference %q matches several containers: give more of the id: %w", ref, errdefs.ErrInvalidArgument)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return found, nil
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return hex.EncodeToString(b[:])
}

var (
	nameLeft  = []string{"brave", "calm", "eager", "fond", "keen", "lucid", "merry", "noble", "quiet", "swift", "tidy", "warm"}
	nameRight = []string{"alder", "birch", "cedar", "elm", "fir", "hazel", "larch", "maple", "oak", "pine", "rowan", "willow"}
)

// generateNameLocked picks an unused name like "calm_cedar".
func (e *Engine) generateNameLocked(id string) string {
	for range 16 {
		n := nameLeft[mrand.IntN(len(nameLeft))] + "_" + nameRight[mrand.IntN(len(nameRight))]
		if _, used := e.names[n]; !used {
			return n
		}
	}
	return "c_" + id[:12]
}

// --- create ----------------------------------------------------------------

func validateCreate(o *CreateOptions) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid container options: "+format+": %w", append(args, errdefs.ErrInvalidArgument)...)
	}
	if o.Name != "" && libcontainerd.ValidateID(strings.TrimPrefix(o.Name, "/")) != nil {
		return bad("name %q: want letters and digits joined by single '_', '.' or '-', at most 76 characters", o.Name)
	}
	switch {
	case o.Image == "" && o.Rootfs == "":
		return bad("give an image or a rootfs directory")
	case o.Image != "" && o.Rootfs != "":
		return bad("give an image or a rootfs directory, not both")
	case o.Image != "":
		ref, err := NormalizeImageRef(o.Image)
		if err != nil {
			return err
		}
		o.Image = ref
	case o.Rootfs != "":
		if !filepath.IsAbs(o.Rootfs) || filepath.Clean(o.Rootfs) != o.Rootfs {
			return bad("rootfs %q: want a clean absolute path", o.Rootfs)
		}
		fi, err := os.Stat(o.Rootfs)
		if err != nil || !fi.IsDir() {
			return bad("rootfs %q is not a directory", o.Rootfs)
		}
		if len(o.Cmd) == 0 {
			return bad("a rootfs container needs a command")
		}
	}
	if o.WorkingDir != "" && !filepath.IsAbs(o.WorkingDir) {
		return bad("working directory %q: want an absolute path", o.WorkingDir)
	}
	for _, kv := range o.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" {
			return bad("environment variable %q: want NAME=value", kv)
		}
	}
	if err := o.Restart.validate(); err != nil {
		return err
	}
	if o.Restart.Name == "" {
		o.Restart.Name = RestartNo
	}
	if o.AutoRemove && o.Restart.Name != RestartNo {
		return bad("auto-remove conflicts with restart policy %s: use one or the other", o.Restart)
	}
	if o.Health != nil {
		if err := o.Health.Validate(); err != nil {
			return err
		}
	}
	if o.Resources.MemoryBytes < 0 || o.Resources.CPUs < 0 || o.Resources.PidsLimit < 0 {
		return bad("resources must not be negative (0 is unlimited)")
	}
	return nil
}

// buildSpec derives the OCI spec of a container from its options.
func (e *Engine) buildSpec(id string, o *CreateOptions) (*specs.Spec, error) {
	opts := []oci.SpecOpts{oci.WithDefaultPathEnv}
	if len(o.Cmd) > 0 {
		opts = append(opts, oci.WithProcessArgs(o.Cmd...))
	}
	if o.Rootfs != "" {
		opts = append(opts, oci.WithRootFSPath(o.Rootfs))
	}
	if len(o.Env) > 0 {
		opts = append(opts, oci.WithEnv(o.Env))
	}
	if o.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(o.WorkingDir))
	}
	if o.Tty {
		opts = append(opts, oci.WithTTY)
	}
	if o.Resources.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(o.Resources.MemoryBytes)))
	}
	if o.Resources.CPUs > 0 {
		const period = 100000
		opts = append(opts, oci.WithCPUCFS(int64(o.Resources.CPUs*period), period))
	}
	if o.Resources.PidsLimit > 0 {
		opts = append(opts, oci.WithPidsLimit(o.Resources.PidsLimit))
	}
	s, err := oci.GenerateSpec(e.ctx, nil, &containers.Container{ID: id}, opts...)
	if err != nil {
		return nil, fmt.Errorf("build OCI spec: %w", err)
	}
	if len(o.Cmd) == 0 {
		s.Process.Args = nil // the image's command
	}
	return s, nil
}

// Create creates a container (state created) from opts and returns its
// record. The id is 64 hex characters; the name is generated when empty and
// must be unique (errdefs.ErrAlreadyExists otherwise).
func (e *Engine) Create(ctx context.Context, opts CreateOptions) (_ *Container, retErr error) {
	o := cloneRecord(Container{Config: opts}).Config
	if err := validateCreate(&o); err != nil {
		return nil, err
	}
	o.Name = strings.TrimPrefix(o.Name, "/")
	id := newID()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if o.Name == "" {
		o.Name = e.generateNameLocked(id)
	} else if other, used := e.names[o.Name]; used {
		e.mu.Unlock()
		return nil, fmt.Errorf("the name %q is in use by container %s: remove it or pick another name: %w", o.Name, shortID(other), errdefs.ErrAlreadyExists)
	}
	e.names[o.Name] = id // reserved while creating
	e.mu.Unlock()
	defer func() {
		if retErr != nil {
			e.mu.Lock()
			if e.names[o.Name] == id {
				delete(e.names, o.Name)
			}
			e.mu.Unlock()
		}
	}()

	useInit, err := e.wantInit(&o)
	if err != nil {
		return nil, err
	}
	o.Init = &useInit
	spec, err := e.buildSpec(id, &o)
	if err != nil {
		return nil, err
	}
	if err := e.store.create(id); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			e.store.remove(id)
		}
	}()
	copts := []libcontainerd.CreateOption{libcontainerd.WithLabels(o.Labels)}
	if useInit {
		opt, err := e.withInit(id, spec)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", shortID(id), err)
		}
		copts = append(copts, opt)
	}
	logPath := filepath.Join(e.store.containerDir(id), logFile)
	w, err := jsonlog.Open(logPath, jsonlog.Options{})
	if err != nil {
		return nil, fmt.Errorf("create %s: open log: %w", shortID(id), err)
	}
	defer func() {
		if retErr != nil {
			w.Close()
		}
	}()
	if o.Image != "" {
		copts = append(copts, libcontainerd.WithImage(o.Image))
	}
	if err := e.client.Create(ctx, id, spec, copts...); err != nil {
		return nil, err
	}
	c := &container{
		rec: Container{
			ID: id, Name: o.Name, Created: e.clock.Now(), Config: o, State: StateCreated, LogPath: logPath,
		},
		changed: make(chan struct{}),
		logw:    w,
		attachs: newAttachSet(),
	}
	// The record must be on disk before the container is visible.
	if err := e.store.write(&c.rec); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		e.client.Delete(cctx, id)
		return nil, err
	}
	e.mu.Lock()
	e.ctrs[id] = c
	e.emitLocked(c, "create", nil)
	out := cloneRecord(c.rec)
	e.mu.Unlock()
	return &out, nil
}

// --- start -----------------------------------------------------------------

// Start starts a created or exited container (a running one is left alone,
// as Docker does). It clears a manual stop, the restart count and the
// backoff. A container with a pending restart is started now.
func (e *Engine) Start(ctx context.Context, ref string) error {
	c, err := e.resolve(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	e.mu.Lock()
	switch s := c.rec.State; s {
	case StateRunning:
		e.mu.Unlock()
		return nil
	case StateCreated, StateExited, StateRestarting:
	default:
		e.mu.Unlock()
		return fmt.Errorf("container %s is %s: cannot start it%s: %w", c.rec.Name, s, startHint(s), errdefs.ErrFailedPrecondition)
	}
	if c.removed {
		e.mu.Unlock()
		return fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	e.cancelRestartLocked(c)
	c.rec.ManuallyStopped = false
	c.rec.RestartCount = 0
	c.rec.RestartDelay = 0
	e.mu.Unlock()
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
	e.mu.Lock()
	if e.closed && reason != "boot" {
		e.mu.Unlock()
		return ErrClosed
	}
	c.taskLive, c.starting, c.oomSeen = true, starting, false
	e.mu.Unlock()
	opts := []libcontainerd.StartOption{libcontainerd.WithStdin(c.rec.Config.OpenStdin), libcontainerd.WithStdio(e.stdioCallback(c))}
	var startAttrs map[string]string
	if cp != nil {
		opts = append(opts, libcontainerd.WithCheckpointDir(cp.dir))
		startAttrs = map[string]string{"checkpoint": cp.name}
	}
	pid, err := e.startClientTask(ctx, id, opts...)
	// A failed restore is no task in the way: recoverTask would start the
	// command afresh.
	if errdefs.IsFailedPrecondition(err) && cp == nil {
		if p, rerr := e.recoverTask(ctx, c); rerr == nil {
			pid, err = p, nil
		} else {
			err = fmt.Errorf("%w (recovering the task in the way: %v)", err, rerr)
		}
	}
	e.mu.Lock()
	started := func() { // with e.mu held: the exit handler may go on
		c.starting = nil
		close(starting)
	}
	if err != nil {
		started()
		c.taskLive = false
		if c.io != nil {
			c.io.close()
			c.io = nil
		}
		c.rec.Error = err.Error()
		snap := e.snapLocked(c)
		e.notifyLocked(c)
		e.mu.Unlock()
		e.save(c, snap)
		return err
	}
	if terr := transition(&c.rec, StateRunning); terr != nil {
		// Only a concurrent removal can get here; the exit handler
		// cleans the task up.
		started()
		e.mu.Unlock()
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
	started()
	snap := e.snapLocked(c)
	e.notifyLocked(c)
	e.mu.Unlock()
	e.save(c, snap)
	return nil
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

// --- exits and restarts ----------------------------------------------------

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
	if e.closed {
		return
	}
	c.restartGen++
	gen := c.restartGen
	cancel := make(chan struct{})
	c.restartCancel = cancel
	t := e.clock.NewTimer(wait)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer t.Stop()
		select {
		case <-t.C():
			e.restartNow(c, gen)
		case <-cancel:
		case <-e.done:
		}
	}()
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
	e.mu.Lock()
	if c.restartGen != gen || c.rec.State != StateRestarting || e.closed || c.removed {
		e.mu.Unlock()
		return
	}
	c.restartCancel = nil
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.ctx, opTimeout)
	defer cancel()
	err := e.startTask(ctx, c, "policy")
	if err == nil {
		return
	}
	e.log.WithError(err).WithField("container", c.rec.ID).Warn("restart failed; retrying after backoff")
	e.mu.Lock()
	if c.rec.State == StateRestarting && !e.closed {
		base, wait := e.backoff.next(c.rec.RestartDelay, 0, mrand.Float64())
		c.rec.RestartDelay = base
		c.rec.NextRestartAt = e.clock.Now().Add(wait)
		e.armRestartLocked(c, wait)
	}
	snap := e.snapLocked(c)
	e.notifyLocked(c)
	e.mu.Unlock()
	e.save(c, snap)
}

// --- stop, kill, restart, pause --------------------------------------------

// Stop stops a container: SIGTERM, then SIGKILL after timeout (nil: the
// engine's StopTimeout). The stop is manual: no restart policy undoes it. A
// pending restart is cancelled. Stopping a stopped container succeeds.
func (e *Engine) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	c, err := e.resolve(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	d := e.stopTimeout(timeout)
	return e.stopLocked(ctx, c, d)
}

// stopLocked stops c with c.op held.
func (e *Engine) stopLocked(ctx context.Context, c *container, timeout time.Duration) error {
	e.mu.Lock()
	switch c.rec.State {
	case StateRestarting:
		e.cancelRestartLocked(c)
		c.rec.ManuallyStopped = true
		c.rec.NextRestartAt = time.Time{}
		_ = transition(&c.rec, StateExited)
		e.emitLocked(c, "stop", nil)
		snap := e.snapLocked(c)
		e.notifyLocked(c)
		e.mu.Unlock()
		e.save(c, snap)
		return nil
	case StateRunning, StatePaused:
	default:
		e.mu.Unlock()
		return nil
	}
	c.rec.ManuallyStopped = true
	snap := e.snapLocked(c)
	e.mu.Unlock()
	e.save(c, snap) // a crash from here on still knows the stop was manual
	if err := e.stopTask(ctx, c, timeout); err != nil {
		return err
	}
	e.mu.Lock()
	e.emitLocked(c, "stop", nil)
	e.mu.Unlock()
	return nil
}

// stopTask signals c's task SIGTERM and, after timeout, SIGKILL, and waits
// until its exit is handled. A paused task is resumed so it can act on the
// signal.
func (e *Engine) stopTask(ctx context.Context, c *container, timeout time.Duration) error {
	id := c.rec.ID
	e.mu.Lock()
	exits := c.exits
	paused := c.rec.State == StatePaused
	// Between two runs there is no task; the caller cancelled the restart.
	restarting := c.rec.State == StateRestarting
	e.mu.Unlock()
	if restarting {
		return nil
	}
	exited := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return c.exits > exits || !isActive(c.rec.State)
	}
	// A signal can find no process when the task just ended: its exit is
	// on its way.
	signalled := func(err error) error {
		if err == nil || exited() {
			return nil
		}
		if !errdefs.IsFailedPrecondition(err) && !errdefs.IsNotFound(err) {
			return err
		}
		return e.waitChange(ctx, c, exited, nil)
	}
	if err := signalled(e.signal(ctx, c, syscall.SIGTERM)); err != nil {
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

// errTimedOut is waitChange's result when its timer fired.
var errTimedOut = errors.New("timed out")

// waitChange waits until cond holds (checked on every change of c), ctx is
// done or timer fires.
func (e *Engine) waitChange(ctx context.Context, c *container, cond func() bool, timer <-chan time.Time) error {
	for {
		e.mu.Lock()
		ch := c.changed
		e.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-timer:
			return errTimedOut
		case <-ctx.Done():
			return fmt.Errorf("container %s: %w", shortID(c.rec.ID), ctx.Err())
		}
	}
}

// signal sends sig to c's init process and emits a kill event.
func (e *Engine) signal(ctx context.Context, c *container, sig syscall.Signal) error {
	if err := e.client.SignalProcess(ctx, c.rec.ID, c.rec.ID, sig); err != nil {
		return err
	}
	e.mu.Lock()
	e.emitLocked(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	e.mu.Unlock()
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
	if sig <= 0 {
		return fmt.Errorf("invalid signal %d: %w", sig, errdefs.ErrInvalidArgument)
	}
	e.mu.Lock()
	if !isActive(c.rec.State) {
		e.mu.Unlock()
		return fmt.Errorf("container %s is not running: %w", ref, errdefs.ErrFailedPrecondition)
	}
	var snap *snapshot
	if terminating[sig] && !c.rec.ManuallyStopped {
		c.rec.ManuallyStopped = true
		snap = e.snapLocked(c)
	}
	e.mu.Unlock()
	e.save(c, snap)
	if err := e.signal(ctx, c, sig); err != nil {
		if errdefs.IsFailedPrecondition(err) {
			return fmt.Errorf("container %s is not running: %w", ref, errdefs.ErrFailedPrecondition)
		}
		return err
	}
	return nil
}

// stopTimeout is the caller's timeout, else the engine's StopTimeout.
func (e *Engine) stopTimeout(timeout *time.Duration) time.Duration {
	if timeout == nil {
		return e.cfg.StopTimeout
	}
	return max(*timeout, 0)
}

// Restart stops the container (as Stop, with timeout) and starts it again.
func (e *Engine) Restart(ctx context.Context, ref string, timeout *time.Duration) error {
	c, err := e.resolve(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	d := e.stopTimeout(timeout)
	if err := e.stopLocked(ctx, c, d); err != nil {
		return err
	}
	e.mu.Lock()
	if c.removed {
		e.mu.Unlock()
		return fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	switch c.rec.State {
	case StateCreated, StateExited:
	default:
		e.mu.Unlock()
		return fmt.Errorf("container %s is %s: cannot restart it: %w", ref, c.rec.State, errdefs.ErrFailedPrecondition)
	}
	c.rec.ManuallyStopped = false
	c.rec.RestartCount, c.rec.RestartDelay = 0, 0
	e.emitLocked(c, "restart", map[string]string{"restart_count": "0", "reason": "manual"})
	e.mu.Unlock()
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
	c, err := e.resolve(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	from, to, what, ev := StateRunning, StatePaused, "pause", "pause"
	if !pause {
		from, to, what, ev = StatePaused, StateRunning, "unpause", "unpause"
	}
	e.mu.Lock()
	if c.rec.State != from {
		s := c.rec.State
		e.mu.Unlock()
		return fmt.Errorf("container %s is %s: cannot %s it (it must be %s): %w", ref, s, what, from, errdefs.ErrFailedPrecondition)
	}
	e.mu.Unlock()
	if pause {
		err = e.client.Pause(ctx, c.rec.ID)
	} else {
		err = e.client.Resume(ctx, c.rec.ID)
	}
	if err != nil {
		return err
	}
	e.mu.Lock()
	if err := transition(&c.rec, to); err != nil {
		e.mu.Unlock()
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
	e.mu.Unlock()
	e.save(c, snap)
	return nil
}

// --- remove ----------------------------------------------------------------

// Remove deletes a container, its record and its log. A running or paused
// container is refused with errdefs.ErrFailedPrecondition unless force, which
// kills it first. A pending restart is cancelled for good.
func (e *Engine) Remove(ctx context.Context, ref string, force bool) error {
	c, err := e.resolve(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	e.mu.Lock()
	if c.removed {
		e.mu.Unlock()
		return fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	e.cancelRestartLocked(c)
	active := isActive(c.rec.State)
	if active && !force {
		s := c.rec.State
		e.mu.Unlock()
		return fmt.Errorf("container %s is %s: stop it before removing it, or force the removal: %w", ref, s, errdefs.ErrFailedPrecondition)
	}
	if active {
		c.rec.ManuallyStopped = true
	}
	e.mu.Unlock()
	if active {
		if err := e.stopTask(ctx, c, 0); err != nil {
			return fmt.Errorf("remove %s: kill it: %w", ref, err)
		}
	}
	e.mu.Lock()
	if err := transition(&c.rec, StateRemoving); err != nil {
		e.mu.Unlock()
		return err
	}
	snap := e.snapLocked(c)
	e.mu.Unlock()
	e.save(c, snap)
	return e.finishRemove(ctx, c)
}

// finishRemove deletes a container in state removing from containerd, the
// engine and the disk. On failure the container becomes dead.
func (e *Engine) finishRemove(ctx context.Context, c *container) error {
	id := c.rec.ID
	e.health.Remove(id)
	// The exit handler deletes the exited task, but may have failed to
	// (containerd slow or restarting): a task left would block the delete.
	if _, _, err := e.client.DeleteTask(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		e.log.WithError(err).WithField("container", id).Debug("remove: delete the task")
	}
	if err := e.client.Delete(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		e.mu.Lock()
		_ = transition(&c.rec, StateDead)
		c.rec.Error = "remove: " + err.Error()
		snap := e.snapLocked(c)
		e.notifyLocked(c)
		e.mu.Unlock()
		e.save(c, snap)
		return err
	}
	e.mu.Lock()
	c.removed = true
	c.healthAdded = false
	delete(e.ctrs, id)
	if e.names[c.rec.Name] == id {
		delete(e.names, c.rec.Name)
	}
	c.attachs.closeAll()
	e.emitLocked(c, "destroy", nil)
	e.notifyLocked(c)
	e.mu.Unlock()
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.logw.Close()
	return e.store.remove(id)
}

// --- inspect, list, wait ---------------------------------------------------

// Inspect returns a copy of the container's record.
func (e *Engine) Inspect(ctx context.Context, ref string) (*Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.resolveLocked(ref)
	if err != nil {
		return nil, err
	}
	out := cloneRecord(c.rec)
	return &out, nil
}

// ListOptions select containers for List. Without All only running, paused
// and restarting containers are listed. Filters keys: "status" (a state),
// "label" ("k" or "k=v"), "name" (substring), "id" (prefix); values of one
// key are alternatives, keys must all match.
type ListOptions struct {
	All     bool
	Filters map[string][]string
}

// List returns copies of the selected records, newest first.
func (e *Engine) List(ctx context.Context, opts ListOptions) ([]*Container, error) {
	for k, vs := range opts.Filters {
		switch k {
		case "status":
			for _, v := range vs {
				if !knownState(State(v)) {
					return nil, fmt.Errorf("invalid status filter %q: want created, running, paused, restarting, exited, dead or removing: %w", v, errdefs.ErrInvalidArgument)
				}
			}
		case "label", "name", "id":
		default:
			return nil, fmt.Errorf("invalid filter %q: want status, label, name or id: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	e.mu.Lock()
	var out []*Container
	for _, c := range e.ctrs {
		r := &c.rec
		if !opts.All && !isActive(r.State) && r.State != StateRestarting {
			if len(opts.Filters["status"]) == 0 {
				continue
			}
		}
		if matchFilters(r, opts.Filters) {
			cp := cloneRecord(*r)
			out = append(out, &cp)
		}
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func matchFilters(r *Container, f map[string][]string) bool {
	any := func(vs []string, match func(string) bool) bool {
		if len(vs) == 0 {
			return true
		}
		for _, v := range vs {
			if match(v) {
				return true
			}
		}
		return false
	}
	return any(f["status"], func(v string) bool { return string(r.State) == v }) &&
		any(f["name"], func(v string) bool { return strings.Contains(r.Name, strings.TrimPrefix(v, "/")) }) &&
		any(f["id"], func(v string) bool { return strings.HasPrefix(r.ID, v) }) &&
		all(f["label"], func(v string) bool {
			k, val, hasVal := strings.Cut(v, "=")
			got, ok := r.Config.Labels[k]
			return ok && (!hasVal || got == val)
		})
}

func all(vs []string, match func(string) bool) bool {
	for _, v := range vs {
		if !match(v) {
			return false
		}
	}
	return true
}

// WaitCondition says what Wait waits for.
type WaitCondition string

// Wait conditions.
const (
	WaitNextExit   WaitCondition = "next-exit"   // the next exit of the main process
	WaitNotRunning WaitCondition = "not-running" // the container is created, exited or dead (the default)
	WaitRemoved    WaitCondition = "removed"     // the container is removed
)

// Wait blocks until cond holds and returns the last exit code. A container
// with a pending restart is still running for WaitNotRunning.
func (e *Engine) Wait(ctx context.Context, ref string, cond WaitCondition) (int, error) {
	c, err := e.resolve(ref)
	if err != nil {
		return 0, err
	}
	if cond == "" {
		cond = WaitNotRunning
	}
	switch cond {
	case WaitNextExit, WaitNotRunning, WaitRemoved:
	default:
		return 0, fmt.Errorf("invalid wait condition %q: want next-exit, not-running or removed: %w", cond, errdefs.ErrInvalidArgument)
	}
	e.mu.Lock()
	exits := c.exits
	e.mu.Unlock()
	var code int
	err = e.waitChange(ctx, c, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		code = c.rec.ExitCode
		switch cond {
		case WaitNextExit:
			return c.exits > exits || c.removed
		case WaitRemoved:
			return c.removed
		default:
			s := c.rec.State
			return c.removed || s == StateCreated || s == StateExited || s == StateDead
		}
	}, nil)
	return code, err
}
