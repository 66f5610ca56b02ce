package backend

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/internal/testutil"
)

// TestProbesStopBeforeKill: when the engine ends a task itself (rm -f,
// stop, kill -9), a probe in flight is cancelled and waited for before the
// signal, so that none is left to fail against a dying task ("health check
// failed to start ... cannot exec into it").
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
				t.Errorf("%d probes still starting when the task was signalled, want them cancelled and waited for first", live)
			}
			release()
		})
	}
}

// TestProbesResumeWhenStopFails: a stop that gives up (its ctx ended while
// the task ignored SIGTERM) leaves the task running, and its probes run
// again.
func TestProbesResumeWhenStopFails(t *testing.T) {
	env := newFakeEnv(t)
	gate := make(chan struct{})
	defer close(gate)
	env.fc.mu.Lock()
	env.fc.execGate, env.fc.execHeld, env.fc.ignoreTerm = gate, make(chan string, 10), true
	env.fc.mu.Unlock()
	hc := &healthcheck.Config{Test: []string{"CMD", "true"}, Interval: time.Second}
	c := env.create(CreateOptions{Health: hc})
	if err := env.e.Start(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	probeHeld := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			select {
			case <-env.fc.execHeld:
				return
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no probe %s", what)
			}
			if d := env.clock.Deadlines(); len(d) > 0 {
				env.clock.Advance(d[0].Sub(env.clock.Now()))
			}
			waitBriefly()
		}
	}
	probeHeld("before the stop")
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- env.e.Stop(ctx, c.ID, nil) }()
	testutil.Poll(t, "SIGTERM sent", func() bool {
		env.fc.mu.Lock()
		defer env.fc.mu.Unlock()
		return slices.Contains(env.fc.signals, syscall.SIGTERM)
	})
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want context.Canceled", err)
	}
	if got := env.inspect(c.ID); got.State != StateRunning {
		t.Fatalf("after the failed stop the container is %s, want running", got.State)
	}
	probeHeld("after the failed stop")
}
