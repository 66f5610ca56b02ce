package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/internal/crashtest"
	"github.com/tendhq/tend/libcontainerd"
)

// eventRecorder collects engine events from Events.
// eventRecorder records every event of an engine, from its start.
type eventRecorder struct {
	mu  sync.Mutex
	evs []Event
	wg  sync.WaitGroup
}

func recordEvents(t *testing.T, e *Engine) *eventRecorder {
	r := &eventRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	r.wg.Go(func() {
		e.Events(ctx, time.Unix(0, 0), nil, func(ev Event) error {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
			return nil
		})
	})
	t.Cleanup(func() { cancel(); r.wg.Wait() })
	return r
}

// all returns every event of the engine, which must be closed: Events
// delivers what is queued and returns, and all waits for that.
func (r *eventRecorder) all() []Event {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs...)
}

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

func TestManualStopAndKillAreNotUndone(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(e *Engine, id string) error
		code int
	}{
		{"stop", func(e *Engine, id string) error { return e.Stop(context.Background(), id, nil) }, 143},
		{"kill", func(e *Engine, id string) error { return e.Kill(context.Background(), id, syscall.SIGKILL) }, 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newFakeEnv(t)
			evs := recordEvents(t, env.e)
			c := env.create(CreateOptions{Restart: RestartPolicy{Name: "always"}})
			if err := env.e.Start(context.Background(), c.ID); err != nil {
				t.Fatal(err)
			}
			env.expectStart(c.ID)
			if err := tc.do(env.e, c.ID); err != nil {
				t.Fatal(err)
			}
			r := env.waitState(c.ID, StateExited)
			if !r.ManuallyStopped || r.ExitCode != tc.code {
				t.Fatalf("record %+v; want manually stopped with exit %d", r, tc.code)
			}
			if d := env.clock.Deadlines(); len(d) != 0 {
				t.Errorf("a restart is pending after a manual %s: %v", tc.name, d)
			}
			// Kill of a stopped container is refused; Stop succeeds.
			if err := env.e.Kill(context.Background(), c.ID, syscall.SIGKILL); !errdefs.IsFailedPrecondition(err) {
				t.Errorf("Kill of exited container: %v", err)
			}
			if err := env.e.Stop(context.Background(), c.ID, nil); err != nil {
				t.Errorf("Stop of exited container: %v", err)
			}
			env.e.Close(context.Background())
			all := evs.all()
			var die *Event
			for i := range all {
				if all[i].Type == "die" {
					die = &all[i]
				}
			}
			if die == nil || die.Attributes["exit_code"] != strconv.Itoa(tc.code) {
				t.Errorf("die event %+v in %+v", die, all)
			}
		})
	}
}

func TestStopTimeoutEscalates(t *testing.T) {
	env := newFakeEnv(t)
	env.fc.ignoreTerm = true
	c := env.create(CreateOptions{})
	if err := env.e.Start(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	timeout := 3 * time.Second
	done := make(chan error, 1)
	t0 := env.clock.Now()
	go func() { done <- env.e.Stop(context.Background(), c.ID, &timeout) }()
	env.advanceTo(t0.Add(timeout))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	env.fc.mu.Lock()
	sigs := append([]syscall.Signal(nil), env.fc.signals...)
	env.fc.mu.Unlock()
	if len(sigs) != 2 || sigs[0] != syscall.SIGTERM || sigs[1] != syscall.SIGKILL {
		t.Errorf("signals %v, want TERM then KILL", sigs)
	}
	if r := env.inspect(c.ID); r.State != StateExited || r.ExitCode != 137 {
		t.Errorf("record %s exit %d", r.State, r.ExitCode)
	}
}

func TestStateChecks(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	c := env.create(CreateOptions{Name: "web"})
	if _, err := env.e.Create(ctx, CreateOptions{Name: "web", Rootfs: env.root, Cmd: []string{"x"}}); !errdefs.IsAlreadyExists(err) {
		t.Errorf("duplicate name: %v", err)
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		class func(error) bool
	}{
		{"pause created", func() error { return env.e.Pause(ctx, "web") }, errdefs.IsFailedPrecondition},
		{"resume created", func() error { return env.e.Resume(ctx, "web") }, errdefs.IsFailedPrecondition},
		{"kill created", func() error { return env.e.Kill(ctx, "web", syscall.SIGTERM) }, errdefs.IsFailedPrecondition},
		{"exec created", func() error { _, err := env.e.Exec(ctx, "web", ExecOptions{Cmd: []string{"ls"}}); return err }, errdefs.IsFailedPrecondition},
		{"unknown", func() error { return env.e.Start(ctx, "nope") }, errdefs.IsNotFound},
		{"bad wait", func() error { _, err := env.e.Wait(ctx, "web", "soon"); return err }, errdefs.IsInvalidArgument},
		{"bad filter", func() error {
			_, err := env.e.List(ctx, ListOptions{Filters: map[string][]string{"color": {"red"}}})
			return err
		}, errdefs.IsInvalidArgument},
		{"bad create", func() error {
			_, err := env.e.Create(ctx, CreateOptions{Rootfs: "relative", Cmd: []string{"x"}})
			return err
		}, errdefs.IsInvalidArgument},
		{"bad policy", func() error {
			_, err := env.e.Create(ctx, CreateOptions{Rootfs: env.root, Cmd: []string{"x"}, Restart: RestartPolicy{Name: "always", MaximumRetryCount: 2}})
			return err
		}, errdefs.IsInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !tc.class(err) {
				t.Errorf("got %v", err)
			}
		})
	}
	if err := env.e.Start(ctx, c.ID[:8]); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	if err := env.e.Remove(ctx, "web", false); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("remove running: %v", err)
	}
	if err := env.e.Pause(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := env.e.Start(ctx, "web"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("start paused: %v", err)
	}
	if err := env.e.Resume(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	list, err := env.e.List(ctx, ListOptions{Filters: map[string][]string{"name": {"we"}, "status": {"running"}}})
	if err != nil || len(list) != 1 || list[0].ID != c.ID {
		t.Fatalf("List: %v %v", list, err)
	}
	if err := env.e.Remove(ctx, "web", true); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.Inspect(ctx, c.ID); !errdefs.IsNotFound(err) {
		t.Errorf("inspect removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(env.root, "containers", c.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left after remove: %v", err)
	}
}

func TestListFiltersAndOrder(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	a := env.create(CreateOptions{Name: "alpha", Labels: map[string]string{"tier": "web"}})
	env.clock.Advance(time.Second)
	b := env.create(CreateOptions{Name: "beta", Labels: map[string]string{"tier": "db"}})
	env.clock.Advance(time.Second)
	cc := env.create(CreateOptions{Name: "gamma"})
	if err := env.e.Start(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	env.expectStart(b.ID)
	for _, tc := range []struct {
		name string
		opts ListOptions
		want []string
	}{
		{"running only", ListOptions{}, []string{b.ID}},
		{"all newest first", ListOptions{All: true}, []string{cc.ID, b.ID, a.ID}},
		{"label key", ListOptions{All: true, Filters: map[string][]string{"label": {"tier"}}}, []string{b.ID, a.ID}},
		{"label value", ListOptions{All: true, Filters: map[string][]string{"label": {"tier=web"}}}, []string{a.ID}},
		{"status", ListOptions{Filters: map[string][]string{"status": {"created"}}}, []string{cc.ID, a.ID}},
		{"id prefix", ListOptions{All: true, Filters: map[string][]string{"id": {a.ID[:10]}}}, []string{a.ID}},
		{"name", ListOptions{All: true, Filters: map[string][]string{"name": {"amm"}}}, []string{cc.ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := env.e.List(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
			}
			if len(ids) != len(tc.want) {
				t.Fatalf("got %d containers, want %d", len(ids), len(tc.want))
			}
			for i := range ids {
				if ids[i] != tc.want[i] {
					t.Fatalf("order/content differs at %d", i)
				}
			}
		})
	}
}

// TestWaitConditions runs in a synctest bubble: synctest.Wait tells when
// the waiters have taken their snapshot and are blocked.
func TestWaitConditions(t *testing.T) { synctest.Test(t, testWaitConditions) }

func testWaitConditions(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	c := env.create(CreateOptions{})
	if code, err := env.e.Wait(ctx, c.ID, WaitNotRunning); err != nil || code != 0 {
		t.Fatalf("not-running on created: %d %v", code, err)
	}
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	type res struct {
		code int
		err  error
	}
	next, removed, running := make(chan res, 1), make(chan res, 1), make(chan res, 1)
	go func() {
		code, err := env.e.Wait(ctx, c.ID, WaitNextExit)
		next <- res{code, err}
	}()
	go func() {
		code, err := env.e.Wait(ctx, c.ID, WaitRemoved)
		removed <- res{code, err}
	}()
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		code, err := env.e.Wait(wctx, c.ID, WaitNotRunning)
		running <- res{code, err}
	}()
	synctest.Wait() // every waiter is registered and blocked
	cancel()
	if r := <-running; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("not-running returned while running: %+v", r)
	}
	env.fc.exit(c.ID, 5)
	if r := <-next; r.err != nil || r.code != 5 {
		t.Fatalf("next-exit: %+v", r)
	}
	synctest.Wait()
	select {
	case r := <-removed:
		t.Fatalf("removed returned early: %+v", r)
	default:
	}
	if err := env.e.Remove(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
	if r := <-removed; r.err != nil || r.code != 5 {
		t.Fatalf("removed: %+v", r)
	}
}

func TestEventsReplayAndFilter(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	t0 := env.clock.Now()
	c := env.create(CreateOptions{})
	env.clock.Advance(time.Second)
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	var got []string
	var exiter sync.WaitGroup
	defer exiter.Wait()
	stop := errors.New("enough")
	err := env.e.Events(ctx, t0, func(ev Event) bool { return ev.ContainerID == c.ID }, func(ev Event) error {
		got = append(got, ev.Type)
		if ev.Type == "die" {
			return stop
		}
		if ev.Type == "start" {
			exiter.Go(func() { env.fc.exit(c.ID, 0) })
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Events: %v", err)
	}
	want := []string{"create", "start", "die"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	// Replay from later than the create skips it.
	var later []string
	lctx, cancel := context.WithCancel(ctx)
	env.e.Events(lctx, t0.Add(time.Second), nil, func(ev Event) error {
		later = append(later, ev.Type)
		if ev.Type == "die" {
			cancel()
		}
		return nil
	})
	cancel()
	if len(later) != 2 || later[0] != "start" {
		t.Errorf("replay since +1s: %v", later)
	}
}

func TestLiveRestoreWithFakeClient(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	alive := env.create(CreateOptions{Name: "alive", Restart: RestartPolicy{Name: "always"}})
	gone := env.create(CreateOptions{Name: "gone", Restart: RestartPolicy{Name: "on-failure"}})
	stopped := env.create(CreateOptions{Name: "stopped", Restart: RestartPolicy{Name: "always"}})
	pending := env.create(CreateOptions{Name: "pending", Restart: RestartPolicy{Name: "always"}})
	manual := env.create(CreateOptions{Name: "manual", Restart: RestartPolicy{Name: "unless-stopped"}})
	exitedWhileDown := env.create(CreateOptions{Name: "exited", Restart: RestartPolicy{Name: "on-failure"}})
	halfMade := env.create(CreateOptions{Name: "half"})
	for _, c := range []*Container{alive, gone, stopped, pending, manual, exitedWhileDown} {
		if err := env.e.Start(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		env.expectStart(c.ID)
	}
	alivePid := env.inspect(alive.ID).Pid
	if err := env.e.Stop(ctx, "stopped", nil); err != nil {
		t.Fatal(err)
	}
	if err := env.e.Stop(ctx, "manual", nil); err != nil {
		t.Fatal(err)
	}
	t0 := env.clock.Now()
	env.fc.exit(pending.ID, 1) // restart pending at t0+100ms
	// The engine dies.
	crashtest.Abandon(env.e)
	env.e.Close(ctx)
	// While it is down: gone's task vanishes, exited's task exits.
	env.fc.mu.Lock()
	env.fc.ctrs[gone.ID].task = "no-task"
	env.fc.ctrs[exitedWhileDown.ID].task = "stopped"
	env.fc.mu.Unlock()
	// And half's start was cut short after its task was made.
	env.fc.mu.Lock()
	env.fc.ctrs[halfMade.ID].task = libcontainerd.StatusCreated
	env.fc.mu.Unlock()

	env.open()
	// exited's exit comes from the client's queue, as the real one's does.
	env.waitState(exitedWhileDown.ID, StateRestarting)
	if r := env.inspect(alive.ID); r.State != StateRunning || r.Pid != alivePid {
		t.Errorf("alive: %s pid %d, want running pid %d", r.State, r.Pid, alivePid)
	}
	if r := env.inspect(gone.ID); r.State != StateRestarting || r.ExitCode != 255 || r.ExitReason == "" {
		t.Errorf("gone: %s exit %d reason %q; want restarting after an unknown exit", r.State, r.ExitCode, r.ExitReason)
	}
	if r := env.inspect(exitedWhileDown.ID); r.State != StateRestarting || r.ExitCode != 7 {
		t.Errorf("exited: %s exit %d; want restarting after exit 7", r.State, r.ExitCode)
	}
	if r := env.inspect(manual.ID); r.State != StateExited {
		t.Errorf("unless-stopped after a manual stop: %s, want exited", r.State)
	}
	if r := env.inspect(halfMade.ID); r.State != StateCreated || r.Pid != 0 {
		t.Errorf("half-made: %s pid %d, want created", r.State, r.Pid)
	}
	if st, _ := env.fc.Status(ctx, halfMade.ID); st != libcontainerd.StatusNoTask {
		t.Errorf("the never-started task of half-made is %s, want deleted", st)
	}
	// always restarts at engine start, even after a manual stop.
	env.expectStart(stopped.ID)
	if r := env.inspect(stopped.ID); r.State != StateRunning {
		t.Errorf("always after engine restart: %s", r.State)
	}
	env.advanceTo(t0.Add(100 * time.Millisecond))
	started := map[string]bool{}
	for range 3 {
		select {
		case id := <-env.fc.starts:
			started[id] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("restarts after engine restart: %v", started)
		}
	}
	if !started[pending.ID] || !started[gone.ID] || !started[exitedWhileDown.ID] {
		t.Errorf("restarted %v", started)
	}
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

// waitBriefly yields to the probe goroutines between fake clock steps.
func waitBriefly() {
	t := time.NewTimer(time.Millisecond)
	<-t.C
}

func TestCloseWithoutLiveRestoreStopsContainers(t *testing.T) {
	root := t.TempDir()
	fc := newFakeClient()
	clock := healthchecktestClock()
	e, err := newEngine(context.Background(), Config{Root: root, Clock: clock, StopTimeout: time.Second}, fc.factory())
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Create(context.Background(), CreateOptions{Rootfs: root, Cmd: []string{"x"}, Restart: RestartPolicy{Name: "unless-stopped"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, _ := fc.Status(context.Background(), c.ID); st != "no-task" {
		t.Errorf("task after a graceful Close: %s", st)
	}
	// The stop was the engine's, not manual: the next engine starts it again.
	e2, err := newEngine(context.Background(), Config{Root: root, Clock: clock}, fc.factory())
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close(context.Background())
	r, err := e2.Inspect(context.Background(), c.ID)
	if err != nil || r.State != StateRunning || r.ManuallyStopped {
		t.Errorf("after engine restart: %+v, %v", r, err)
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
