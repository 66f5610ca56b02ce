package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// TestFailedStartKeepsState: a start that the runtime refuses (a command
// that cannot be run) returns the classed error and leaves the container
// as it was, created or exited, with the error in its record.
func TestFailedStartKeepsState(t *testing.T) {
	env := newFakeEnv(t)
	ctx := context.Background()
	refused := fmt.Errorf(`exec: "nope": executable file not found in $PATH: %w`, errdefs.ErrInvalidArgument)

	c := env.create(CreateOptions{})
	env.fc.mu.Lock()
	env.fc.startErr = refused
	env.fc.mu.Unlock()
	if err := env.e.Start(ctx, c.ID); !errors.Is(err, refused) || !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Start = %v, want the runtime's invalid argument", err)
	}
	if r := env.inspect(c.ID); r.State != StateCreated || r.Error != refused.Error() || r.Pid != 0 || r.ExitCode != 127 {
		t.Fatalf("after a refused start: state %s, error %q, pid %d, exit code %d; want created with the error and 127, as docker records it", r.State, r.Error, r.Pid, r.ExitCode)
	}

	// Started, exited, then restarted into a refused start: exited.
	env.fc.mu.Lock()
	env.fc.startErr = nil
	env.fc.mu.Unlock()
	if err := env.e.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	env.expectStart(c.ID)
	env.fc.mu.Lock()
	env.fc.startErr = refused
	env.fc.mu.Unlock()
	if err := env.e.Restart(ctx, c.ID, nil); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Restart = %v, want the runtime's invalid argument", err)
	}
	if r := env.inspect(c.ID); r.State != StateExited || r.Error != refused.Error() {
		t.Fatalf("after a refused restart: state %s, error %q; want exited with the error", r.State, r.Error)
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
			if die == nil || die.Attributes["exitCode"] != strconv.Itoa(tc.code) {
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

// TestContainerStopTimeout: a container's --stop-timeout, not the
// engine's StopTimeout (5s here), is the wait before SIGKILL of a Stop
// given no timeout and of the stops at a shutdown without live-restore.
func TestContainerStopTimeout(t *testing.T) {
	two := 2
	for _, shutdown := range []bool{false, true} {
		t.Run(map[bool]string{false: "stop", true: "shutdown"}[shutdown], func(t *testing.T) {
			env := newFakeEnv(t)
			env.fc.ignoreTerm = true
			e := env.e
			if shutdown {
				env.e.Close(context.Background())
				var err error
				e, err = newEngine(context.Background(), Config{Root: env.root, Clock: env.clock, StopTimeout: 5 * time.Second}, env.fc.factory())
				if err != nil {
					t.Fatal(err)
				}
				env.e = e
				t.Cleanup(func() { e.Close(context.Background()) })
			}
			c := env.create(CreateOptions{StopTimeout: &two})
			if err := e.Start(context.Background(), c.ID); err != nil {
				t.Fatal(err)
			}
			env.expectStart(c.ID)
			done := make(chan error, 1)
			t0 := env.clock.Now()
			go func() {
				if shutdown {
					done <- e.Close(context.Background())
					return
				}
				done <- e.Stop(context.Background(), c.ID, nil)
			}()
			env.advanceTo(t0.Add(2 * time.Second))
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			env.fc.mu.Lock()
			sigs := append([]syscall.Signal(nil), env.fc.signals...)
			env.fc.mu.Unlock()
			if len(sigs) != 2 || sigs[0] != syscall.SIGTERM || sigs[1] != syscall.SIGKILL {
				t.Errorf("signals %v, want TERM then KILL after the container's 2s", sigs)
			}
		})
	}
}

// TestTaskCallWhileTheExitIsHandled: the exit handler deletes the exited
// task before it records the exit, and the shim that the deletion shuts
// down answers a call meanwhile with an error of no particular class
// ("ttrpc: closed" from containerd). A stop or forced removal then waits
// for the exit, and a kill, top, stats or resize says the container is not
// running: none fails with the shim's error (a storm's cleanup saw
// "remove: kill it: ttrpc: closed").
func TestTaskCallWhileTheExitIsHandled(t *testing.T) {
	notRunning := func(t *testing.T, env *fakeEnv, id string, err error) {
		if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "not running") {
			t.Fatalf("%v, want not running (failed precondition)", err)
		}
	}
	for _, tc := range []struct {
		name  string
		do    func(e *Engine, id string) error
		check func(t *testing.T, env *fakeEnv, id string, err error)
	}{
		{"remove -f", func(e *Engine, id string) error { return e.Remove(context.Background(), id, true) },
			func(t *testing.T, env *fakeEnv, id string, err error) {
				if err != nil {
					t.Fatalf("Remove: %v", err)
				}
				if _, err := env.e.Inspect(context.Background(), id); !errdefs.IsNotFound(err) {
					t.Errorf("after Remove: %v, want not found", err)
				}
			}},
		{"stop", func(e *Engine, id string) error { return e.Stop(context.Background(), id, nil) },
			func(t *testing.T, env *fakeEnv, id string, err error) {
				if err != nil {
					t.Fatalf("Stop: %v", err)
				}
				if r := env.inspect(id); r.State != StateExited || r.ExitCode != 3 {
					t.Errorf("after Stop: state %s exit %d, want exited 3", r.State, r.ExitCode)
				}
			}},
		{"kill", func(e *Engine, id string) error { return e.Kill(context.Background(), id, syscall.SIGKILL) }, notRunning},
		{"top", func(e *Engine, id string) error { _, err := e.Top(context.Background(), id); return err }, notRunning},
		{"stats", func(e *Engine, id string) error { _, err := e.Stats(context.Background(), id); return err }, notRunning},
		{"resize", func(e *Engine, id string) error { return e.Resize(context.Background(), id, 80, 24) }, notRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newFakeEnv(t)
			c := env.create(CreateOptions{Tty: true})
			if err := env.e.Start(context.Background(), c.ID); err != nil {
				t.Fatal(err)
			}
			env.expectStart(c.ID)
			gate := make(chan struct{})
			env.fc.mu.Lock()
			env.fc.deleteGate, env.fc.deleteHeld = gate, make(chan string, 10)
			env.fc.stoppedSignalErr = fmt.Errorf("ttrpc: closed: %w", errdefs.ErrUnknown)
			env.fc.signalRefused = make(chan string, 10)
			env.fc.mu.Unlock()
			exited := make(chan struct{})
			go func() {
				defer close(exited)
				env.fc.exit(c.ID, 3)
			}()
			<-env.fc.deleteHeld // the handler deletes the task: the exit is not recorded yet
			result := make(chan error, 1)
			go func() { result <- tc.do(env.e, c.ID) }()
			<-env.fc.signalRefused
			close(gate)
			<-exited
			tc.check(t, env, c.ID, <-result)
		})
	}
}
