package healthcheck

import (
	"context"
	"errors"
	"io"
)

// ErrContainerStopped is wrapped by an error of Execer.Start or
// Process.Wait when the probe failed because its container stopped (its
// exit is being handled, or its init exited under the probe). The result is
// then dropped, not counted as a failure: the container's exit pauses its
// probes right after (Docker's monitor, stopped with the container, drops
// it too). A failure of a probe of a running container must not wrap it.
var ErrContainerStopped = errors.New("the container stopped")

// Execer runs probe processes inside containers. The backend implements it
// (over containerd exec); the Scheduler calls it from probe goroutines,
// possibly concurrently for different containers.
type Execer interface {
	// Start starts argv inside container containerID, writing combined stdout
	// and stderr to out, and returns once the process is running: the time to
	// start is not charged to the probe timeout. Start must return soon after
	// ctx is done; if it returns a Process, the Scheduler kills and waits it.
	Start(ctx context.Context, containerID string, argv []string, out io.Writer) (Process, error)
}

// Process is a running probe.
type Process interface {
	// Wait returns the exit code once the process exited and its output is
	// drained to the writer given to Start. It must return soon after ctx is
	// done, with an error.
	Wait(ctx context.Context) (exitCode int, err error)
	// Kill kills the whole process tree of the probe (see KillTree) and
	// reaps it; a Wait in progress then returns.
	Kill() error
}

// LimitedWriter is implemented by the writer the Scheduler hands to
// Execer.Start. An Execer that can cut a probe's output at its source keeps
// the first Limit bytes and reports how many it dropped with Omitted, so the
// result still says that (and how much) output was cut.
type LimitedWriter interface {
	io.Writer
	Limit() int
	Omitted(n int64)
}
