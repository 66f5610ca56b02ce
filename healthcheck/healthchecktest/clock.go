// Package healthchecktest provides test helpers for code that uses package
// healthcheck, chiefly FakeClock. A FakeClock is safe for concurrent use;
// its zero value is not usable, create one with NewFakeClock.
package healthchecktest

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/tendhq/tend/healthcheck"
)

// FakeClock is a healthcheck.Clock whose time only moves with Advance.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*fakeTimer]struct{} // armed timers
	changed chan struct{}           // closed and replaced whenever timers change
}

var _ healthcheck.Clock = (*FakeClock)(nil)

// NewFakeClock returns a FakeClock set to now.
func NewFakeClock(now time.Time) *FakeClock {
	return &FakeClock{now: now, timers: make(map[*fakeTimer]struct{}), changed: make(chan struct{})}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once Advance reaches now+d.
func (c *FakeClock) NewTimer(d time.Duration) healthcheck.Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the time forward by d and fires the timers that are due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.when.After(c.now) {
			delete(c.timers, t)
			select {
			case t.ch <- c.now:
			default:
			}
		}
	}
	c.notifyLocked()
}

// Deadlines returns the fire times of the armed timers, earliest first.
func (c *FakeClock) Deadlines() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.timers))
	for t := range c.timers {
		out = append(out, t.when)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// WaitForTimer blocks until a timer armed to fire exactly at when exists, or
// ctx is done. Tests use it before Advance to know the code under test has
// armed the timer it is about to be woken by.
func (c *FakeClock) WaitForTimer(ctx context.Context, when time.Time) error {
	for {
		c.mu.Lock()
		for t := range c.timers {
			if t.when.Equal(when) {
				c.mu.Unlock()
				return nil
			}
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *FakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type fakeTimer struct {
	c    *FakeClock
	ch   chan time.Time
	when time.Time // guarded by c.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.stopLocked()
}

func (t *fakeTimer) stopLocked() bool {
	_, armed := t.c.timers[t]
	delete(t.c.timers, t)
	select { // as Go 1.23 timers: no stale value after Stop
	case <-t.ch:
	default:
	}
	t.c.notifyLocked()
	return armed
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	armed := t.stopLocked()
	t.when = t.c.now.Add(d)
	if d <= 0 {
		t.ch <- t.c.now
		return armed
	}
	t.c.timers[t] = struct{}{}
	t.c.notifyLocked()
	return armed
}
