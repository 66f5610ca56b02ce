package libcontainerd

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestClosedClient: every method of a closed Client fails with ErrClosed, of
// class ErrFailedPrecondition, before it reaches containerd or the disk.
func TestClosedClient(t *testing.T) {
	ctx := context.Background()
	b := BackendFunc(func(context.Context, string, EventType, EventInfo) error { return nil })
	// Nothing serves there: New does not wait for containerd beyond the
	// dial timeout, and a closed client must not get as far as asking.
	c, err := New(ctx, "unix://"+filepath.Join(t.TempDir(), "none.sock"), "tend-closed", b,
		WithFIFODir(filepath.Join(t.TempDir(), "fifo")), WithDialTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	spec := &specs.Spec{Process: &specs.Process{Args: []string{"true"}}, Root: &specs.Root{Path: "/"}}
	calls := map[string]func() error{
		"Version":               func() error { _, err := c.Version(ctx); return err },
		"Create":                func() error { return c.Create(ctx, "c", spec) },
		"Start":                 func() error { _, err := c.Start(ctx, "c"); return err },
		"SignalProcess":         func() error { return c.SignalProcess(ctx, "c", "", syscall.SIGTERM) },
		"Exec":                  func() error { _, err := c.Exec(ctx, "c", "x", spec.Process); return err },
		"ProcessSpec":           func() error { _, err := c.ProcessSpec(ctx, "c", ""); return err },
		"ResizeTerminal":        func() error { return c.ResizeTerminal(ctx, "c", "", 80, 24) },
		"CloseStdin":            func() error { return c.CloseStdin(ctx, "c", "") },
		"Pause":                 func() error { return c.Pause(ctx, "c") },
		"Resume":                func() error { return c.Resume(ctx, "c") },
		"Stats":                 func() error { _, err := c.Stats(ctx, "c"); return err },
		"ListPids":              func() error { _, err := c.ListPids(ctx, "c"); return err },
		"UpdateResources":       func() error { return c.UpdateResources(ctx, "c", &specs.LinuxResources{}) },
		"CreateCheckpoint":      func() error { return c.CreateCheckpoint(ctx, "c", t.TempDir()) },
		"CheckpointImage":       func() error { _, err := c.CheckpointImage(ctx, "c", ""); return err },
		"DeleteCheckpointImage": func() error { return c.DeleteCheckpointImage(ctx, "checkpoint/x:1") },
		"Restore":               func() error { _, err := c.Restore(ctx, "c"); return err },
		"DeleteTask":            func() error { _, _, err := c.DeleteTask(ctx, "c"); return err },
		"Delete":                func() error { return c.Delete(ctx, "c") },
		"Status":                func() error { _, err := c.Status(ctx, "c"); return err },
		// The connection it shares fails as the Client does.
		"Containerd": func() error { _, err := c.Containerd().Version(ctx); return err },
	}
	// Every method but Close (idempotent, nil) is called.
	ct := reflect.TypeOf((*Client)(nil)).Elem()
	var missing []string
	for i := range ct.NumMethod() {
		if name := ct.Method(i).Name; name != "Close" && calls[name] == nil {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("no closed-client check for %v", missing)
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrClosed) || !errdefs.IsFailedPrecondition(err) {
			t.Errorf("%s after Close: %v, want ErrClosed (failed precondition)", name, err)
		}
	}
}
