package integration

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/internal/crashtest"
	"github.com/tendhq/tend/io/jsonlog"
)

// engineEnv runs backend Engines for one test on one Root, in the test
// namespace (the test image lives there). At the end the last engine
// removes every container it knows (force) and closes.
type engineEnv struct {
	t    testing.TB
	cfg  backend.Config
	mu   sync.Mutex
	e    *backend.Engine
	evs  *engineEvents
	seen []string // ids of containers created, for the containerd clean-up
	// abandon makes crash close the engine as a SIGKILL of the engine
	// process would (internal/crashtest); without it crash is a Close.
	abandon bool
}

func newEngineEnv(t testing.TB, mod func(*backend.Config)) *engineEnv {
	t.Helper()
	root, err := os.MkdirTemp("/tmp", "tend-be-")
	if err != nil {
		t.Fatal(err)
	}
	env := &engineEnv{t: t, cfg: backend.Config{
		Root: root, ContainerdAddress: testEnv.Address, ContainerdStateDir: testEnv.Daemon.StateDir(), Namespace: testEnv.Namespace,
		InitPath: testEnv.InitPath, LiveRestore: true, StopTimeout: 5 * time.Second,
	}}
	if mod != nil {
		mod(&env.cfg)
	}
	t.Cleanup(func() {
		env.mu.Lock()
		e := env.e
		env.mu.Unlock()
		if e != nil {
			// Each call gets its own minute: one budget for all of a
			// storm's 20 removals ran out on a starved machine and failed
			// the last ones unasked.
			call := func(fn func(ctx context.Context) error) (time.Duration, error) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				start := time.Now()
				err := fn(ctx)
				return time.Since(start), err
			}
			var list []*backend.Container
			_, err := call(func(ctx context.Context) (err error) {
				list, err = e.List(ctx, backend.ListOptions{All: true})
				return err
			})
			if err == nil {
				for _, c := range list {
					took, err := call(func(ctx context.Context) error { return e.Remove(ctx, c.ID, true) })
					if err != nil && !errdefs.IsNotFound(err) {
						t.Errorf("cleanup: remove %s (after %v): %v", c.Name, took.Round(time.Millisecond), err)
					}
				}
			}
			if took, err := call(e.Close); err != nil {
				t.Errorf("cleanup: close engine (after %v): %v", took.Round(time.Millisecond), err)
			}
		}
		for _, id := range env.seen {
			cleanupContainer(t, id)
		}
		os.RemoveAll(root)
	})
	env.open()
	return env
}

// open starts an engine on the env's Root; the previous one must be closed.
func (env *engineEnv) open() *backend.Engine {
	env.t.Helper()
	evs := &engineEvents{changed: make(chan struct{})}
	e, err := backend.New(context.Background(), env.cfg)
	if err != nil {
		env.t.Fatalf("backend.New: %v", err)
	}
	evs.start(e)
	env.mu.Lock()
	env.e, env.evs = e, evs
	env.mu.Unlock()
	return e
}

// crash closes the engine as a SIGKILL would when env.abandon is set.
func (env *engineEnv) crash() {
	env.t.Helper()
	env.mu.Lock()
	e := env.e
	env.e = nil
	env.mu.Unlock()
	if env.abandon {
		crashtest.Abandon(e)
	}
	e.Close(context.Background())
	env.evs.stop()
}

// shutdown closes the engine gracefully.
func (env *engineEnv) shutdown() {
	env.t.Helper()
	env.mu.Lock()
	e := env.e
	env.e = nil
	env.mu.Unlock()
	if err := e.Close(context.Background()); err != nil {
		env.t.Errorf("Close: %v", err)
	}
	env.evs.stop()
}

func (env *engineEnv) create(opts backend.CreateOptions) *backend.Container {
	env.t.Helper()
	if opts.Image == "" && opts.Rootfs == "" {
		opts.Rootfs = testEnv.Rootfs
	}
	c, err := env.e.Create(testCtx(env.t), opts)
	if err != nil {
		env.t.Fatalf("Create: %v", err)
	}
	env.seen = append(env.seen, c.ID)
	return c
}

func (env *engineEnv) run(opts backend.CreateOptions) *backend.Container {
	env.t.Helper()
	c := env.create(opts)
	if err := env.e.Start(testCtx(env.t), c.ID); err != nil {
		env.t.Fatalf("Start %s: %v", c.Name, err)
	}
	return env.inspect(c.ID)
}

func (env *engineEnv) inspect(ref string) *backend.Container {
	env.t.Helper()
	c, err := env.e.Inspect(testCtx(env.t), ref)
	if err != nil {
		env.t.Fatalf("Inspect %s: %v", ref, err)
	}
	return c
}

// waitFor polls the record of ref until cond holds or timeout.
func (env *engineEnv) waitFor(ref string, timeout time.Duration, what string, cond func(*backend.Container) bool) *backend.Container {
	env.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := env.inspect(ref)
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Pid))
			wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", c.Pid))
			var evs []string
			for _, e := range env.evs.of(c.ID, "") {
				evs = append(evs, e.Type+fmt.Sprint(e.Attributes))
			}
			env.t.Logf("diagnostics: /proc/<pid>/stat %q, wchan %q, log %q, events %v", stat, wchan, env.logText(ref), evs)
			env.t.Fatalf("container %s: timed out after %v waiting for %s; record: state %s restarts %d exit %d pid %d reason %q error %q",
				c.Name, timeout, what, c.State, c.RestartCount, c.ExitCode, c.Pid, c.ExitReason, c.Error)
		}
		env.evs.waitChange(50 * time.Millisecond)
	}
}

// logText returns the container's whole log as text.
func (env *engineEnv) logText(ref string) string {
	env.t.Helper()
	var b strings.Builder
	if err := env.e.Logs(testCtx(env.t), ref, backend.LogsOptions{Tail: -1}, func(en jsonlog.Entry) error {
		b.WriteString(en.Log)
		return nil
	}); err != nil {
		env.t.Fatalf("Logs %s: %v", ref, err)
	}
	return b.String()
}

// engineEvents records the events of one engine, from its start: the
// recorder replays what the engine emitted before it subscribed (a restore
// in New emits some).
type engineEvents struct {
	e       *backend.Engine
	mu      sync.Mutex
	evs     []backend.Event
	changed chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// fromStart replays every event an engine still buffers.
var fromStart = time.Unix(0, 0)

func (r *engineEvents) start(e *backend.Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	r.e, r.cancel = e, cancel
	r.wg.Go(func() {
		e.Events(ctx, fromStart, nil, func(ev backend.Event) error {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
			return nil
		})
	})
}

func (r *engineEvents) stop() { r.cancel(); r.wg.Wait() }

// waitChange returns after the next event or after d.
func (r *engineEvents) waitChange(d time.Duration) {
	r.mu.Lock()
	ch := r.changed
	r.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// of returns the recorded events of id (of every type for typ ""). Events
// reach subscribers asynchronously; of first waits until the recorder has
// every event the engine emitted before the call.
func (r *engineEvents) of(id, typ string) []backend.Event {
	r.catchUp(10 * time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []backend.Event
	for _, ev := range r.evs {
		if ev.ContainerID == id && (ev.Type == typ || typ == "") {
			out = append(out, ev)
		}
	}
	return out
}

// catchUp waits, at most d, until the recorder holds the engine's latest
// event. The engine's replay of its buffer (with a done context it returns
// right after the replay) says which event that is.
func (r *engineEvents) catchUp(d time.Duration) {
	if r.e == nil {
		return
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	var last *backend.Event
	r.e.Events(done, fromStart, nil, func(ev backend.Event) error {
		last = &ev
		return nil
	})
	if last == nil {
		return // none, or the engine is closed and the recorder has stopped
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		have := false
		for i := len(r.evs) - 1; i >= 0 && !have; i-- {
			have = reflect.DeepEqual(r.evs[i], *last)
		}
		r.mu.Unlock()
		if have {
			return
		}
		r.waitChange(time.Until(deadline))
	}
}
