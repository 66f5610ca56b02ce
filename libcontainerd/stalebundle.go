package libcontainerd

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
)

// runtimeV2TaskDir is where under its state dir containerd's v2 runtime
// keeps task bundles: <state>/io.containerd.runtime.v2.task/<ns>/<id>.
//
// containerd 1.6 killed while it makes or deletes a task's bundle can leave
// the dir without the task, and every NewTask of the container then fails
// with "failed to start shim: mkdir <bundle>: file exists" (see
// libcontainerd/supervisor, RemoveStaleTaskBundle). The client never deletes
// in containerd's state dir: that is for whoever owns that containerd.
const runtimeV2TaskDir = "io.containerd.runtime.v2.task"

// StaleBundleError is the error of Start when containerd cannot make the
// task's bundle dir because one is left there without a task (containerd
// was killed while creating or deleting a task). It is of class
// errdefs.ErrFailedPrecondition. The owner of that containerd removes the
// dir, for instance with supervisor.RemoveStaleTaskBundle when it runs
// containerd through libcontainerd/supervisor, and starts again.
type StaleBundleError struct {
	Namespace   string
	ContainerID string
	// Dir is the stale bundle dir, as containerd named it.
	Dir string
}

func (e *StaleBundleError) Error() string {
	return fmt.Sprintf("containerd left the task bundle %s behind without its task (it was killed while creating or deleting one) and cannot start a task for %s until it is gone: "+
		"whoever runs that containerd must remove it (libcontainerd/supervisor's RemoveStaleTaskBundle does it safely), or by hand: check that no containerd-shim has it as working directory, unmount %s and remove the dir; then start again: %v",
		e.Dir, e.ContainerID, filepath.Join(e.Dir, "rootfs"), errdefs.ErrFailedPrecondition)
}

// Unwrap classes the error as errdefs.ErrFailedPrecondition.
func (e *StaleBundleError) Unwrap() error { return errdefs.ErrFailedPrecondition }

// staleBundleError returns a *StaleBundleError when err, from NewTask, says
// the task's bundle dir exists and containerd has no task for id, another
// error when it has one, and nil when err is not about a stale bundle.
func (c *client) staleBundleError(ctx context.Context, ct *container, id string, err error) error {
	dir := staleBundle(err, c.ns, id)
	if dir == "" {
		return nil
	}
	switch _, terr := ct.ctr.Task(ctx, nil); {
	case terr == nil:
		return fmt.Errorf("task bundle %s exists and containerd has a task for %s: Restore or DeleteTask it: %w", dir, id, errdefs.ErrFailedPrecondition)
	case !errdefs.IsNotFound(terr):
		return fmt.Errorf("task bundle %s exists; ask containerd for the task of %s: %w", dir, id, terr)
	}
	return &StaleBundleError{Namespace: c.ns, ContainerID: id, Dir: dir}
}

// staleBundle returns the bundle dir of task id in namespace ns that err,
// from NewTask, says exists already ("mkdir <dir>: file exists"), or "".
func staleBundle(err error, ns, id string) string {
	if err == nil {
		return ""
	}
	const exists = ": file exists"
	msg := err.Error()
	end := strings.Index(msg, "/"+runtimeV2TaskDir+"/"+ns+"/"+id+exists)
	if end < 0 {
		return ""
	}
	end += len("/" + runtimeV2TaskDir + "/" + ns + "/" + id)
	start := strings.LastIndex(msg[:end], "mkdir ")
	if start < 0 {
		return ""
	}
	return msg[start+len("mkdir ") : end]
}
