package healthcheck_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/healthcheck/healthchecktest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// behaviour is what one fake probe does.
type behaviour struct {
	code       int
	out        string
	hang       bool  // run until killed (or finish is called)
	err        error // Start fails
	ignoreKill bool  // Kill does not end Wait
	wedged     bool  // Start blocks until its ctx is done
	waitErr    error // Wait fails at once
}

// fakeExecer runs scripted probes and records concurrency.
type fakeExecer struct {
	clock  *healthchecktest.FakeClock
	behave func(id string) behaviour
	starts chan *fakeProc

	mu         sync.Mutex
	running    int
	maxRunning int
}

func newFakeExecer(clock *healthchecktest.FakeClock, behave func(id string) behaviour) *fakeExecer {
	return &fakeExecer{clock: clock, behave: behave, starts: make(chan *fakeProc, 1000)}
}

func (e *fakeExecer) Start(ctx context.Context, id string, argv []string, out io.Writer) (healthcheck.Process, error) {
	b := e.behave(id)
	if b.err != nil {
		return nil, b.err
	}
	if b.wedged {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	io.WriteString(out, b.out)
	p := &fakeProc{e: e, id: id, argv: argv, at: e.clock.Now(), exit: make(chan int, 1),
		killed: make(chan struct{}), waited: make(chan struct{}), ignoreKill: b.ignoreKill, waitErr: b.waitErr}
	if !b.hang {
		p.exit <- b.code
	}
	e.mu.Lock()
	e.running++
	e.maxRunning = max(e.maxRunning, e.running)
	e.mu.Unlock()
	e.starts <- p
	return p, nil
}

func (e *fakeExecer) max() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.maxRunning
}

type fakeProc struct {
	e          *fakeExecer
	id         string
	argv       []string
	at         time.Time // fake time of Start
	exit       chan int
	ignoreKill bool
	waitErr    error

	killOnce sync.Once
	killed   chan struct{}
	waited   chan struct{}
}

func (p *fakeProc) finish(code int) { p.exit <- code }

func (p *fakeProc) Wait(ctx context.Context) (int, error) {
	defer func() {
		p.e.mu.Lock()
		p.e.running--
		p.e.mu.Unlock()
		close(p.waited)
	}()
	if p.waitErr != nil {
		return -1, p.waitErr
	}
	killed := p.killed
	if p.ignoreKill {
		killed = nil
	}
	select {
	case c := <-p.exit:
		return c, nil
	case <-killed:
		return 137, nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

func (p *fakeProc) Kill() error {
	p.killOnce.Do(func() { close(p.killed) })
	return nil
}

func (p *fakeProc) wasKilled() bool {
	select {
	case <-p.killed:
		return true
	default:
		return false
	}
}

// recv receives from ch; the deadline only guards against a hung test.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

type note struct {
	id      string
	st      healthcheck.State
	changed bool
}

type harness struct {
	t     *testing.T
	clock *healthchecktest.FakeClock
	ex    *fakeExecer
	s     *healthcheck.Scheduler
	notes chan note
}

func newHarness(t *testing.T, behave func(id string) behaviour, opts ...healthcheck.Option) *harness {
	h := &harness{t: t, clock: healthchecktest.NewFakeClock(t0), notes: make(chan note, 1000)}
	h.ex = newFakeExecer(h.clock, behave)
	opts = append([]healthcheck.Option{
		healthcheck.WithClock(h.clock),
		healthcheck.WithNotify(func(id string, st healthcheck.State, changed bool) {
			// Would deadlock if the Scheduler held its lock while notifying.
			if _, ok := h.s.State(id); !ok {
				t.Errorf("notify for %s, which has no state", id)
			}
			h.notes <- note{id, st, changed}
		}),
	}, opts...)
	h.s = healthcheck.NewScheduler(h.ex, opts...)
	t.Cleanup(func() { h.s.Close() })
	return h
}

// advanceTo waits until a timer is armed for when, then moves the clock there.
func (h *harness) advanceTo(when time.Time) {
	h.t.Helper()
	now := h.clock.Now()
	if !when.After(now) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.clock.WaitForTimer(ctx, when); err != nil {
		h.t.Fatalf("no timer armed for %v (now %v, armed %v): %v", when.Sub(t0), now.Sub(t0), h.clock.Deadlines(), err)
	}
	h.clock.Advance(when.Sub(now))
}

func (h *harness) start(what string) *fakeProc {
	h.t.Helper()
	return recv(h.t, h.ex.starts, what)
}

func (h *harness) note(what string) note {
	h.t.Helper()
	return recv(h.t, h.notes, what)
}

// expectNoStart checks no probe started; meaningful after the scheduler had
// its chance (e.g. after a later probe of another container was observed).
func (h *harness) expectNoStart(what string) {
	h.t.Helper()
	select {
	case p := <-h.ex.starts:
		h.t.Fatalf("%s: unexpected probe of %s at %v", what, p.id, p.at.Sub(t0))
	default:
	}
}
