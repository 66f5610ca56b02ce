package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
)

// checkpointEngine records the checkpoint calls; checkpoints of container
// "web" only.
type checkpointEngine struct {
	Engine

	mu       sync.Mutex
	cps      []api.Checkpoint
	leave    []bool
	restored []string
	started  int
}

func (f *checkpointEngine) container(ref string) error {
	if ref != "web" {
		return fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return nil
}

func (f *checkpointEngine) CreateCheckpoint(_ context.Context, ref, name string, leaveRunning bool) error {
	if err := f.container(ref); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cp := range f.cps {
		if cp.Name == name {
			return fmt.Errorf("container %s already has a checkpoint %q: %w", ref, name, errdefs.ErrAlreadyExists)
		}
	}
	f.cps = append(f.cps, api.Checkpoint{Name: name, Created: time.Unix(1700000000, 0).UTC()})
	f.leave = append(f.leave, leaveRunning)
	return nil
}

func (f *checkpointEngine) ListCheckpoints(_ context.Context, ref string) ([]api.Checkpoint, error) {
	if err := f.container(ref); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Checkpoint(nil), f.cps...), nil
}

func (f *checkpointEngine) DeleteCheckpoint(_ context.Context, ref, name string) error {
	if err := f.container(ref); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, cp := range f.cps {
		if cp.Name == name {
			f.cps = append(f.cps[:i], f.cps[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("container %s has no checkpoint %q: %w", ref, name, errdefs.ErrNotFound)
}

func (f *checkpointEngine) StartFromCheckpoint(_ context.Context, ref, name string) error {
	if err := f.container(ref); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restored = append(f.restored, name)
	return nil
}

func (f *checkpointEngine) Start(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started++
	return nil
}

func TestCheckpointRoutes(t *testing.T) {
	f := &checkpointEngine{}
	c, sock, _ := serve(t, f)
	ctx := context.Background()

	if err := c.CreateCheckpoint(ctx, "web", "cp1", false); err != nil {
		t.Fatalf("CreateCheckpoint: %v", err)
	}
	if err := c.CreateCheckpoint(ctx, "web", "cp2", true); err != nil {
		t.Fatalf("CreateCheckpoint leave running: %v", err)
	}
	if err := c.CreateCheckpoint(ctx, "web", "cp1", true); !errdefs.IsAlreadyExists(err) {
		t.Errorf("CreateCheckpoint of a name in use: %v; want AlreadyExists (not only a 409)", err)
	}
	if err := c.CreateCheckpoint(ctx, "nope", "cp1", true); !errdefs.IsNotFound(err) {
		t.Errorf("CreateCheckpoint of an unknown container: %v; want NotFound", err)
	}
	if err := c.CreateCheckpoint(ctx, "web", "", true); !errdefs.IsInvalidArgument(err) {
		t.Errorf("CreateCheckpoint without a name: %v; want InvalidArgument", err)
	}
	if status, resp := rawRequest(t, sock, "POST", "/v1/containers/web/checkpoints", nil); status != 400 || resp.Class != errdefs.ErrInvalidArgument.Error() {
		t.Errorf("create without a body: %d %+v; want 400 invalid argument", status, resp)
	}
	f.mu.Lock()
	if fmt.Sprint(f.leave) != "[false true]" {
		t.Errorf("leave_running reached the engine as %v; want [false true]", f.leave)
	}
	f.mu.Unlock()

	cps, err := c.ListCheckpoints(ctx, "web")
	if err != nil || len(cps) != 2 || cps[0].Name != "cp1" || !cps[0].Created.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("ListCheckpoints: %+v, %v", cps, err)
	}
	if err := c.DeleteCheckpoint(ctx, "web", "cp1"); err != nil {
		t.Fatalf("DeleteCheckpoint: %v", err)
	}
	if err := c.DeleteCheckpoint(ctx, "web", "cp1"); !errdefs.IsNotFound(err) {
		t.Errorf("DeleteCheckpoint twice: %v; want NotFound", err)
	}
	if cps, err := c.ListCheckpoints(ctx, "web"); err != nil || len(cps) != 1 || cps[0].Name != "cp2" {
		t.Errorf("ListCheckpoints after delete: %+v, %v", cps, err)
	}

	if err := c.StartFromCheckpoint(ctx, "web", "cp2"); err != nil {
		t.Fatalf("StartFromCheckpoint: %v", err)
	}
	if err := c.Start(ctx, "web"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var re *api.RemoteError
	if err := c.StartFromCheckpoint(ctx, "nope", "cp2"); !errors.As(err, &re) || !errdefs.IsNotFound(err) {
		t.Errorf("StartFromCheckpoint of an unknown container: %v; want a NotFound RemoteError", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fmt.Sprint(f.restored) != "[cp2]" || f.started != 1 {
		t.Errorf("restored %v, plain starts %d; want [cp2] and 1", f.restored, f.started)
	}
}
