package backend

import (
	"context"
	"testing"
	"time"

	"github.com/tendhq/tend/libcontainerd"
)

func TestRestartOnFailureWithBackoff(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	c := env.create(CreateOptions{Restart: RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}})
	if err := env.e.Start(ctx, c.Name); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	delays := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	for i, d := range delays {
		t0 := env.clock.Now()
		env.fc.exit(c.ID, 3)
		r := env.inspect(c.ID)
		if r.State != StateRestarting || r.RestartCount != i+1 || r.ExitCode != 3 || !r.NextRestartAt.Equal(t0.Add(d)) {
			t.Fatalf("after exit %d: state %s count %d exit %d next %v; want restarting, %d, 3, %v", i+1, r.State, r.RestartCount, r.ExitCode, r.NextRestartAt, i+1, t0.Add(d))
		}
		env.expectNoStart()
		env.advanceTo(t0.Add(d))
		env.expectStart(c.ID)
		env.waitState(c.ID, StateRunning)
	}
	env.fc.exit(c.ID, 3)
	r := env.inspect(c.ID)
	if r.State != StateExited || r.RestartCount != 2 || r.ExitCode != 3 {
		t.Fatalf("after the last exit: %s count %d exit %d; want exited, 2, 3", r.State, r.RestartCount, r.ExitCode)
	}
	if d := env.clock.Deadlines(); len(d) != 0 {
		t.Errorf("timers left armed: %v", d)
	}
	// A clean exit is not a failure.
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	env.fc.exit(c.ID, 0)
	if r := env.inspect(c.ID); r.State != StateExited || r.RestartCount != 0 {
		t.Fatalf("after exit 0: %s, count %d", r.State, r.RestartCount)
	}
}

func TestAlwaysBackoffGrowsAndResets(t *testing.T) {
	env := newFakeEnv(t)
	c := env.create(CreateOptions{Restart: RestartPolicy{Name: "always"}})
	if err := env.e.Start(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	for _, d := range []time.Duration{100, 200, 400, 800, 1600} {
		d *= time.Millisecond
		t0 := env.clock.Now()
		env.fc.exit(c.ID, 0)
		env.advanceTo(t0.Add(d))
		env.expectStart(c.ID)
		env.waitState(c.ID, StateRunning)
	}
	// Running for 12s resets the backoff.
	env.clock.Advance(12 * time.Second)
	t0 := env.clock.Now()
	env.fc.exit(c.ID, 1)
	if r := env.inspect(c.ID); !r.NextRestartAt.Equal(t0.Add(100 * time.Millisecond)) {
		t.Fatalf("after a 12s run the next restart is at +%v, want +100ms", r.NextRestartAt.Sub(t0))
	}
	env.advanceTo(t0.Add(100 * time.Millisecond))
	env.expectStart(c.ID)
	if r := env.waitState(c.ID, StateRunning); r.RestartCount != 6 {
		t.Errorf("restart count %d, want 6", r.RestartCount)
	}
}

func TestPendingRestartCancelled(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(env *fakeEnv, id string) error
	}{
		{"stop", func(env *fakeEnv, id string) error { return env.e.Stop(context.Background(), id, nil) }},
		{"remove", func(env *fakeEnv, id string) error { return env.e.Remove(context.Background(), id, false) }},
		{"close", func(env *fakeEnv, id string) error { return env.e.Close(context.Background()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newFakeEnv(t)
			c := env.create(CreateOptions{Restart: RestartPolicy{Name: "always"}})
			if err := env.e.Start(context.Background(), c.ID); err != nil {
				t.Fatal(err)
			}
			env.expectStart(c.ID)
			t0 := env.clock.Now()
			env.fc.exit(c.ID, 1)
			if err := env.clock.WaitForTimer(context.Background(), t0.Add(100*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if err := tc.do(env, c.ID); err != nil {
				t.Fatal(err)
			}
			env.clock.Advance(time.Hour)
			if tc.name != "close" {
				env.e.Close(context.Background()) // waits for every timer goroutine
			}
			env.expectNoStart()
		})
	}
}

func TestExitTime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(time.Minute)
	for _, tc := range []struct {
		name              string
		exitedAt, started time.Time
		want              time.Time
	}{
		{"the exit's own time", start.Add(3 * time.Second), start, start.Add(3 * time.Second)},
		{"no time of its own (a lost exit)", time.Time{}, start, now},
		{"before the start was recorded (a fast exit)", start.Add(-time.Millisecond), start, start},
		{"after now (another clock)", now.Add(time.Hour), start, now},
	} {
		if got := exitTime(tc.exitedAt, tc.started, now); !got.Equal(tc.want) {
			t.Errorf("%s: exitTime = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFinishedAtIsTheExitsTime(t *testing.T) {
	env := newFakeEnv(t)
	evs := recordEvents(t, env.e)
	c := env.create(CreateOptions{})
	if err := env.e.Start(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	started := env.clock.Now()
	env.clock.Advance(3 * time.Second)
	exitedAt := env.clock.Now()
	// The engine handles the exit later than it happened.
	env.clock.Advance(10 * time.Second)
	env.fc.mu.Lock()
	env.fc.ctrs[c.ID].task = libcontainerd.StatusStopped
	pid := env.fc.ctrs[c.ID].pid
	env.fc.mu.Unlock()
	env.e.processEvent(context.Background(), c.ID, libcontainerd.EventExit, libcontainerd.EventInfo{ContainerID: c.ID, ProcessID: c.ID, Pid: pid, ExitCode: 42, ExitedAt: exitedAt})
	r := env.inspect(c.ID)
	if r.State != StateExited || !r.FinishedAt.Equal(exitedAt) || r.FinishedAt.Sub(r.StartedAt) != exitedAt.Sub(started) {
		t.Errorf("record %s finished %v started %v; want exited at %v", r.State, r.FinishedAt, r.StartedAt, exitedAt)
	}
	if err := env.e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var die []Event
	for _, ev := range evs.all() {
		if ev.Type == "die" {
			die = append(die, ev)
		}
	}
	if len(die) != 1 || !die[0].Time.Equal(exitedAt) {
		t.Errorf("die events %+v; want one at %v", die, exitedAt)
	}
}
