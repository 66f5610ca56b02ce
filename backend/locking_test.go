package backend

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/testutil"
)

// startHeld calls Start of id and returns once the fake client holds it:
// result receives what Start returns after release.
func (env *fakeEnv) startHeld(ctx context.Context, id string) (result <-chan error, release func()) {
	env.t.Helper()
	release = env.fc.gateStart(id)
	env.t.Cleanup(release)
	done := make(chan error, 1)
	go func() { done <- env.e.Start(ctx, id) }()
	select {
	case got := <-env.fc.startHeld:
		if got != id {
			env.t.Fatalf("start of %s held, want %s", shortID(got), shortID(id))
		}
	case <-time.After(10 * time.Second):
		env.t.Fatalf("no start of %s reached the client", shortID(id))
	}
	return done, release
}

// TestOperationsOnDifferentContainersRunInParallel holds container A's start
// inside containerd (the fake client) while container B is started, stopped,
// inspected and listed: none of that may wait for A.
func TestOperationsOnDifferentContainersRunInParallel(t *testing.T) {
	env := newFakeEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := env.create(CreateOptions{Name: "a"})
	b := env.create(CreateOptions{Name: "b"})
	startA, release := env.startHeld(ctx, a.ID)

	if err := env.e.Start(ctx, b.ID); err != nil {
		t.Fatalf("start b while a's start is held: %v", err)
	}
	env.expectStart(b.ID)
	if err := env.e.Stop(ctx, b.ID, nil); err != nil {
		t.Fatalf("stop b while a's start is held: %v", err)
	}
	if s := env.inspect(b.ID).State; s != StateExited {
		t.Fatalf("b is %s after its stop, want exited", s)
	}
	if s := env.inspect(a.ID).State; s != StateCreated {
		t.Fatalf("a is %s while its start is held, want created", s)
	}
	if l, err := env.e.List(ctx, ListOptions{All: true}); err != nil || len(l) != 2 {
		t.Fatalf("list while a's start is held: %d containers, %v", len(l), err)
	}
	notReturned(t, startA, "a's start, held by the client,")

	release()
	if err := <-startA; err != nil {
		t.Fatalf("start a: %v", err)
	}
	env.expectStart(a.ID)
	if s := env.inspect(a.ID).State; s != StateRunning {
		t.Fatalf("a is %s after its start, want running", s)
	}
}

// TestOperationsOnOneContainerSerialise holds a start of a container and
// stops it meanwhile: the stop waits for the start and then stops the task
// the start made, instead of finding the container still created.
func TestOperationsOnOneContainerSerialise(t *testing.T) {
	env := newFakeEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := env.create(CreateOptions{})
	rec := recordEvents(t, env.e)
	startA, release := env.startHeld(ctx, a.ID)

	stopA := make(chan error, 1)
	go func() { stopA <- env.e.Stop(ctx, a.ID, nil) }()
	testutil.Poll(t, "the stop to wait for the container's operation lock", waitsForOpLock)
	notReturned(t, stopA, "the stop, issued while the start was in progress,")

	release()
	if err := <-startA; err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := <-stopA; err != nil {
		t.Fatalf("stop: %v", err)
	}
	r := env.inspect(a.ID)
	if r.State != StateExited || !r.ManuallyStopped {
		t.Fatalf("after start then stop: %s, manually stopped %v; want exited by a manual stop", r.State, r.ManuallyStopped)
	}
	env.e.Close(ctx)
	var types []string
	for _, ev := range rec.all() {
		if ev.Type != "create" && ev.Type != "kill" {
			types = append(types, ev.Type)
		}
	}
	if got, want := strings.Join(types, " "), "start die stop"; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// waitsForOpLock reports whether a goroutine is blocked taking a container's
// operation lock in lockContainer.
func waitsForOpLock() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "sync.(*Mutex).Lock") && strings.Contains(g, "(*Engine).lockContainer") {
			return true
		}
	}
	return false
}

// notReturned fails the test when the call whose result is sent on result
// returned already.
func notReturned(t *testing.T, result <-chan error, what string) {
	t.Helper()
	select {
	case err := <-result:
		t.Fatalf("%s returned (%v)", what, err)
	default:
	}
}
