package libcontainerd

import (
	"context"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Client drives containers and their tasks in one containerd namespace and
// reports every task event to the Backend it was created with.
//
// Container ids and exec ids must pass ValidateID (containerd's identifier
// rule: at most 76 characters, no leading or trailing separator);
// processID arguments name either the init process (the container id, or "")
// or an exec id.
type Client interface {
	// Version reports the version of the containerd daemon.
	Version(ctx context.Context) (containerd.Version, error)

	// Create creates a container from spec. The root filesystem comes from
	// spec.Root.Path (a rootfs directory) or from WithImage. It fails with
	// ErrAlreadyExists for an id in use and ErrInvalidArgument for a bad id
	// or spec.
	Create(ctx context.Context, id string, spec *specs.Spec, opts ...CreateOption) error

	// Start creates and starts the container's init process and returns its
	// pid. The container must have no task (DeleteTask the previous one).
	Start(ctx context.Context, id string, opts ...StartOption) (pid uint32, err error)

	// SignalProcess sends sig to a process of the container's task.
	SignalProcess(ctx context.Context, id, processID string, sig syscall.Signal) error

	// Exec starts an additional process in the running container and returns
	// its pid. Its exit reaches the Backend as an EventExit with ProcessID
	// execID; the process is deleted from containerd after that event.
	Exec(ctx context.Context, id, execID string, spec *specs.Process, opts ...ExecOption) (pid uint32, err error)

	// ProcessSpec returns a copy of the container's process spec, the
	// base of an exec as docker exec has it: the container's user,
	// environment, working directory and confinement. A non-empty user
	// ("name", "uid", "uid:gid", "name:group") replaces the container's,
	// resolved in its root filesystem; an unknown one is ErrInvalidArgument.
	ProcessSpec(ctx context.Context, id, user string) (*specs.Process, error)

	// ResizeTerminal resizes the terminal of a process started with one.
	ResizeTerminal(ctx context.Context, id, processID string, width, height uint32) error

	// CloseStdin closes the stdin of a process, which then reads EOF. It
	// closes at once: input the engine's copy has not written yet is
	// dropped. To end input after all of it, end the stdin stream given to
	// the StdioCallback instead (that also delivers EOF).
	CloseStdin(ctx context.Context, id, processID string) error

	// Pause freezes every process of the container's task.
	Pause(ctx context.Context, id string) error

	// Resume thaws a paused task.
	Resume(ctx context.Context, id string) error

	// Stats reads the resource usage of the container's task from its cgroup
	// (v1 or v2).
	Stats(ctx context.Context, id string) (*Stats, error)

	// ListPids lists the host pids of every process in the container's task.
	ListPids(ctx context.Context, id string) ([]uint32, error)

	// UpdateResources changes the resource limits of the running task.
	UpdateResources(ctx context.Context, id string, resources *specs.LinuxResources) error

	// CreateCheckpoint checkpoints the container's running or paused task
	// with CRIU into dir (created 0700 if missing; CRIU's dump.log goes
	// there too). The task is left running (a paused task stays paused);
	// with WithCheckpointExit it is killed after the dump and its exit
	// reaches the Backend as an ordinary EventExit (code 137): DeleteTask it before
	// restoring with Start and WithCheckpointDir. The root filesystem is not
	// part of the checkpoint. A dir that already holds a checkpoint fails
	// with ErrAlreadyExists. A container without a running or paused task
	// and a CRIU that is missing or cannot dump the task fail with
	// ErrFailedPrecondition; the message names CRIU's log.
	CreateCheckpoint(ctx context.Context, id, dir string, opts ...CheckpointOption) error

	// CheckpointImage is CreateCheckpoint into an image in containerd's
	// content store, named name (a unique name when empty), and returns the
	// name for WithCheckpointImage. The image is a GC root that also keeps
	// the container's image and a diff of its writable layer (containerd's
	// layout; WithCheckpointImage restores only the processes) until
	// DeleteCheckpointImage. CRIU's log is kept in a temporary directory
	// only when the dump fails; the error names it. A name in use fails with
	// ErrAlreadyExists before anything is dumped.
	CheckpointImage(ctx context.Context, id, name string, opts ...CheckpointOption) (ref string, err error)

	// DeleteCheckpointImage deletes an image CheckpointImage created:
	// ErrNotFound when there is none, ErrInvalidArgument for an image that
	// is not a checkpoint.
	DeleteCheckpointImage(ctx context.Context, name string) error

	// Restore re-attaches to the task of a container created by an earlier
	// run of the engine (the task outlived it). It reports whether the task
	// is alive; an exit that happened while nobody watched is delivered to the
	// Backend as an EventExit, with the exit code when containerd still knows
	// it and with ExitCodeUnknown and a Reason when it does not. A task that
	// was created but never started (the engine died inside Start) is not
	// re-attached: ErrFailedPrecondition, and DeleteTask removes it.
	Restore(ctx context.Context, id string, opts ...RestoreOption) (RestoreResult, error)

	// DeleteTask deletes the container's stopped task and returns its exit
	// status. A task that still runs is refused with ErrFailedPrecondition,
	// and so is one from an earlier run of the engine that did run (Restore
	// it first: its exit is owed); one that never started is deleted and
	// has no exit (zero time). A task containerd lost (it was down when the
	// task ended) returns the status the Backend was given for its exit:
	// the real one when it was delivered before the loss, else
	// ExitCodeUnknown.
	DeleteTask(ctx context.Context, id string) (exitCode uint32, exitedAt time.Time, err error)

	// Delete deletes the container and its snapshot. The container must have
	// no task.
	Delete(ctx context.Context, id string) error

	// Status reports the status of the container's task; StatusNoTask when
	// the container has none.
	Status(ctx context.Context, id string) (Status, error)

	// Close stops the event stream, waits until every queued event has
	// reached the Backend and closes the connection. Containers keep running.
	Close() error

	// Containerd returns the containerd client this Client holds, so that
	// work libcontainerd does not cover (images, content) shares its one
	// connection. The Client keeps owning it: the caller must not Close it,
	// and its calls fail with ErrClosed once the Client is closed. Its
	// default namespace is the Client's.
	Containerd() *containerd.Client
}

// Backend receives the task events of a Client. ProcessEvent is called for
// one container at a time, in the order containerd published the events,
// never on the goroutine that reads the event stream. Events of different
// containers may be delivered concurrently. An error is logged; it does not
// stop the stream.
type Backend interface {
	ProcessEvent(ctx context.Context, containerID string, event EventType, info EventInfo) error
}

// BackendFunc adapts a function to the Backend interface.
type BackendFunc func(ctx context.Context, containerID string, event EventType, info EventInfo) error

// ProcessEvent calls f.
func (f BackendFunc) ProcessEvent(ctx context.Context, containerID string, event EventType, info EventInfo) error {
	return f(ctx, containerID, event, info)
}

// EventType names a task event.
type EventType string

// The task events a Backend receives.
const (
	EventStart       EventType = "start"        // the init process started
	EventExit        EventType = "exit"         // a process (init or exec) exited; delivered exactly once
	EventOOM         EventType = "oom"          // the task hit its memory limit; delivered once per task
	EventExecAdded   EventType = "exec-added"   // an exec process was created
	EventExecStarted EventType = "exec-started" // an exec process started
	EventPaused      EventType = "paused"
	EventResumed     EventType = "resumed"
)

// ExitCodeUnknown is the exit code reported when containerd lost a task
// while it was down, so its real exit status cannot be known.
const ExitCodeUnknown = 255

// EventInfo describes a task event.
type EventInfo struct {
	ContainerID string
	// ProcessID is the container id for the init process, else the exec id.
	ProcessID string
	Pid       uint32
	ExitCode  uint32
	ExitedAt  time.Time
	// OOMKilled is set on the init process's exit when the task hit its
	// memory limit.
	OOMKilled bool
	// Reason explains an exit whose status had to be guessed, for example
	// one that happened while containerd was down and that containerd did
	// not keep.
	Reason string
}

// Status is the status of a container's task.
type Status string

// Task statuses. They match containerd's, plus StatusNoTask.
const (
	StatusNoTask  Status = "no-task"
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusPausing Status = "pausing"
	StatusStopped Status = "stopped"
	StatusUnknown Status = "unknown"
)

// RestoreResult is what Restore found.
type RestoreResult struct {
	Alive bool
	Pid   uint32
	// ExitCode and ExitedAt are set when the task is not alive.
	ExitCode uint32
	ExitedAt time.Time
}
