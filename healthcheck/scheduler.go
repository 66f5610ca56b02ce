package healthcheck

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// ErrClosed is returned by Scheduler.Add after Close.
var ErrClosed = fmt.Errorf("health check scheduler is closed: %w", errdefs.ErrFailedPrecondition)

const (
	// startTimeout bounds Execer.Start, which is not charged to the probe
	// timeout but must not wedge a slot forever (as Docker).
	startTimeout = 30 * time.Second
	// reapTimeout bounds the Wait after Kill.
	reapTimeout = 10 * time.Second
)

var logger = log.L.WithField("component", "healthcheck")

// NotifyFunc receives every probe result of a container: st is the new state
// (owned by the callee) and changed reports whether st.Status differs from
// the status before this result. When changed and st.Status is
// StatusUnhealthy the caller should carry out Config.OnUnhealthy.
//
// It runs on the probe goroutine with no Scheduler lock held, one call at a
// time per container and in result order; the container's next probe is
// scheduled only after it returns. The probe's concurrency slot is already
// free, but Close waits for a call in progress, so it should return soon. It
// may call Add, Pause, Resume, Reset, Remove and State but not Close.
// Add, Reset, Pause, Resume and Remove do not notify: the caller knows.
type NotifyFunc func(containerID string, st State, changed bool)

// Option configures a Scheduler.
type Option func(*options)

type options struct {
	clock         Clock
	maxConcurrent int
	logEntries    int
	outputBytes   int
	notify        NotifyFunc
}

// WithClock sets the clock used for intervals and timeouts; default RealClock.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithMaxConcurrent caps the number of probes running at once over all
// containers; n <= 0 keeps the default, max(16, 2*GOMAXPROCS).
func WithMaxConcurrent(n int) Option { return func(o *options) { o.maxConcurrent = n } }

// WithLogLimits sets how many results a State keeps (default 5) and how many
// bytes of output a Result keeps (default 4096); values <= 0 keep the default.
func WithLogLimits(entries, outputBytes int) Option {
	return func(o *options) { o.logEntries, o.outputBytes = entries, outputBytes }
}

// WithNotify sets the callback that receives every probe result.
func WithNotify(f NotifyFunc) Option { return func(o *options) { o.notify = f } }

// Scheduler runs the health probes of many containers from one scheduling
// goroutine: a min-heap of due times driven by one Clock timer, a global cap
// on running probes, and first probes staggered by container ID. The next
// probe of a container is due Interval (or StartInterval) after the end of its
// previous one. Create it with NewScheduler; Close stops it.
type Scheduler struct {
	execer Execer
	opts   options

	ctx    context.Context // cancelled by Close; parent of every probe
	cancel context.CancelFunc
	wake   chan struct{} // buffered(1): heap or slots changed
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	running int
	entries map[string]*entry
	queue   dueQueue
	// What the loop sleeps on, for the wakes it needs: a probe that ends
	// wakes it only when it waits for a free slot (full), and a probe
	// scheduled no earlier than the loop's timer (armed, at next) does
	// not wake it. Each wake it is spared is a goroutine hand-over, and
	// its CPU, per probe.
	full  bool
	armed bool
	next  time.Time
}

type entry struct {
	id        string
	cfg       Config // with defaults
	argv      []string
	state     State
	startedAt time.Time // start of the start period
	paused    bool
	gen       uint64        // bumped by Pause, Reset, Remove: results of older probes are dropped
	busy      bool          // a probe goroutine owns the entry (probe or notify running)
	idle      chan struct{} // closed when the probe goroutine of a busy entry is done
	cancel    context.CancelFunc
	due       time.Time
	index     int // in queue, -1 if not queued
}

// NewScheduler returns a running Scheduler that probes through execer.
func NewScheduler(execer Execer, opts ...Option) *Scheduler {
	o := options{clock: RealClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.clock == nil {
		o.clock = RealClock{}
	}
	if o.maxConcurrent <= 0 {
		o.maxConcurrent = max(16, 2*runtime.GOMAXPROCS(0))
	}
	if o.logEntries <= 0 {
		o.logEntries = DefaultLogEntries
	}
	if o.outputBytes <= 0 {
		o.outputBytes = DefaultOutputBytes
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{
		execer:  execer,
		opts:    o,
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
		entries: make(map[string]*entry),
	}
	s.wg.Add(1)
	go s.loop()
	return s
}

// Add starts probing containerID with cfg. initial is the state to resume
// (live-restore); nil starts from StatusStarting. The start period counts
// from now. A NONE test is not probed and Add returns nil. The first probe is
// at an offset derived from containerID within min(Interval, StartInterval),
// so containers added together are not probed together.
func (s *Scheduler) Add(containerID string, cfg Config, initial *State) error {
	if containerID == "" {
		return fmt.Errorf("add health check: empty container id: %w", errdefs.ErrInvalidArgument)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("add health check for container %s: %w", containerID, err)
	}
	argv, ok := cfg.Argv()
	if !ok {
		return nil
	}
	cfg = cfg.WithDefaults()
	st := State{Status: StatusStarting}
	if initial != nil {
		st = initial.normalize(s.opts.logEntries)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.entries[containerID]; ok {
		return fmt.Errorf("add health check for container %s: already monitored, Remove it first: %w", containerID, errdefs.ErrAlreadyExists)
	}
	now := s.opts.clock.Now()
	e := &entry{id: containerID, cfg: cfg, argv: argv, state: st, startedAt: now, index: -1}
	s.entries[containerID] = e
	s.scheduleLocked(e, now.Add(firstDelay(e)))
	return nil
}

// Pause stops probing containerID (the container is paused or stopped): no
// new probe starts and a running one is cancelled and its result dropped.
func (s *Scheduler) Pause(containerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[containerID]
	if !ok || e.paused {
		return
	}
	e.paused = true
	s.stopLocked(e)
}

// Quiesce is Pause, and then waits until the probe of containerID that
// was running, if any, has been cancelled, killed and reaped, or until ctx
// ends (its error is returned then). A caller about to end the container's
// task uses it so that no probe is starting or running in a dying task.
// It must not be called with anything held that the NotifyFunc takes: a
// result computed before the Pause may still be in delivery.
func (s *Scheduler) Quiesce(ctx context.Context, containerID string) error {
	s.Pause(containerID)
	s.mu.Lock()
	var idle chan struct{}
	if e, ok := s.entries[containerID]; ok && e.busy {
		idle = e.idle
	}
	s.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Resume undoes Pause; the next probe is staggered like a first probe.
func (s *Scheduler) Resume(containerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[containerID]
	if !ok || !e.paused {
		return
	}
	e.paused = false
	if !e.busy {
		s.scheduleLocked(e, s.opts.clock.Now().Add(firstDelay(e)))
	}
}

// Reset handles a restart of containerID: the status goes back to starting,
// the failing streak to zero, the start period starts again and probing
// resumes if it was paused. The log is kept. A running probe is cancelled.
func (s *Scheduler) Reset(containerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[containerID]
	if !ok {
		return
	}
	s.stopLocked(e)
	now := s.opts.clock.Now()
	e.paused = false
	e.state.Status = StatusStarting
	e.state.FailingStreak = 0
	e.startedAt = now
	if !e.busy {
		s.scheduleLocked(e, now.Add(firstDelay(e)))
	}
}

// Remove stops probing containerID and forgets it. A running probe is
// cancelled; a notification already being delivered may still complete.
func (s *Scheduler) Remove(containerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[containerID]
	if !ok {
		return
	}
	delete(s.entries, containerID)
	s.stopLocked(e)
}

// State returns a copy of containerID's health state.
func (s *Scheduler) State(containerID string) (State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[containerID]
	if !ok {
		return State{}, false
	}
	return e.state.Clone(), true
}

// Close stops the Scheduler: running probes are cancelled, killed and waited
// for, and no goroutine is left when it returns. It must not be called from a
// NotifyFunc. Close is idempotent and always returns nil.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.cancel()
		s.signal()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// signal wakes the loop; never blocks.
func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stopLocked drops e from the queue and cancels its running probe; the
// generation bump makes the probe's result be ignored.
func (s *Scheduler) stopLocked(e *entry) {
	e.gen++
	if e.index >= 0 {
		heap.Remove(&s.queue, e.index)
	}
	if e.cancel != nil {
		e.cancel()
		e.cancel = nil
	}
}

func (s *Scheduler) scheduleLocked(e *entry, due time.Time) {
	e.due = due
	if e.index >= 0 {
		heap.Fix(&s.queue, e.index)
	} else {
		heap.Push(&s.queue, e)
	}
	if !s.armed || due.Before(s.next) {
		s.signal()
	}
}

// firstDelay spreads first probes over min(Interval, StartInterval) by a hash
// of the container ID, so a mass start or an engine restart does not fire
// every probe at once, and the spread is reproducible.
func firstDelay(e *entry) time.Duration {
	window := min(e.cfg.Interval, e.cfg.StartInterval)
	if window <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(e.id))
	return time.Duration(h.Sum64() % uint64(window))
}

// nextInterval is the pause after a probe that ended at end.
func (e *entry) nextInterval(end time.Time) time.Duration {
	if e.state.Status == StatusStarting && end.Sub(e.startedAt) < e.cfg.StartPeriod {
		return e.cfg.StartInterval
	}
	return e.cfg.Interval
}

// loop starts due probes while slots are free and sleeps on one timer until
// the earliest due time, a wake-up or Close.
func (s *Scheduler) loop() {
	defer s.wg.Done()
	timer := s.opts.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		now := s.opts.clock.Now()
		wait := time.Duration(-1)
		var next time.Time
		s.full = false
		for s.queue.Len() > 0 {
			e := s.queue[0]
			if d := e.due.Sub(now); d > 0 {
				wait, next = d, e.due
				break
			}
			if s.running >= s.opts.maxConcurrent {
				s.full = true // a finishing probe wakes us
				break
			}
			heap.Pop(&s.queue)
			s.startLocked(e)
		}
		s.armed, s.next = wait >= 0, next
		s.mu.Unlock()

		if wait >= 0 {
			timer.Reset(wait)
			// The timer counts from when Reset ran, not from now: if the
			// clock passed next meanwhile (a fake clock can jump), do not
			// wait for a timer that fires too late.
			if !s.opts.clock.Now().Before(next) {
				timer.Stop()
				continue
			}
		}
		select {
		case <-s.wake:
		case <-timer.C():
		}
		timer.Stop()
	}
}

func (s *Scheduler) startLocked(e *entry) {
	ctx, cancel := context.WithCancel(s.ctx)
	e.cancel = cancel
	e.busy = true
	e.idle = make(chan struct{})
	s.running++
	s.wg.Add(1)
	go s.probe(ctx, cancel, e, e.gen, e.argv, e.cfg.Timeout)
}

// probe runs one probe of e and hands the result over.
func (s *Scheduler) probe(ctx context.Context, cancel context.CancelFunc, e *entry, gen uint64, argv []string, timeout time.Duration) {
	defer s.wg.Done()
	defer cancel()
	res, ok := s.run(ctx, e.id, argv, timeout)

	s.mu.Lock()
	s.running--
	if s.full {
		s.signal() // a slot is free
	}
	current := ok && !s.closed && s.entries[e.id] == e && e.gen == gen
	var st State
	var changed bool
	if current {
		changed = e.state.apply(res, e.cfg, e.startedAt, s.opts.logEntries)
		st = e.state.Clone()
	}
	s.mu.Unlock()

	if current && s.opts.notify != nil {
		s.opts.notify(e.id, st, changed)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	e.busy = false
	close(e.idle)
	if e.gen == gen {
		e.cancel = nil
	}
	if s.closed || s.entries[e.id] != e || e.paused {
		return
	}
	if e.gen == gen && ok {
		s.scheduleLocked(e, res.End.Add(e.nextInterval(res.End)))
		return
	}
	// Reset or Pause+Resume while we ran: start over like a first probe.
	s.scheduleLocked(e, s.opts.clock.Now().Add(firstDelay(e)))
}

// run executes one probe. It returns false when ctx was cancelled (Pause,
// Reset, Remove, Close): the result is then meaningless.
func (s *Scheduler) run(ctx context.Context, id string, argv []string, timeout time.Duration) (Result, bool) {
	clock := s.opts.clock
	res := Result{Start: clock.Now(), ExitCode: -1}
	out := newCappedBuffer(s.opts.outputBytes)

	p, err := s.start(ctx, id, argv, out)
	if ctx.Err() != nil {
		if p != nil {
			s.reap(id, p)
		}
		return Result{}, false
	}
	if errors.Is(err, ErrContainerStopped) {
		logger.WithError(err).WithField("container", id).Debug("health check not started: the container stopped")
		return Result{}, false
	}
	if err != nil {
		logger.WithError(err).WithField("container", id).Warn("health check failed to start")
		res.End = clock.Now()
		res.Output = "health check failed to start: " + err.Error()
		return res, true
	}

	code, err, timedOut := s.wait(ctx, id, p, timeout)
	res.End = clock.Now()
	switch {
	case timedOut:
		res.Output = fmt.Sprintf("health check timed out after %v", timeout)
		if o := out.String(); o != "" {
			res.Output += ": " + o
		}
		return res, true
	case ctx.Err() != nil:
		return Result{}, false
	case errors.Is(err, ErrContainerStopped):
		return Result{}, false
	case err != nil:
		res.Output = "health check failed: " + err.Error()
		if o := out.String(); o != "" {
			res.Output += ": " + o
		}
		return res, true
	}
	res.ExitCode = code
	res.Output = out.String()
	return res, true
}

// wait waits for p in the probe's goroutine. When timeout (0: none) passes
// first, or ctx ends (Pause, Reset, Remove, Close), p is killed and its
// Wait given reapTimeout before it is abandoned. timedOut says the timeout
// killed it.
func (s *Scheduler) wait(ctx context.Context, id string, p Process, timeout time.Duration) (code int, err error, timedOut bool) {
	waitCtx, cancelWait := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWait()
	l := func() *log.Entry { return logger.WithField("container", id) } // on the rare paths only
	var (
		killOnce sync.Once
		stopReap func() bool // the kill's bound on the Wait
		expired  atomic.Bool
	)
	kill := func() {
		killOnce.Do(func() {
			if err := p.Kill(); err != nil && !errdefs.IsNotFound(err) {
				l().WithError(err).Warn("failed to kill health check process")
			}
			stopReap = afterFunc(s.opts.clock, reapTimeout, func() {
				l().Warnf("health check process did not exit within %v of kill; abandoning its wait", reapTimeout)
				cancelWait()
			})
		})
	}
	stopTimeout := func() bool { return false }
	if timeout > 0 {
		stopTimeout = afterFunc(s.opts.clock, timeout, func() {
			expired.Store(true)
			l().Debugf("health check timed out after %v, killing it", timeout)
			kill()
		})
	}
	stopCtx := context.AfterFunc(ctx, kill)
	code, err = p.Wait(waitCtx)
	stopTimeout()
	stopCtx()
	// A kill under way ends before we return, and none starts after.
	killOnce.Do(func() {})
	if stopReap != nil {
		stopReap()
	}
	return code, err, expired.Load()
}

// start calls Execer.Start bounded by ctx and startTimeout, in the probe's
// goroutine (Start returns soon after its ctx ends).
func (s *Scheduler) start(ctx context.Context, id string, argv []string, out *cappedBuffer) (Process, error) {
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var late atomic.Bool
	stop := afterFunc(s.opts.clock, startTimeout, func() {
		late.Store(true)
		cancel()
	})
	p, err := s.execer.Start(startCtx, id, argv, out)
	stop()
	if err != nil && p != nil {
		s.reap(id, p)
		p = nil
	}
	if ctx.Err() != nil || !late.Load() {
		return p, err
	}
	if p != nil {
		s.reap(id, p)
	}
	return nil, fmt.Errorf("exec did not start within %v: %w", startTimeout, errdefs.ErrUnavailable)
}

// reap kills p and waits for it, giving its Wait reapTimeout after the kill.
func (s *Scheduler) reap(id string, p Process) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	s.wait(done, id, p, 0)
}

// dueQueue is a min-heap of entries by due time (then ID, for determinism).
type dueQueue []*entry

func (q dueQueue) Len() int { return len(q) }
func (q dueQueue) Less(i, j int) bool {
	if !q[i].due.Equal(q[j].due) {
		return q[i].due.Before(q[j].due)
	}
	return q[i].id < q[j].id
}
func (q dueQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *dueQueue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *dueQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}
