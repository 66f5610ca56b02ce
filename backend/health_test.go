package backend

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/healthcheck"
)

// TestProbesStopBeforeKill: when the engine ends a task itself (rm -f,
// stop, kill -9), a probe in flight is cancelled before the signal, so
// that it is not left to fail against a dying task ("health check failed
// to start ... cannot exec into it").
func TestProbesStopBeforeKill(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(e *Engine, id string) error
	}{
		{"remove force", func(e *Engine, id string) error { return e.Remove(context.Background(), id, true) }},
		{"stop", func(e *Engine, id string) error { return e.Stop(context.Background(), id, nil) }},
		{"kill", func(e *Engine, id string) error { return e.Kill(context.Background(), id, syscall.SIGKILL) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newFakeEnv(t)
			gate := make(chan struct{})
			env.fc.mu.Lock()
			env.fc.execGate, env.fc.execHeld = gate, make(chan string, 10)
			env.fc.mu.Unlock()
			released := false
			release := func() {
				if !released {
					released = true
					close(gate)
				}
			}
			defer release()
			hc := &healthcheck.Config{Test: []string{"CMD", "true"}, Interval: time.Second}
			c := env.create(CreateOptions{Health: hc})
			if err := env.e.Start(context.Background(), c.ID); err != nil {
				t.Fatal(err)
			}
			env.expectStart(c.ID)
			// Run the clock until the first probe is in its exec.
			deadline := time.Now().Add(10 * time.Second)
			for held := false; !held; {
				select {
				case <-env.fc.execHeld:
					held = true
					continue
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("no probe started")
				}
				if d := env.clock.Deadlines(); len(d) > 0 {
					env.clock.Advance(d[0].Sub(env.clock.Now()))
				}
				waitBriefly()
			}
			if err := tc.end(env.e, c.ID); err != nil {
				t.Fatal(err)
			}
			env.fc.mu.Lock()
			live := env.fc.probeLiveAtKill
			env.fc.mu.Unlock()
			if live != 0 {
				t.Errorf("%d probes still running when the task was signalled, want them cancelled first", live)
			}
			release()
		})
	}
}
