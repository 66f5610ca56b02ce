package backend

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/healthcheck/healthchecktest"
	"github.com/tendhq/tend/libcontainerd"
)

// fakeClient is an in-memory libcontainerd.Client. Exits are delivered to
// the Backend synchronously, by exit or by SignalProcess.
type fakeClient struct {
	libcontainerd.Client // unimplemented methods panic

	mu       sync.Mutex
	backend  libcontainerd.Backend
	ctrs     map[string]*fakeCtr
	nextPid  uint32
	starts   chan string // receives the container id of every successful Start
	startErr error
	// ignoreTerm makes tasks survive SIGTERM.
	ignoreTerm bool
	// execExit is the exit code of exec processes (probes); <0 hangs.
	execExit int
	signals  []syscall.Signal
	wg       sync.WaitGroup // asynchronous deliveries
	// startGates hold a Start of a container until the gate is closed;
	// startHeld receives the id once such a Start is held.
	startGates map[string]chan struct{}
	startHeld  chan string
	// clock, when set, gives exits their time (as containerd would).
	clock interface{ Now() time.Time }
	// execGate, when set, holds every Exec until it is closed or its ctx
	// ends; execHeld receives the container id once an Exec is held.
	execGate chan struct{}
	execHeld chan string
	// execsHeld counts the Execs held now; probeLiveAtKill counts the
	// terminating signals to a task sent while one was.
	execsHeld       int
	probeLiveAtKill int
	// deleteErr, when set, fails every DeleteTask (containerd went away).
	deleteErr error
	// deleteGate, when set, holds every DeleteTask until it is closed;
	// deleteHeld receives the container id once one is held.
	deleteGate chan struct{}
	deleteHeld chan string
	// stoppedSignalErr, when set, is what a signal to a stopped task
	// answers (a shim that its task's deletion is shutting down).
	stoppedSignalErr error
	signalRefused    chan string // receives the id when it was answered
}

// pidExited tells whether pid is no running task's (the engine's
// initExited).
func (f *fakeClient) pidExited(pid int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.ctrs {
		if int(c.pid) == pid && (c.task == libcontainerd.StatusRunning || c.task == libcontainerd.StatusPaused) {
			return false
		}
	}
	return true
}

func (f *fakeClient) now() time.Time {
	if f.clock != nil {
		return f.clock.Now()
	}
	return time.Now()
}

type fakeCtr struct {
	task    libcontainerd.Status // StatusNoTask when none
	pid     uint32
	stdio   libcontainerd.StdioCallback
	deleted bool
	spec    *specs.Spec // as Create got it
	// exitedAt is the time of the stopped task's exit.
	exitedAt time.Time
}

func newFakeClient() *fakeClient {
	return &fakeClient{ctrs: map[string]*fakeCtr{}, nextPid: 1000, starts: make(chan string, 100),
		startGates: map[string]chan struct{}{}, startHeld: make(chan string, 100)}
}

// gateStart makes the next Starts of id wait inside the client until the
// returned function is called.
func (f *fakeClient) gateStart(id string) (release func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.startGates[id] = gate
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.startGates, id)
			f.mu.Unlock()
			close(gate)
		})
	}
}

func (f *fakeClient) factory() clientFactory {
	return func(_ context.Context, b libcontainerd.Backend, _ string) (libcontainerd.Client, error) {
		f.mu.Lock()
		f.backend = b
		f.mu.Unlock()
		return f, nil
	}
}

func (f *fakeClient) Create(_ context.Context, id string, spec *specs.Spec, _ ...libcontainerd.CreateOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ctrs[id]; ok {
		return errdefs.ErrAlreadyExists
	}
	f.ctrs[id] = &fakeCtr{task: libcontainerd.StatusNoTask, spec: spec}
	return nil
}

func (f *fakeClient) Start(_ context.Context, id string, opts ...libcontainerd.StartOption) (uint32, error) {
	f.mu.Lock()
	gate := f.startGates[id]
	f.mu.Unlock()
	if gate != nil {
		f.startHeld <- id
		<-gate
	}
	f.mu.Lock()
	c := f.ctrs[id]
	if c == nil {
		f.mu.Unlock()
		return 0, fmt.Errorf("no such container %s: %w", id, errdefs.ErrNotFound)
	}
	if f.startErr != nil {
		err := f.startErr
		f.mu.Unlock()
		return 0, err
	}
	if c.task != libcontainerd.StatusNoTask {
		f.mu.Unlock()
		return 0, fmt.Errorf("has a task: %w", errdefs.ErrFailedPrecondition)
	}
	f.nextPid++
	c.task, c.pid = libcontainerd.StatusRunning, f.nextPid
	pid := c.pid
	f.mu.Unlock()
	f.starts <- id
	return pid, nil
}

// exit makes the task of id exit with code and delivers the exit.
func (f *fakeClient) exit(id string, code uint32) {
	f.mu.Lock()
	c := f.ctrs[id]
	if c == nil || c.task != libcontainerd.StatusRunning && c.task != libcontainerd.StatusPaused {
		f.mu.Unlock()
		return
	}
	c.task, c.exitedAt = libcontainerd.StatusStopped, f.now()
	pid, b, at := c.pid, f.backend, c.exitedAt
	f.mu.Unlock()
	b.ProcessEvent(context.Background(), id, libcontainerd.EventExit, libcontainerd.EventInfo{ContainerID: id, ProcessID: id, Pid: pid, ExitCode: code, ExitedAt: at})
}

func (f *fakeClient) SignalProcess(_ context.Context, id, processID string, sig syscall.Signal) error {
	f.mu.Lock()
	c := f.ctrs[id]
	if c != nil && c.task == libcontainerd.StatusStopped && f.stoppedSignalErr != nil {
		err := f.stoppedSignalErr
		f.mu.Unlock()
		f.signalRefused <- id
		return err
	}
	if c == nil || c.task != libcontainerd.StatusRunning && c.task != libcontainerd.StatusPaused {
		f.mu.Unlock()
		return fmt.Errorf("not running: %w", errdefs.ErrFailedPrecondition)
	}
	f.signals = append(f.signals, sig)
	if (processID == id || processID == "") && (sig == syscall.SIGTERM || sig == syscall.SIGKILL) {
		f.probeLiveAtKill += f.execsHeld
	}
	ignore := sig == syscall.SIGTERM && f.ignoreTerm
	f.mu.Unlock()
	if processID != id && processID != "" {
		return nil
	}
	if !ignore && (sig == syscall.SIGTERM || sig == syscall.SIGKILL) {
		f.exit(id, 128+uint32(sig))
	}
	return nil
}

// taskCall answers a call to the task of id as containerd would: nil while
// it runs, stoppedSignalErr (when set) once it stopped, else not running.
func (f *fakeClient) taskCall(id string) error {
	f.mu.Lock()
	c := f.ctrs[id]
	if c != nil && (c.task == libcontainerd.StatusRunning || c.task == libcontainerd.StatusPaused) {
		f.mu.Unlock()
		return nil
	}
	err := f.stoppedSignalErr
	f.mu.Unlock()
	if err == nil || c == nil || c.task != libcontainerd.StatusStopped {
		return fmt.Errorf("not running: %w", errdefs.ErrFailedPrecondition)
	}
	f.signalRefused <- id
	return err
}

func (f *fakeClient) ListPids(_ context.Context, id string) ([]uint32, error) {
	if err := f.taskCall(id); err != nil {
		return nil, err
	}
	return []uint32{uint32(os.Getpid())}, nil
}

func (f *fakeClient) Stats(_ context.Context, id string) (*libcontainerd.Stats, error) {
	if err := f.taskCall(id); err != nil {
		return nil, err
	}
	return &libcontainerd.Stats{}, nil
}

func (f *fakeClient) ResizeTerminal(_ context.Context, id, _ string, _, _ uint32) error {
	return f.taskCall(id)
}

func (f *fakeClient) DeleteTask(_ context.Context, id string) (uint32, time.Time, error) {
	f.mu.Lock()
	gate, held := f.deleteGate, f.deleteHeld
	f.mu.Unlock()
	if gate != nil {
		held <- id
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[id]
	if f.deleteErr != nil {
		return 0, time.Time{}, f.deleteErr
	}
	if c == nil || c.task == libcontainerd.StatusNoTask {
		return 0, time.Time{}, fmt.Errorf("no task: %w", errdefs.ErrFailedPrecondition)
	}
	if c.task != libcontainerd.StatusStopped && c.task != libcontainerd.StatusCreated {
		return 0, time.Time{}, fmt.Errorf("running: %w", errdefs.ErrFailedPrecondition)
	}
	c.task = libcontainerd.StatusNoTask
	return 0, time.Time{}, nil
}

func (f *fakeClient) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[id]
	if c == nil {
		return errdefs.ErrNotFound
	}
	if c.task != libcontainerd.StatusNoTask {
		return errdefs.ErrFailedPrecondition
	}
	delete(f.ctrs, id)
	return nil
}

func (f *fakeClient) Status(_ context.Context, id string) (libcontainerd.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[id]
	if c == nil {
		return libcontainerd.StatusUnknown, errdefs.ErrNotFound
	}
	return c.task, nil
}

func (f *fakeClient) Restore(_ context.Context, id string, _ ...libcontainerd.RestoreOption) (libcontainerd.RestoreResult, error) {
	f.mu.Lock()
	c := f.ctrs[id]
	if c == nil || c.task == libcontainerd.StatusNoTask {
		f.mu.Unlock()
		return libcontainerd.RestoreResult{}, errdefs.ErrNotFound
	}
	if c.task == libcontainerd.StatusCreated {
		f.mu.Unlock()
		return libcontainerd.RestoreResult{}, fmt.Errorf("never started: %w", errdefs.ErrFailedPrecondition)
	}
	if c.task == libcontainerd.StatusStopped {
		pid, b, at := c.pid, f.backend, c.exitedAt
		f.mu.Unlock()
		// As the real client: delivered from its queue, not from Restore.
		f.wg.Go(func() {
			b.ProcessEvent(context.Background(), id, libcontainerd.EventExit, libcontainerd.EventInfo{ContainerID: id, ProcessID: id, Pid: pid, ExitCode: 7, ExitedAt: at})
		})
		return libcontainerd.RestoreResult{Pid: pid, ExitCode: 7, ExitedAt: at}, nil
	}
	defer f.mu.Unlock()
	return libcontainerd.RestoreResult{Alive: true, Pid: c.pid}, nil
}

func (f *fakeClient) Pause(_ context.Context, id string) error {
	return f.setTask(id, libcontainerd.StatusPaused)
}
func (f *fakeClient) Resume(_ context.Context, id string) error {
	return f.setTask(id, libcontainerd.StatusRunning)
}
func (f *fakeClient) Close() error                                     { return nil }
func (f *fakeClient) CloseStdin(context.Context, string, string) error { return nil }

func (f *fakeClient) setTask(id string, st libcontainerd.Status) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[id]
	if c == nil || c.task == libcontainerd.StatusNoTask || c.task == libcontainerd.StatusStopped {
		return errdefs.ErrFailedPrecondition
	}
	c.task = st
	return nil
}

// Exec runs a probe: it exits with execExit on another goroutine, as the
// real event queue delivers exits.
func (f *fakeClient) Exec(ctx context.Context, id, execID string, _ *specs.Process, _ ...libcontainerd.ExecOption) (uint32, error) {
	f.mu.Lock()
	if gate := f.execGate; gate != nil {
		f.execsHeld++
		f.mu.Unlock()
		f.execHeld <- id
		select {
		case <-gate:
		case <-ctx.Done():
		}
		f.mu.Lock()
		f.execsHeld--
		if err := ctx.Err(); err != nil {
			f.mu.Unlock()
			return 0, err
		}
	}
	c := f.ctrs[id]
	if c == nil || c.task != libcontainerd.StatusRunning {
		f.mu.Unlock()
		return 0, errdefs.ErrFailedPrecondition
	}
	f.nextPid++
	pid, code, b := f.nextPid, f.execExit, f.backend
	f.mu.Unlock()
	if code >= 0 {
		f.wg.Go(func() {
			b.ProcessEvent(context.Background(), id, libcontainerd.EventExit, libcontainerd.EventInfo{ContainerID: id, ProcessID: execID, Pid: pid, ExitCode: uint32(code)})
		})
	}
	return pid, nil
}

// ProcessSpec is the container's process as a default spec has it.
func (f *fakeClient) ProcessSpec(_ context.Context, id, _ string) (*specs.Process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctrs[id] == nil {
		return nil, errdefs.ErrNotFound
	}
	return &specs.Process{Cwd: "/", Env: []string{"PATH=/bin"}}, nil
}

// --- harness ---------------------------------------------------------------

type fakeEnv struct {
	t     *testing.T
	root  string
	clock *healthchecktest.FakeClock
	fc    *fakeClient
	e     *Engine
}

func newFakeEnv(t *testing.T) *fakeEnv {
	t.Helper()
	env := &fakeEnv{t: t, root: t.TempDir(), clock: healthchecktest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), fc: newFakeClient()}
	env.fc.clock = env.clock
	env.open()
	return env
}

// open starts an engine on env's root, closed at the end of the test.
func (env *fakeEnv) open() {
	env.t.Helper()
	e, err := newEngine(context.Background(), Config{Root: env.root, Clock: env.clock, LiveRestore: true, StopTimeout: 5 * time.Second}, env.fc.factory())
	if err != nil {
		env.t.Fatalf("newEngine: %v", err)
	}
	e.initExited = env.fc.pidExited
	env.e = e
	env.t.Cleanup(func() { e.Close(context.Background()) })
}

func (env *fakeEnv) create(opts CreateOptions) *Container {
	env.t.Helper()
	if opts.Rootfs == "" && opts.Image == "" {
		opts.Rootfs = env.root
	}
	if len(opts.Cmd) == 0 {
		opts.Cmd = []string{"/bin/true"}
	}
	c, err := env.e.Create(context.Background(), opts)
	if err != nil {
		env.t.Fatalf("Create: %v", err)
	}
	return c
}

func (env *fakeEnv) inspect(id string) *Container {
	env.t.Helper()
	c, err := env.e.Inspect(context.Background(), id)
	if err != nil {
		env.t.Fatalf("Inspect: %v", err)
	}
	return c
}

// expectStart waits for the fake to start id.
func (env *fakeEnv) expectStart(id string) {
	env.t.Helper()
	select {
	case got := <-env.fc.starts:
		if got != id {
			env.t.Fatalf("started %s, want %s", got, id)
		}
	case <-time.After(10 * time.Second):
		env.t.Fatalf("container %s was not started", shortID(id))
	}
}

func (env *fakeEnv) expectNoStart() {
	env.t.Helper()
	select {
	case got := <-env.fc.starts:
		env.t.Fatalf("unexpected start of %s", shortID(got))
	default:
	}
}

// advanceTo waits until a timer is armed for when and moves the clock there.
func (env *fakeEnv) advanceTo(when time.Time) {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.clock.WaitForTimer(ctx, when); err != nil {
		env.t.Fatalf("no timer armed for %v (have %v): %v", when, env.clock.Deadlines(), err)
	}
	env.clock.Advance(when.Sub(env.clock.Now()))
}

// waitState waits until the record reaches want.
func (env *fakeEnv) waitState(id string, want State) *Container {
	env.t.Helper()
	c, err := env.e.resolve(id)
	if err != nil {
		env.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.e.waitChange(ctx, c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.rec.State == want
	}, nil); err != nil {
		env.t.Fatalf("container %s is %s, want %s: %v", shortID(id), env.inspect(id).State, want, err)
	}
	return env.inspect(id)
}

func healthchecktestClock() *healthchecktest.FakeClock {
	return healthchecktest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}
