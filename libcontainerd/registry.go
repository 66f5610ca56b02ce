package libcontainerd

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/io/fifoset"
)

// container is what the client knows of one container. Its fields are
// guarded by client.mu.
type container struct {
	ctr      containerd.Container
	terminal bool // the init process has a terminal
	task     containerd.Task
	procs    map[string]*process // by process id: the container id for init
	oomSeen  bool                // an OOM was delivered for the current task
	// spec is the container's OCI spec as containerd stores it, the
	// image config and user resolved; never modified, execs copy its
	// process.
	spec *specs.Spec
}

// process is one init or exec process whose exit the Backend must see
// exactly once: live is true from its start until that exit is queued.
type process struct {
	id    string
	proc  containerd.Process
	fifos *fifoset.Set
	pid   uint32 // 0 while an exec is being started
	live  bool
	// exit is the exit delivered to the Backend once live is false.
	exit exitReport
}

// exitReport is the status of an exit as the Backend was told it.
type exitReport struct {
	code uint32
	at   time.Time
}

// container returns what the client knows of id, loading a container that
// an earlier run of the engine created.
func (c *client) container(ctx context.Context, id string) (*container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	c.mu.Lock()
	ct := c.containers[id]
	c.mu.Unlock()
	if ct != nil {
		return ct, nil
	}
	ctr, err := c.cc.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("load spec of container %s: %w", id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct := c.containers[id]; ct != nil {
		return ct, nil
	}
	ct = &container{ctr: ctr, terminal: spec.Process != nil && spec.Process.Terminal, procs: map[string]*process{}, spec: spec}
	c.containers[id] = ct
	return ct, nil
}

// task returns the container's current task, or ErrFailedPrecondition when
// it has none.
func (c *client) task(ctx context.Context, id string) (*container, containerd.Task, error) {
	ct, err := c.container(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	t := ct.task
	c.mu.Unlock()
	if t != nil {
		return ct, t, nil
	}
	if _, err := ct.ctr.Task(ctx, nil); err == nil {
		return ct, nil, fmt.Errorf("container %s has a task from an earlier run of the engine: Restore it first: %w", id, errdefs.ErrFailedPrecondition)
	}
	return ct, nil, fmt.Errorf("container %s is not running: start it first: %w", id, errdefs.ErrFailedPrecondition)
}

// taskOf starts a call on the container's current task: the namespaced
// context and the task, or ErrClosed, or the error of task.
func (c *client) taskOf(ctx context.Context, id string) (context.Context, containerd.Task, error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return ctx, nil, err
	}
	_, t, err := c.task(ctx, id)
	return ctx, t, err
}

// processOf is taskOf for a process of the task (see process).
func (c *client) processOf(ctx context.Context, id, processID string) (context.Context, containerd.Process, error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return ctx, nil, err
	}
	p, err := c.process(ctx, id, processID)
	return ctx, p, err
}

// requireStatus fails with ErrFailedPrecondition unless the task is in one
// of the wanted states; what says what the caller wanted to do.
func requireStatus(ctx context.Context, id string, t containerd.Task, what string, want ...containerd.ProcessStatus) error {
	st, err := t.Status(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("container %s is not running: cannot %s: %w", id, what, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("status of container %s: %w", id, err)
	}
	for _, w := range want {
		if st.Status == w {
			return nil
		}
	}
	return fmt.Errorf("container %s is %s: cannot %s: %w", id, st.Status, what, errdefs.ErrFailedPrecondition)
}

// process returns the live or exited process processID of the container.
func (c *client) process(ctx context.Context, id, processID string) (containerd.Process, error) {
	ct, t, err := c.task(ctx, id)
	if err != nil {
		return nil, err
	}
	if processID == "" || processID == id {
		return t, nil
	}
	c.mu.Lock()
	p := ct.procs[processID]
	c.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("no such process %s in container %s: %w", processID, id, errdefs.ErrNotFound)
	}
	return p.proc, nil
}

// ValidateID reports an error of class errdefs.ErrInvalidArgument unless id
// is a valid container or exec id: containerd's identifier rule
// (github.com/containerd/containerd/v2/pkg/identifiers), letters and digits
// joined by single '.', '_' or '-', at most 76 characters. Every id is
// checked before any path is built from it.
func ValidateID(id string) error { return fifoset.ValidateID(id) }
