package backend

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
	if r := env.inspect(c.ID); r.State != StateCreated || r.Error != refused.Error() || r.Pid != 0 {
		t.Fatalf("after a refused start: state %s, error %q, pid %d; want created with the error", r.State, r.Error, r.Pid)
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
