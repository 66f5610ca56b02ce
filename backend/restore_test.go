package backend

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/crashtest"
	"github.com/tendhq/tend/libcontainerd"
)

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

// TestBootCountsAStoppedTaskOnce: containerd 1.6 keeps a stopped task
// across its restart. The exit of one whose delete failed after the engine
// recorded it is not counted again by the next engine; the exit of a later
// run, which the engine died before recording, is.
func TestBootCountsAStoppedTaskOnce(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	recorded := env.create(CreateOptions{Name: "recorded", Restart: RestartPolicy{Name: "always"}})
	later := env.create(CreateOptions{Name: "later", Restart: RestartPolicy{Name: "always"}})
	for _, c := range []*Container{recorded, later} {
		if err := env.e.Start(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		env.expectStart(c.ID)
	}
	env.fc.mu.Lock()
	env.fc.deleteErr = errors.New("containerd went away")
	env.fc.mu.Unlock()
	env.clock.Advance(time.Second)
	for _, c := range []*Container{recorded, later} {
		env.fc.exit(c.ID, 1)
		if r := env.inspect(c.ID); r.State != StateRestarting || r.RestartCount != 1 {
			t.Fatalf("%s after its exit: %s, %d restarts; want restarting, 1", r.Name, r.State, r.RestartCount)
		}
	}
	crashtest.Abandon(env.e)
	env.e.Close(ctx)
	env.fc.mu.Lock()
	env.fc.deleteErr = nil
	// later's task is of a run after the recorded exit (its start was
	// not recorded): it exited a second after it.
	env.fc.ctrs[later.ID].exitedAt = env.fc.ctrs[later.ID].exitedAt.Add(time.Second)
	env.fc.mu.Unlock()

	env.open()
	env.fc.wg.Wait()
	if r := env.inspect(recorded.ID); r.State != StateRestarting || r.RestartCount != 1 {
		t.Errorf("recorded: %s, %d restarts; want restarting, 1 (its exit counted once)", r.State, r.RestartCount)
	}
	if st, _ := env.fc.Status(ctx, recorded.ID); st != libcontainerd.StatusNoTask {
		t.Errorf("the stopped task of recorded is %s, want deleted", st)
	}
	if r := env.inspect(later.ID); r.State != StateRestarting || r.RestartCount != 2 {
		t.Errorf("later: %s, %d restarts; want restarting, 2 (the unrecorded run counted)", r.State, r.RestartCount)
	}
}
