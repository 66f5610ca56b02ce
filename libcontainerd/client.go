package libcontainerd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"

	"github.com/tendhq/tend/io/attach"
	"github.com/tendhq/tend/io/fifoset"
	"github.com/tendhq/tend/libcontainerd/internal/queue"
)

const (
	defaultSnapshotter = "overlayfs"
	defaultRuntime     = "io.containerd.runc.v2"
	// ioDrainTimeout bounds how long an exit waits for the process's output
	// to drain: a daemonised grandchild may hold the pipe open forever.
	ioDrainTimeout = 5 * time.Second
	// cleanupTimeout bounds clean-up that must outlive the caller's context.
	cleanupTimeout = 10 * time.Second
	// statusPollInterval paces the questions to a containerd coming back.
	statusPollInterval = 50 * time.Millisecond
)

var _ Client = (*client)(nil)

// Option configures New.
type Option func(*options)

type options struct {
	fifoRoot    string
	stateDir    string
	dialTimeout time.Duration
}

// WithFIFODir sets the private directory for stdio FIFOs (created 0700).
// The default is a directory under os.TempDir() named after the namespace;
// give each engine its own.
func WithFIFODir(dir string) Option { return func(o *options) { o.fifoRoot = dir } }

// WithContainerdStateDir tells the client containerd's state dir (its
// --state; /run/containerd by default). containerd 1.6 killed at the wrong
// moment can leave a task bundle behind without its task, and then fails
// every new task of that container; with the state dir, Start removes such a
// bundle when nothing uses it (logging a warning) and creates the task again.
// Without it Start fails with ErrFailedPrecondition naming the dir.
func WithContainerdStateDir(dir string) Option { return func(o *options) { o.stateDir = dir } }

// WithDialTimeout sets how long calls wait for an unreachable containerd
// before failing (default 10s).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

type client struct {
	cc       *containerd.Client
	ns       string
	backend  Backend
	fifoRoot string
	stateDir string // containerd's, or ""
	log      *log.Entry

	ctx    context.Context // carries the namespace; cancelled by Close
	cancel context.CancelFunc
	queue  queue.Queue    // per-container serial delivery to the Backend
	wg     sync.WaitGroup // the event loop and exit waiters

	mu         sync.Mutex
	containers map[string]*container
	genCtx     context.Context // the current event stream generation; cancelled when it breaks
	closed     bool
}

// container is what the client knows of one container. Its fields are
// guarded by client.mu.
type container struct {
	ctr      containerd.Container
	terminal bool // the init process has a terminal
	task     containerd.Task
	procs    map[string]*process // by process id: the container id for init
	oomSeen  bool                // an OOM was delivered for the current task
}

// process is one init or exec process whose exit the Backend must see
// exactly once: live is true from its start until that exit is queued.
type process struct {
	id    string
	proc  containerd.Process
	fifos *fifoset.Set
	pid   uint32 // 0 while an exec is being started
	live  bool
}

// New connects to containerd at address and starts the event stream for
// namespace; every task event of the containers this Client manages reaches
// backend. The connection is made lazily: New does not fail when containerd
// is not serving yet, the event stream waits for it.
func New(ctx context.Context, address, namespace string, backend Backend, opts ...Option) (Client, error) {
	if backend == nil {
		return nil, fmt.Errorf("libcontainerd.New: backend is nil: pass a Backend that receives task events: %w", errdefs.ErrInvalidArgument)
	}
	if err := identifiers.Validate(namespace); err != nil {
		return nil, fmt.Errorf("libcontainerd.New: namespace %q: %w", namespace, err)
	}
	o := options{dialTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.stateDir != "" && !filepath.IsAbs(o.stateDir) {
		return nil, fmt.Errorf("libcontainerd.New: containerd state dir %q: want an absolute path: %w", o.stateDir, errdefs.ErrInvalidArgument)
	}
	if o.fifoRoot == "" {
		o.fifoRoot = fmt.Sprintf("%s/tend-fifo-%s", os.TempDir(), namespace)
	}
	if err := os.MkdirAll(o.fifoRoot, 0o700); err != nil {
		return nil, fmt.Errorf("create FIFO dir: %w", err)
	}
	cc, err := containerd.New(address,
		containerd.WithDefaultNamespace(namespace),
		containerd.WithTimeout(o.dialTimeout),
		containerd.WithExtraDialOpts([]grpc.DialOption{
			// Reconnect quickly after containerd restarts, and let a call
			// made meanwhile wait for it instead of failing at once.
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: o.dialTimeout}),
			grpc.WithChainUnaryInterceptor(waitReady(o.dialTimeout)),
		}))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	c := &client{
		cc:         cc,
		ns:         namespace,
		backend:    backend,
		fifoRoot:   o.fifoRoot,
		stateDir:   o.stateDir,
		log:        log.G(ctx).WithField("namespace", namespace),
		containers: make(map[string]*container),
	}
	c.ctx, c.cancel = context.WithCancel(namespaces.WithNamespace(context.WithoutCancel(ctx), namespace))
	subscribed := make(chan struct{})
	c.wg.Add(1)
	go c.processEventStream(subscribed)
	// Wait until containerd has our subscription, so that no event of a
	// container created after New returns can be missed. A containerd that
	// is not up yet is not waited for: the stream reconciles once it is.
	select {
	case <-subscribed:
	case <-time.After(o.dialTimeout):
		c.log.Warn("containerd did not confirm the event subscription in time; continuing, the stream reconciles when it does")
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
	return c, nil
}

func (c *client) Version(ctx context.Context) (containerd.Version, error) {
	v, err := c.cc.Version(c.nsCtx(ctx))
	if err != nil {
		return v, fmt.Errorf("containerd version: %w", err)
	}
	return v, nil
}

// nsCtx puts the client's namespace on a caller's context.
func (c *client) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, c.ns)
}

func (c *client) Create(ctx context.Context, id string, spec *specs.Spec, opts ...CreateOption) error {
	ctx = c.nsCtx(ctx)
	if err := fifoset.ValidateID(id); err != nil {
		return err
	}
	if spec == nil {
		return fmt.Errorf("create %s: spec is nil: %w", id, errdefs.ErrInvalidArgument)
	}
	cfg := createConfig{snapshotter: defaultSnapshotter, runtime: defaultRuntime}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return fmt.Errorf("create %s: %w", id, err)
		}
	}
	var newOpts []containerd.NewContainerOpts
	if cfg.image != "" {
		img, err := c.cc.GetImage(ctx, cfg.image)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return fmt.Errorf("create %s: image %q not found: import it first: %w", id, cfg.image, errdefs.ErrNotFound)
			}
			return fmt.Errorf("create %s: image %q: %w", id, cfg.image, err)
		}
		unpacked, err := img.IsUnpacked(ctx, cfg.snapshotter)
		if err != nil {
			return fmt.Errorf("create %s: check unpack of %q: %w", id, cfg.image, err)
		}
		if !unpacked {
			if err := img.Unpack(ctx, cfg.snapshotter); err != nil {
				return fmt.Errorf("create %s: unpack %q with %s: %w", id, cfg.image, cfg.snapshotter, err)
			}
		}
		if spec, err = withImageConfig(ctx, spec, img); err != nil {
			return fmt.Errorf("create %s: %w", id, err)
		}
		newOpts = append(newOpts,
			containerd.WithImage(img),
			containerd.WithSnapshotter(cfg.snapshotter),
			containerd.WithNewSnapshot(id, img))
	} else if spec.Root == nil || spec.Root.Path == "" {
		return fmt.Errorf("create %s: spec has no root filesystem: set spec.Root.Path to a rootfs directory or use WithImage: %w", id, errdefs.ErrInvalidArgument)
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return fmt.Errorf("create %s: spec has no command: set spec.Process.Args: %w", id, errdefs.ErrInvalidArgument)
	}
	if len(cfg.init) > 0 {
		s, p := *spec, *spec.Process
		p.Args = append(append([]string(nil), cfg.init...), p.Args...)
		s.Process = &p
		spec = &s
	}
	newOpts = append(newOpts,
		containerd.WithSpec(spec),
		containerd.WithRuntime(cfg.runtime, cfg.runtimeOpts),
		containerd.WithContainerLabels(cfg.labels))
	newOpts = append(newOpts, cfg.extra...)

	ctr, err := c.cc.NewContainer(ctx, id, newOpts...)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: a container with this id already exists: pick another id or delete it: %w", id, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("create %s: %w", id, err)
	}
	c.mu.Lock()
	c.containers[id] = &container{ctr: ctr, terminal: spec.Process.Terminal, procs: map[string]*process{}}
	c.mu.Unlock()
	return nil
}

// withImageConfig returns a copy of spec whose unset command, environment
// and working directory come from the image, with the root filesystem set to
// the snapshot containerd mounts for the task.
func withImageConfig(ctx context.Context, spec *specs.Spec, img containerd.Image) (*specs.Spec, error) {
	ic, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of image %s: %w", img.Name(), err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	readonly := s.Root != nil && s.Root.Readonly
	s.Root = &specs.Root{Path: "rootfs", Readonly: readonly}
	if s.Process == nil {
		s.Process = &specs.Process{Cwd: "/"}
	}
	if len(s.Process.Args) == 0 {
		s.Process.Args = append(append([]string{}, ic.Config.Entrypoint...), ic.Config.Cmd...)
	}
	if (s.Process.Cwd == "" || s.Process.Cwd == "/") && ic.Config.WorkingDir != "" {
		s.Process.Cwd = ic.Config.WorkingDir
	}
	s.Process.Env = mergeEnv(ic.Config.Env, s.Process.Env)
	return &s, nil
}

// mergeEnv returns base overridden by over, by variable name, keeping order.
func mergeEnv(base, over []string) []string {
	name := func(kv string) string {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				return kv[:i]
			}
		}
		return kv
	}
	idx := map[string]int{}
	out := make([]string, 0, len(base)+len(over))
	for _, kv := range append(append([]string{}, base...), over...) {
		if i, ok := idx[name(kv)]; ok {
			out[i] = kv
			continue
		}
		idx[name(kv)] = len(out)
		out = append(out, kv)
	}
	return out
}

// container returns what the client knows of id, loading a container that
// an earlier run of the engine created.
func (c *client) container(ctx context.Context, id string) (*container, error) {
	if err := fifoset.ValidateID(id); err != nil {
		return nil, err
	}
	c.mu.Lock()
	ct := c.containers[id]
	c.mu.Unlock()
	if ct != nil {
		return ct, nil
	}
	ctr, err := c.cc.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("load spec of container %s: %w", id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct := c.containers[id]; ct != nil {
		return ct, nil
	}
	ct = &container{ctr: ctr, terminal: spec.Process != nil && spec.Process.Terminal, procs: map[string]*process{}}
	c.containers[id] = ct
	return ct, nil
}

// task returns the container's current task, or ErrFailedPrecondition when
// it has none.
func (c *client) task(ctx context.Context, id string) (*container, containerd.Task, error) {
	ct, err := c.container(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	t := ct.task
	c.mu.Unlock()
	if t != nil {
		return ct, t, nil
	}
	if _, err := ct.ctr.Task(ctx, nil); err == nil {
		return ct, nil, fmt.Errorf("container %s has a task from an earlier run of the engine: Restore it first: %w", id, errdefs.ErrFailedPrecondition)
	}
	return ct, nil, fmt.Errorf("container %s is not running: start it first: %w", id, errdefs.ErrFailedPrecondition)
}

// requireStatus fails with ErrFailedPrecondition unless the task is in one
// of the wanted states; what says what the caller wanted to do.
func requireStatus(ctx context.Context, id string, t containerd.Task, what string, want ...containerd.ProcessStatus) error {
	st, err := t.Status(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s is not running: cannot %s: %w", id, what, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("status of container %s: %w", id, err)
	}
	for _, w := range want {
		if st.Status == w {
			return nil
		}
	}
	return fmt.Errorf("container %s is %s: cannot %s: %w", id, st.Status, what, errdefs.ErrFailedPrecondition)
}

// ioCreator opens the process's FIFOs and hands them to the caller's stdio
// callback, or drains them when there is none. The IO it creates is a
// procIO: markStarted tells it the process runs and how to close its stdin.
func (c *client) ioCreator(set *fifoset.Set, cb StdioCallback) (create func() (cio.IO, error), markStarted func(containerd.Process)) {
	var pio *procIO // the IO of the last attempt
	create = func() (cio.IO, error) {
		pio = &procIO{c: c}
		// The FIFOs live as long as the process, not as long as the call.
		pipes, err := set.Open(c.ctx)
		if err != nil {
			return nil, fmt.Errorf("open stdio FIFOs in %s: %w", set.Dir, err)
		}
		if pipes.Stdin != nil {
			pio.stdin = &stdinPipe{WriteCloser: pipes.Stdin, pio: pio}
			pipes.Stdin = pio.stdin
		}
		if cb == nil {
			pio.IO = attach.New(set.Config(), pipes.Stdin, pipes.Stdout, pipes.Stderr, attach.Streams{})
			return pio, nil
		}
		sio, err := cb(set.Config(), pipes)
		if err != nil {
			pipes.Close()
			return nil, fmt.Errorf("attach stdio: %w", err)
		}
		pio.IO = sio
		return pio, nil
	}
	return create, func(p containerd.Process) {
		if pio != nil {
			pio.markStarted(p)
		}
	}
}

// procIO bounds what containerd's client waits for, and passes the end of
// the engine's stdin on to the process.
//
// The client calls Cancel then Wait before it deletes a process, and inside
// a Start that failed. A process that never started sends no output: Wait
// closes the pipes at once (the shim may keep its ends open, and Wait would
// never return). A started one gets ioDrainTimeout to finish its output,
// since a daemonised grandchild may hold the pipe open forever.
//
// The shim does not pass EOF on its stdin FIFO to the process: when the
// engine closes its stdin end, procIO asks containerd to close the process's
// stdin (CloseIO), so `echo x | engine exec -i c cat` ends.
type procIO struct {
	cio.IO
	c *client

	stdin    *stdinPipe // nil without stdin
	mu       sync.Mutex
	started  atomic.Bool
	proc     containerd.Process // set once started
	stdinEOF bool               // the engine closed stdin before the start
	closing  bool               // Close was called: no CloseIO needed
	holding  bool               // a Start call is in flight: see hold
	held     bool               // Cancel or Close was called while holding
}

func (p *procIO) markStarted(proc containerd.Process) {
	p.mu.Lock()
	p.proc = proc
	eof := p.stdinEOF
	p.mu.Unlock()
	p.started.Store(true)
	if eof {
		p.c.closeStdinAsync(proc)
	}
}

// stdinClosed is called when the engine closed its end of the stdin FIFO.
func (p *procIO) stdinClosed() {
	p.mu.Lock()
	proc, closing := p.proc, p.closing
	if proc == nil {
		p.stdinEOF = true
	}
	p.mu.Unlock()
	if proc != nil && !closing {
		p.c.closeStdinAsync(proc)
	}
}

// hold makes Cancel and Close wait for the outcome of a Start call.
// containerd's client cancels and closes a task's IO when the call fails,
// but a Start that containerd's death broke may have started the task
// (startedAnyway), and its output must still be read.
func (p *procIO) hold() {
	p.mu.Lock()
	p.holding = true
	p.mu.Unlock()
}

// release ends hold. When the start failed, a Cancel or Close asked for
// meanwhile is done now.
func (p *procIO) release(failed bool) {
	p.mu.Lock()
	held := p.held
	p.holding, p.held = false, false
	p.mu.Unlock()
	if held && failed {
		p.Close()
	}
}

func (p *procIO) Cancel() {
	p.mu.Lock()
	if p.holding {
		p.held = true
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.IO.Cancel()
}

func (p *procIO) Close() error {
	p.mu.Lock()
	if p.holding {
		p.held = true
		p.mu.Unlock()
		return nil
	}
	p.closing = true
	p.mu.Unlock()
	return p.IO.Close()
}

// stdinPipe tells its procIO when the engine closes stdin.
type stdinPipe struct {
	io.WriteCloser
	pio  *procIO
	once sync.Once
}

func (s *stdinPipe) Close() error {
	err := s.WriteCloser.Close()
	s.once.Do(s.pio.stdinClosed)
	return err
}

// closeQuietly closes the engine's end without the asynchronous CloseIO:
// the caller does it.
func (s *stdinPipe) closeQuietly() {
	s.once.Do(func() {})
	s.WriteCloser.Close()
}

// closeStdinAsync closes a process's stdin through containerd without
// blocking the caller (a copy goroutine); the goroutine is the client's.
func (c *client) closeStdinAsync(proc containerd.Process) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, cleanupTimeout)
		defer cancel()
		if err := proc.CloseIO(ctx, containerd.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
			c.log.WithError(err).WithField("process", proc.ID()).Debug("close stdin after EOF")
		}
	}()
}

func (p *procIO) Wait() {
	if !p.started.Load() {
		p.IO.Close()
		p.IO.Wait()
		return
	}
	done := make(chan struct{})
	go func() {
		p.IO.Wait()
		close(done)
	}()
	t := time.NewTimer(ioDrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		p.IO.Close()
		<-done
	}
}

func (c *client) Start(ctx context.Context, id string, opts ...StartOption) (_ uint32, retErr error) {
	ctx = c.nsCtx(ctx)
	var cfg startConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	ct, err := c.container(ctx, id)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	old := ct.task
	c.mu.Unlock()
	if old != nil {
		if _, err := old.Status(ctx); !errdefs.IsNotFound(err) {
			return 0, fmt.Errorf("start %s: the container already has a task: delete it with DeleteTask first: %w", id, errdefs.ErrFailedPrecondition)
		}
		// containerd lost the old task while it was down.
		c.forgetTask(ct, id, old, nil)
	}
	set, err := fifoset.New(c.fifoRoot, id, id, cfg.stdin, ct.terminal)
	if errdefs.IsAlreadyExists(err) {
		// FIFOs left by a task that was deleted behind our back: remove them
		// unless containerd still runs that task.
		if _, terr := ct.ctr.Task(ctx, nil); terr == nil {
			return 0, fmt.Errorf("start %s: containerd already has a task for it: Restore or DeleteTask it first: %w", id, errdefs.ErrFailedPrecondition)
		}
		if rerr := fifoset.RemoveContainer(c.fifoRoot, id); rerr != nil {
			return 0, fmt.Errorf("start %s: remove stale FIFOs: %w", id, rerr)
		}
		set, err = fifoset.New(c.fifoRoot, id, id, cfg.stdin, ct.terminal)
	}
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	keepFIFOs := false // the task may outlive a failed Start: Restore needs them
	defer func() {
		if retErr != nil && !keepFIFOs {
			set.Remove()
		}
	}()
	taskOpts := cfg.taskOpts
	restore, err := c.planRestore(ctx, id, &cfg)
	if err != nil {
		return 0, err
	}
	if restore != nil {
		defer func() { restore.done(retErr != nil) }()
		taskOpts = append(append([]containerd.NewTaskOpts{}, taskOpts...), restore.opts...)
	}
	create, markStarted := c.ioCreator(set, cfg.stdio)
	t, err := ct.ctr.NewTask(ctx, func(string) (cio.IO, error) { return create() }, taskOpts...)
	if errdefs.IsAlreadyExists(err) && c.removeHalfMadeTask(ctx, ct, id) {
		t, err = ct.ctr.NewTask(ctx, func(string) (cio.IO, error) { return create() }, taskOpts...)
	}
	if dir := staleBundle(err, c.ns, id); dir != "" {
		if rerr := c.removeStaleBundle(ctx, ct, id, dir); rerr != nil {
			return 0, fmt.Errorf("start %s: %w", id, rerr)
		}
		t, err = ct.ctr.NewTask(ctx, func(string) (cio.IO, error) { return create() }, taskOpts...)
	}
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return 0, fmt.Errorf("start %s: containerd already has a task for it: Restore or DeleteTask it first: %w", id, errdefs.ErrFailedPrecondition)
		}
		if restore != nil {
			return 0, restore.error(id, err)
		}
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	p := &process{id: id, proc: t, fifos: set, pid: t.Pid(), live: true}
	c.mu.Lock()
	ct.task, ct.oomSeen = t, false
	ct.procs[id] = p
	c.mu.Unlock()
	pio := t.IO().(*procIO) // made by create
	pio.hold()
	err = t.Start(ctx)
	if err != nil && errdefs.IsUnavailable(err) && c.startedAnyway(ctx, t) {
		err = nil
	}
	pio.release(err != nil)
	if err != nil {
		c.mu.Lock()
		ct.task = nil
		delete(ct.procs, id)
		c.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, derr := t.Delete(cctx, containerd.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
			keepFIFOs = true
			c.log.WithError(derr).WithField("container", id).Warn("delete task after failed start; it may live on: Restore it")
		}
		if restore != nil {
			return 0, restore.error(id, err)
		}
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	markStarted(t)
	if restore != nil {
		// A restored task has its pid only once CRIU restored it.
		c.mu.Lock()
		p.pid = t.Pid()
		c.mu.Unlock()
	}
	return p.pid, nil
}

// startedAnyway finds out, once containerd is back, whether a task whose
// Start failed because containerd went away did start. It did if it runs or
// ran: then it is kept, and the reconcile after the reconnect delivers its
// exit. One that never started is started now.
func (c *client) startedAnyway(ctx context.Context, t containerd.Task) bool {
	st, err := statusWhenBack(ctx, t)
	if err != nil {
		c.log.WithError(err).WithField("container", t.ID()).Warn("containerd went away during Start and cannot say whether the task started: deleting it")
		return false
	}
	switch st.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing, containerd.Stopped:
		c.log.WithField("container", t.ID()).Info("containerd went away during Start, but the task started")
		return true
	case containerd.Created:
		return t.Start(ctx) == nil
	}
	return false
}

// statusWhenBack asks for the status of t until containerd answers, for at
// most cleanupTimeout: right after containerd went away calls fail at once
// (connection refused) until the connection notices, and a task that did
// start must not be taken for one that did not.
func statusWhenBack(ctx context.Context, t containerd.Task) (containerd.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	tick := time.NewTicker(statusPollInterval)
	defer tick.Stop()
	for {
		st, err := t.Status(ctx)
		if !errdefs.IsUnavailable(err) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, err
		case <-tick.C:
		}
	}
}

// removeHalfMadeTask deletes a task left behind by a NewTask that
// containerd died during, and reports whether the id is free again. Such a
// task is in one of two states: containerd 1.6 says it exists when asked to
// create one but not when asked for it (the shim started, the task was never
// created), or it was created but never started (containerd died before
// NewTask returned). Start calls it only when the client has no task for the
// container, so nobody holds the stdio of a created task or will start it.
func (c *client) removeHalfMadeTask(ctx context.Context, ct *container, id string) bool {
	var err error
	t, terr := ct.ctr.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(terr):
		_, err = c.cc.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id})
		err = errgrpc.ToNative(err)
	case terr != nil:
		return false
	default:
		var created bool
		if created, err = deleteCreated(ctx, t); !created {
			return false
		}
	}
	if err != nil && !errdefs.IsNotFound(err) {
		c.log.WithError(err).WithField("container", id).Warn("delete half-made task")
		return false
	}
	c.log.WithField("container", id).Info("deleted a half-made task left by a containerd crash")
	return true
}

// deleteUnstarted deletes a task the client does not know when it was
// created but never started: it never ran, so no output or exit is owed.
// Any other task the client does not know fails with unknown, the error
// task gave for it.
func (c *client) deleteUnstarted(ctx context.Context, ct *container, id string, unknown error) error {
	t, err := ct.ctr.Task(ctx, nil)
	if err != nil {
		return unknown
	}
	created, err := deleteCreated(ctx, t)
	switch {
	case !created:
		return unknown
	case err != nil:
		return fmt.Errorf("delete the never-started task of %s: %w", id, err)
	}
	c.log.WithField("container", id).Info("deleted a task that was created but never started")
	return nil
}

// deleteCreated deletes t, killing its init, when t was created but never
// started, and reports whether it was such a task.
func deleteCreated(ctx context.Context, t containerd.Task) (bool, error) {
	st, err := t.Status(ctx)
	if err != nil || st.Status != containerd.Created {
		return false, nil
	}
	if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return true, err
	}
	return true, nil
}

// process returns the live or exited process processID of the container.
func (c *client) process(ctx context.Context, id, processID string) (containerd.Process, error) {
	ct, t, err := c.task(ctx, id)
	if err != nil {
		return nil, err
	}
	if processID == "" || processID == id {
		return t, nil
	}
	c.mu.Lock()
	p := ct.procs[processID]
	c.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("no such process %s in container %s: %w", processID, id, errdefs.ErrNotFound)
	}
	return p.proc, nil
}

func (c *client) SignalProcess(ctx context.Context, id, processID string, sig syscall.Signal) error {
	ctx = c.nsCtx(ctx)
	p, err := c.process(ctx, id, processID)
	if err != nil {
		return err
	}
	if err := p.Kill(ctx, sig); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("signal %v to %s/%s: the process is not running: %w", sig, id, processID, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("signal %v to %s/%s: %w", sig, id, processID, err)
	}
	return nil
}

func (c *client) Exec(ctx context.Context, id, execID string, spec *specs.Process, opts ...StartOption) (_ uint32, retErr error) {
	ctx = c.nsCtx(ctx)
	if err := fifoset.ValidateID(execID); err != nil {
		return 0, fmt.Errorf("exec id: %w", err)
	}
	if spec == nil || len(spec.Args) == 0 {
		return 0, fmt.Errorf("exec %s in %s: no command: set spec.Args: %w", execID, id, errdefs.ErrInvalidArgument)
	}
	var cfg startConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	ct, t, err := c.task(ctx, id)
	if err != nil {
		return 0, err
	}
	if err := requireStatus(ctx, id, t, "exec into it", containerd.Running); err != nil {
		return 0, err
	}
	p := &process{id: execID, live: true}
	c.mu.Lock()
	if ct.procs[execID] != nil {
		c.mu.Unlock()
		return 0, fmt.Errorf("exec %s in %s: the exec id is in use: %w", execID, id, errdefs.ErrAlreadyExists)
	}
	ct.procs[execID] = p // reserves the id; the exit may arrive before Start returns
	c.mu.Unlock()
	defer func() {
		if retErr != nil {
			c.mu.Lock()
			delete(ct.procs, execID)
			c.mu.Unlock()
		}
	}()
	set, err := fifoset.New(c.fifoRoot, id, execID, cfg.stdin, spec.Terminal)
	if err != nil {
		return 0, fmt.Errorf("exec %s in %s: %w", execID, id, err)
	}
	p.fifos = set
	defer func() {
		if retErr != nil {
			set.Remove()
		}
	}()
	create, markStarted := c.ioCreator(set, cfg.stdio)
	proc, err := t.Exec(ctx, execID, spec, func(string) (cio.IO, error) { return create() })
	if err != nil {
		return 0, fmt.Errorf("exec %s in %s: %w", execID, id, err)
	}
	c.mu.Lock()
	p.proc = proc
	c.mu.Unlock()
	if err := proc.Start(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, derr := proc.Delete(cctx, containerd.WithProcessKill); derr != nil {
			c.log.WithError(derr).WithField("container", id).WithField("exec", execID).Warn("delete exec after failed start")
		}
		return 0, fmt.Errorf("exec %s in %s: %w", execID, id, err)
	}
	markStarted(proc)
	pid := proc.Pid()
	c.mu.Lock()
	p.pid = pid
	c.mu.Unlock()
	return pid, nil
}

func (c *client) ResizeTerminal(ctx context.Context, id, processID string, width, height uint32) error {
	ctx = c.nsCtx(ctx)
	p, err := c.process(ctx, id, processID)
	if err != nil {
		return err
	}
	if err := p.Resize(ctx, width, height); err != nil {
		return fmt.Errorf("resize terminal of %s/%s: %w", id, processID, err)
	}
	return nil
}

func (c *client) CloseStdin(ctx context.Context, id, processID string) error {
	ctx = c.nsCtx(ctx)
	p, err := c.process(ctx, id, processID)
	if err != nil {
		return err
	}
	// The shim passes EOF on only when every writer of the FIFO is gone:
	// the engine's end too.
	if pio, ok := p.IO().(*procIO); ok && pio.stdin != nil {
		pio.stdin.closeQuietly()
	}
	if err := p.CloseIO(ctx, containerd.WithStdinCloser); err != nil {
		return fmt.Errorf("close stdin of %s/%s: %w", id, processID, err)
	}
	return nil
}

func (c *client) Pause(ctx context.Context, id string) error { return c.freeze(ctx, id, true) }

func (c *client) Resume(ctx context.Context, id string) error { return c.freeze(ctx, id, false) }

// freeze pauses (or resumes) the container's task after checking that it
// runs (or is paused).
func (c *client) freeze(ctx context.Context, id string, pause bool) error {
	ctx = c.nsCtx(ctx)
	_, t, err := c.task(ctx, id)
	if err != nil {
		return err
	}
	verb, want, do := "pause", containerd.Running, t.Pause
	if !pause {
		verb, want, do = "resume", containerd.Paused, t.Resume
	}
	if err := requireStatus(ctx, id, t, verb+" it", want); err != nil {
		return err
	}
	if err := do(ctx); err != nil {
		return fmt.Errorf("%s %s: %w", verb, id, err)
	}
	return nil
}

func (c *client) Stats(ctx context.Context, id string) (*Stats, error) {
	ctx = c.nsCtx(ctx)
	_, t, err := c.task(ctx, id)
	if err != nil {
		return nil, err
	}
	m, err := t.Metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", id, err)
	}
	return statsFromMetric(m)
}

func (c *client) ListPids(ctx context.Context, id string) ([]uint32, error) {
	ctx = c.nsCtx(ctx)
	_, t, err := c.task(ctx, id)
	if err != nil {
		return nil, err
	}
	infos, err := t.Pids(ctx)
	if err != nil {
		return nil, fmt.Errorf("pids of %s: %w", id, err)
	}
	pids := make([]uint32, 0, len(infos))
	for _, i := range infos {
		pids = append(pids, i.Pid)
	}
	return pids, nil
}

func (c *client) UpdateResources(ctx context.Context, id string, resources *specs.LinuxResources) error {
	ctx = c.nsCtx(ctx)
	if resources == nil {
		return fmt.Errorf("update %s: resources are nil: %w", id, errdefs.ErrInvalidArgument)
	}
	_, t, err := c.task(ctx, id)
	if err != nil {
		return err
	}
	if err := t.Update(ctx, containerd.WithResources(resources)); err != nil {
		return fmt.Errorf("update resources of %s: %w", id, err)
	}
	return nil
}

func (c *client) Restore(ctx context.Context, id string, opts ...StartOption) (RestoreResult, error) {
	ctx = c.nsCtx(ctx)
	var cfg startConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	ct, err := c.container(ctx, id)
	if err != nil {
		return RestoreResult{}, err
	}
	// A task created but never started (a Start interrupted by the
	// engine's death) never ran: it is not alive and owes no exit.
	if t, err := ct.ctr.Task(ctx, nil); err == nil {
		if st, err := t.Status(ctx); err == nil && st.Status == containerd.Created {
			return RestoreResult{}, fmt.Errorf("restore %s: its task was created but never started (a start was interrupted): delete it with DeleteTask, then start the container: %w", id, errdefs.ErrFailedPrecondition)
		}
	}
	var (
		set         *fifoset.Set
		markStarted func(containerd.Process)
	)
	t, err := ct.ctr.Task(ctx, func(fs *cio.FIFOSet) (cio.IO, error) {
		set = fifoset.FromPaths(fs.Stdin, fs.Stdout, fs.Stderr, fs.Terminal)
		var create func() (cio.IO, error)
		create, markStarted = c.ioCreator(set, cfg.stdio)
		return create()
	})
	if err != nil {
		if errdefs.IsNotFound(err) {
			return RestoreResult{}, fmt.Errorf("restore %s: containerd has no task for it (it exited and was cleaned up, or never started): %w", id, errdefs.ErrNotFound)
		}
		return RestoreResult{}, fmt.Errorf("restore %s: %w", id, err)
	}
	if markStarted != nil {
		markStarted(t)
	}
	st, err := t.Status(ctx)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore %s: status: %w", id, err)
	}
	pid := t.Pid()
	c.mu.Lock()
	ct.task, ct.oomSeen = t, false
	ct.procs[id] = &process{id: id, proc: t, fifos: set, pid: pid, live: true}
	gen := c.genCtx
	c.mu.Unlock()
	// The exit may have been published before we knew the process: a waiter
	// catches it either way, and the exactly-once check drops the double.
	c.waitExit(gen, id, id, t, pid)
	if st.Status == containerd.Stopped {
		return RestoreResult{Pid: pid, ExitCode: st.ExitStatus, ExitedAt: st.ExitTime}, nil
	}
	return RestoreResult{Alive: true, Pid: pid}, nil
}

func (c *client) DeleteTask(ctx context.Context, id string) (uint32, time.Time, error) {
	ctx = c.nsCtx(ctx)
	ct, t, err := c.task(ctx, id)
	if errdefs.IsFailedPrecondition(err) && ct != nil {
		return 0, time.Time{}, c.deleteUnstarted(ctx, ct, id, err)
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	st, err := t.Status(ctx)
	switch {
	case errdefs.IsNotFound(err):
		// containerd lost the task (it was down while the task ended):
		// there is nothing to delete, but the exit is still owed.
		code, at := c.forgetTask(ct, id, t, nil)
		return code, at, nil
	case err != nil:
		return 0, time.Time{}, fmt.Errorf("status of container %s: %w", id, err)
	case st.Status != containerd.Stopped && st.Status != containerd.Created:
		return 0, time.Time{}, fmt.Errorf("container %s is %s: cannot delete its task (stop it first): %w", id, st.Status, errdefs.ErrFailedPrecondition)
	}
	if st.Status == containerd.Stopped {
		drainIO(t.IO())
	}
	exit, err := t.Delete(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return 0, time.Time{}, fmt.Errorf("delete task of %s: %w", id, err)
	}
	code, at := c.forgetTask(ct, id, t, exit)
	return code, at, nil
}

// forgetTask drops a deleted or lost task: it delivers the init's exit if
// it is still owed (unknown status when st is nil), and removes the FIFOs.
func (c *client) forgetTask(ct *container, id string, t containerd.Task, st *containerd.ExitStatus) (uint32, time.Time) {
	code, at, reason := uint32(ExitCodeUnknown), time.Now(), unknownExitReason
	if st != nil {
		code, at, reason = st.ExitCode(), st.ExitTime(), ""
	} else if pio := t.IO(); pio != nil {
		pio.Close()
	}
	c.mu.Lock()
	p := ct.procs[id]
	var pid uint32
	if p != nil {
		pid = p.pid
	}
	c.mu.Unlock()
	// Deleting must not swallow an exit the stream has not delivered yet.
	c.deliverExit(id, id, pid, code, at, reason)
	c.mu.Lock()
	if ct.task == t {
		ct.task = nil
		for pid, p := range ct.procs {
			if !p.live {
				delete(ct.procs, pid)
			}
		}
	}
	c.mu.Unlock()
	if p != nil && p.fifos != nil {
		if err := p.fifos.Remove(); err != nil {
			c.log.WithError(err).WithField("container", id).Warn("remove stdio FIFOs")
		}
	}
	return code, at
}

func (c *client) Delete(ctx context.Context, id string) error {
	ctx = c.nsCtx(ctx)
	ct, err := c.container(ctx, id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	hasTask := ct.task != nil
	c.mu.Unlock()
	if hasTask {
		return fmt.Errorf("delete %s: the container has a task: stop it and DeleteTask first: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err := ct.ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		if errdefs.IsFailedPrecondition(err) {
			return fmt.Errorf("delete %s: containerd still has a task for it: Restore and stop it first: %w", id, err)
		}
		return fmt.Errorf("delete %s: %w", id, err)
	}
	c.mu.Lock()
	delete(c.containers, id)
	c.mu.Unlock()
	if err := fifoset.RemoveContainer(c.fifoRoot, id); err != nil {
		c.log.WithError(err).WithField("container", id).Warn("remove stdio FIFO dir")
	}
	return nil
}

func (c *client) Status(ctx context.Context, id string) (Status, error) {
	ctx = c.nsCtx(ctx)
	ct, err := c.container(ctx, id)
	if err != nil {
		return StatusUnknown, err
	}
	c.mu.Lock()
	t := ct.task
	c.mu.Unlock()
	if t == nil {
		// A task of an earlier run that was not restored yet still counts.
		if t, err = ct.ctr.Task(ctx, nil); err != nil {
			if errdefs.IsNotFound(err) {
				return StatusNoTask, nil
			}
			return StatusUnknown, fmt.Errorf("status of %s: %w", id, err)
		}
	}
	st, err := t.Status(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return StatusNoTask, nil
		}
		return StatusUnknown, fmt.Errorf("status of %s: %w", id, err)
	}
	return Status(st.Status), nil
}

func (c *client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.queue.Close()
	return c.cc.Close()
}

var reconnectBackoff = backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}

// waitReady makes a unary call wait, for at most timeout, until the
// connection to containerd is up again, so a call made during a containerd
// restart succeeds instead of failing with Unavailable. Long calls (Wait)
// are not bounded: only the wait for the connection is.
func waitReady(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if s := cc.GetState(); s != connectivity.Ready {
			wctx, cancel := context.WithTimeout(ctx, timeout)
			for s != connectivity.Ready {
				if s == connectivity.TransientFailure || s == connectivity.Idle {
					cc.ResetConnectBackoff()
					cc.Connect()
				}
				if !cc.WaitForStateChange(wctx, s) {
					break
				}
				s = cc.GetState()
			}
			cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// drainIO waits, for a bounded time (procIO), until a stopped process's
// output reached its end.
//
// Callers know the process ran (it exited, or its task is stopped): an exit
// can be handled before the Start call that began the process has returned,
// and the output of such a fast process must not be dropped as if it had
// never started.
func drainIO(pio cio.IO) {
	if pio == nil {
		return
	}
	if p, ok := pio.(*procIO); ok {
		p.started.Store(true)
	}
	pio.Cancel()
	pio.Wait()
}
