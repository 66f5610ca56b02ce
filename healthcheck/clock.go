package healthcheck

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the source of time for the Scheduler; tests inject a fake one
// (see package healthchecktest).
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer with the semantics of time.Timer since Go 1.23:
// after Stop or Reset returns, no value from before the call is received
// from C.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// RealClock is the Clock backed by package time. Its zero value is ready.
type RealClock struct{}

var _ Clock = RealClock{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer as a Timer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// afterFunc calls f in its own goroutine once d has passed on c, as
// time.AfterFunc does; stop cancels it and reports whether that kept f from
// running. On the real clock it is time.AfterFunc: no goroutine waits for
// it (a probe's timeouts cost no goroutine of their own, nor the hand-over
// of waking one). On another clock a goroutine waits for c's timer.
func afterFunc(c Clock, d time.Duration, f func()) (stop func() bool) {
	if _, ok := c.(RealClock); ok {
		return time.AfterFunc(d, f).Stop
	}
	const pending, fired, stopped = 0, 1, 2
	var state atomic.Int32
	t := c.NewTimer(d)
	quit := make(chan struct{})
	go func() {
		select {
		case <-t.C():
			if state.CompareAndSwap(pending, fired) {
				f()
			}
		case <-quit:
		}
	}()
	var once sync.Once
	return func() bool {
		t.Stop()
		once.Do(func() { close(quit) })
		return state.CompareAndSwap(pending, stopped)
	}
}
