package healthchecktest

import (
	"context"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fired(tm interface{ C() <-chan time.Time }) (time.Time, bool) {
	select {
	case v := <-tm.C():
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeClock(t *testing.T) {
	for _, tc := range []struct {
		name      string
		run       func(c *FakeClock) (fired bool, at time.Time)
		wantFired bool
		wantAt    time.Duration
	}{
		{"fires when due", func(c *FakeClock) (bool, time.Time) {
			tm := c.NewTimer(time.Second)
			c.Advance(999 * time.Millisecond)
			if _, ok := fired(tm); ok {
				t.Fatal("fired early")
			}
			c.Advance(time.Millisecond)
			v, ok := fired(tm)
			return ok, v
		}, true, time.Second},
		{"fires once when advanced past", func(c *FakeClock) (bool, time.Time) {
			tm := c.NewTimer(time.Second)
			c.Advance(5 * time.Second)
			v, ok := fired(tm)
			c.Advance(5 * time.Second)
			if _, again := fired(tm); again {
				t.Fatal("fired twice")
			}
			return ok, v
		}, true, 5 * time.Second},
		{"stop prevents and drains", func(c *FakeClock) (bool, time.Time) {
			tm := c.NewTimer(time.Second)
			c.Advance(time.Second)
			if tm.Stop() {
				t.Fatal("Stop of a fired timer reported armed")
			}
			c.Advance(time.Second)
			v, ok := fired(tm)
			return ok, v
		}, false, 0},
		{"reset rearms from now", func(c *FakeClock) (bool, time.Time) {
			tm := c.NewTimer(time.Second)
			c.Advance(500 * time.Millisecond)
			if !tm.Reset(time.Second) {
				t.Fatal("Reset of an armed timer reported not armed")
			}
			c.Advance(900 * time.Millisecond)
			if _, ok := fired(tm); ok {
				t.Fatal("fired at the old deadline")
			}
			c.Advance(100 * time.Millisecond)
			v, ok := fired(tm)
			return ok, v
		}, true, 1500 * time.Millisecond},
		{"zero duration fires at once", func(c *FakeClock) (bool, time.Time) {
			v, ok := fired(c.NewTimer(0))
			return ok, v
		}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewFakeClock(t0)
			ok, at := tc.run(c)
			if ok != tc.wantFired || (ok && !at.Equal(t0.Add(tc.wantAt))) {
				t.Fatalf("fired %v at %v, want %v at %v", ok, at.Sub(t0), tc.wantFired, tc.wantAt)
			}
		})
	}
}

func TestWaitForTimer(t *testing.T) {
	c := NewFakeClock(t0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	created := make(chan struct{})
	go func() {
		defer close(created)
		c.NewTimer(3 * time.Second)
	}()
	if err := c.WaitForTimer(ctx, t0.Add(3*time.Second)); err != nil {
		t.Fatalf("WaitForTimer = %v", err)
	}
	<-created
	if got := c.Deadlines(); len(got) != 1 || !got[0].Equal(t0.Add(3*time.Second)) {
		t.Fatalf("Deadlines() = %v", got)
	}
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if err := c.WaitForTimer(short, t0.Add(time.Hour)); err == nil {
		t.Fatal("WaitForTimer for a timer that does not exist returned nil")
	}
}
