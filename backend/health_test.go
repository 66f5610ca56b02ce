package backend

import (
	"context"
	"errors"
	"os/exec"
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

// signalsSent returns the signals the fake client was asked to send.
func (f *fakeClient) signalsSent() []syscall.Signal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.signals)
}

// TestProbeProcessKillSubreaper: a probe under tend-init's probe mode is
// killed by a SIGTERM to its subreaper, which kills and reaps all of the
// probe (a host-side kill would leave zombies to PID 1); only a subreaper
// that does not exit in time has its tree killed from the host.
func TestProbeProcessKillSubreaper(t *testing.T) {
	running := func(t *testing.T) (*fakeEnv, *Container) {
		env := newFakeEnv(t)
		c := env.create(CreateOptions{})
		if err := env.e.Start(context.Background(), c.ID); err != nil {
			t.Fatalf("Start: %v", err)
		}
		return env, c
	}
	// hostProc stands in for the subreaper: the fake client signals no
	// host process, so only the host-side tree kill can end it.
	hostProc := func(t *testing.T) *exec.Cmd {
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}

	t.Run("exits on SIGTERM", func(t *testing.T) {
		env, c := running(t)
		cmd := hostProc(t)
		x := &Exec{e: env.e, ctrID: c.ID, id: "exec-probe", pid: uint32(cmd.Process.Pid), probe: true, done: make(chan struct{})}
		killed := make(chan error, 1)
		go func() { killed <- probeProcess{x: x, subreaper: true}.Kill() }()
		testutil.Poll(t, "a SIGTERM to the subreaper", func() bool {
			return slices.Contains(env.fc.signalsSent(), syscall.SIGTERM)
		})
		x.finish(128+int(syscall.SIGKILL), nil) // the subreaper cleaned up and exited
		if err := <-killed; err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if got := env.fc.signalsSent(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
			t.Errorf("signals sent %v, want only the SIGTERM", got)
		}
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("the subreaper that exited by itself was killed from the host too: %v", err)
		}
	})

	t.Run("does not exit", func(t *testing.T) {
		env, c := running(t)
		cmd := hostProc(t)
		x := &Exec{e: env.e, ctrID: c.ID, id: "exec-probe", pid: uint32(cmd.Process.Pid), probe: true, done: make(chan struct{})}
		if err := (probeProcess{x: x, subreaper: true}).Kill(); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if got := env.fc.signalsSent(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
			t.Errorf("signals sent %v, want SIGTERM, then SIGKILL after %v", got, subreaperKillTimeout)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("subreaper that ignored the SIGTERM: %v, want it killed from the host", err)
		}
	})
}

func TestUnhealthyRestartCountsAndIsRecorded(t *testing.T) {
	env := newFakeEnv(t)
	env.fc.execExit = 1
	ctx := context.Background()
	evs := recordEvents(t, env.e)
	hc := &healthcheck.Config{Test: []string{"CMD", "false"}, Interval: time.Second, Retries: 1, OnUnhealthy: healthcheck.ActionRestart}
	c := env.create(CreateOptions{Health: hc, Restart: RestartPolicy{Name: "on-failure", MaximumRetryCount: 1}})
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	// Drive the scheduler until the probe failed and the kill+restart
	// happened (the clock may also have run the restart itself).
	deadline := time.Now().Add(10 * time.Second)
	for env.inspect(c.ID).RestartCount == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no unhealthy restart: %+v", env.inspect(c.ID))
		}
		if d := env.clock.Deadlines(); len(d) > 0 {
			env.clock.Advance(d[0].Sub(env.clock.Now()))
		}
		waitBriefly()
	}
	r := env.inspect(c.ID)
	if r.ExitReason != "unhealthy" || r.RestartCount != 1 || r.Health == nil {
		t.Fatalf("record after unhealthy kill: reason %q count %d health %+v", r.ExitReason, r.RestartCount, r.Health)
	}
	if r.State == StateRestarting && r.Health.Status != healthcheck.StatusUnhealthy {
		t.Fatalf("health while the unhealthy restart is pending: %+v", r.Health)
	}
	env.e.Close(ctx)
	all := evs.all()
	found := false
	for _, ev := range all {
		if ev.Type == "restart" && ev.Attributes["reason"] == "unhealthy" && ev.Attributes["restart_count"] == "1" {
			found = true
		}
	}
	if !found {
		t.Errorf("no restart event with reason unhealthy: %+v", all)
	}
}

// TestUnhealthyStopWaitsStopTimeout: the on-unhealthy stop waits the
// container's --stop-timeout (60s), not the engine's StopTimeout (5s),
// between the stop signal and SIGKILL.
func TestUnhealthyStopWaitsStopTimeout(t *testing.T) {
	env := newFakeEnv(t)
	env.fc.execExit = 1
	env.fc.ignoreTerm = true
	ctx := context.Background()
	sixty := 60
	hc := &healthcheck.Config{Test: []string{"CMD", "false"}, Interval: time.Second, Retries: 1, OnUnhealthy: healthcheck.ActionStop}
	c := env.create(CreateOptions{Health: hc, StopTimeout: &sixty})
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	signalled := func(sig syscall.Signal) bool {
		env.fc.mu.Lock()
		defer env.fc.mu.Unlock()
		return slices.Contains(env.fc.signals, sig)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !signalled(syscall.SIGTERM) {
		if time.Now().After(deadline) {
			t.Fatalf("no on-unhealthy stop: %+v", env.inspect(c.ID))
		}
		if d := env.clock.Deadlines(); len(d) > 0 {
			env.clock.Advance(d[0].Sub(env.clock.Now()))
		}
		waitBriefly()
	}
	// The kill is due the container's 60s after the signal: a timer more
	// than the engine's 5s (and the 1s interval) ahead.
	var kill time.Time
	for kill.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("no timer for the SIGKILL 60s after the stop signal; timers %v at %v", env.clock.Deadlines(), env.clock.Now())
		}
		for _, d := range env.clock.Deadlines() {
			if d.Sub(env.clock.Now()) > 30*time.Second {
				kill = d
			}
		}
		waitBriefly()
	}
	if signalled(syscall.SIGKILL) {
		t.Fatalf("SIGKILL before the stop timeout")
	}
	env.clock.Advance(kill.Sub(env.clock.Now()))
	if r := env.waitState(c.ID, StateExited); r.ExitCode != 137 || !signalled(syscall.SIGKILL) {
		t.Errorf("after the stop timeout: exit %d, SIGKILL sent %v; want SIGKILL, 137", r.ExitCode, signalled(syscall.SIGKILL))
	}
}
