package backend

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/testutil"
)

// startHeld waits until the fake holds a Start of id.
func (env *fakeEnv) startHeld(id string) {
	env.t.Helper()
	select {
	case got := <-env.fc.startHeld:
		if got != id {
			env.t.Fatalf("start of %s held, want %s", shortID(got), shortID(id))
		}
	case <-time.After(10 * time.Second):
		env.t.Fatalf("no start of %s reached the client", shortID(id))
	}
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
	release := env.fc.gateStart(a.ID)
	defer release()
	startA := make(chan error, 1)
	go func() { startA <- env.e.Start(ctx, a.ID) }()
	env.startHeld(a.ID)

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
	select {
	case err := <-startA:
		t.Fatalf("a's start returned (%v) while the client still held it", err)
	default:
	}

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
	release := env.fc.gateStart(a.ID)
	defer release()
	startA := make(chan error, 1)
	go func() { startA <- env.e.Start(ctx, a.ID) }()
	env.startHeld(a.ID)

	stopA := make(chan error, 1)
	go func() { stopA <- env.e.Stop(ctx, a.ID, nil) }()
	testutil.Poll(t, "the stop to wait for the container's operation lock", waitsForOpLock)
	select {
	case err := <-stopA:
		t.Fatalf("stop returned (%v) while the start was in progress", err)
	default:
	}

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
