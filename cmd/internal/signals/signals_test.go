package signals

import (
	"context"
	"io"
	"syscall"
	"testing"
	"time"
)

func TestFirstSignalEndsContext(t *testing.T) {
	ctx, stop := Context(context.Background(), io.Discard)
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not end the context")
	}
	if cause := context.Cause(ctx); cause == nil || cause == context.Canceled {
		t.Errorf("cause %v, want one that names the signal", cause)
	}
}

func TestStopEndsContextWithoutSignal(t *testing.T) {
	ctx, stop := Context(context.Background(), io.Discard)
	if ctx.Err() != nil {
		t.Fatalf("context ended before any signal: %v", ctx.Err())
	}
	stop()
	stop() // a second stop is harmless
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not end the context")
	}
}
