// Package api is the wire contract between `engine daemon` and the engine CLI:
// the versioned routes, the JSON documents they exchange, how errors carry
// their errdefs class, and the framing of hijacked streams (attach, exec).
//
// The documents mirror package backend's types field for field and tag for
// tag, so the JSON a user sees from `engine inspect` is the backend's record.
// They live here rather than being imported so that the server and the CLI
// can be built and tested against any Engine implementation.
package api

import (
	"time"

	"github.com/tendhq/tend/healthcheck"
)

// Version is the API version prefix of every route.
const Version = "v1"

// MaxJSONBody is the largest JSON request body the daemon reads.
const MaxJSONBody = 1 << 20

// RestartPolicy mirrors backend.RestartPolicy.
type RestartPolicy struct {
	Name              string `json:"name"`
	MaximumRetryCount int    `json:"maximum_retry_count,omitempty"`
}

// Resources mirrors backend.Resources.
type Resources struct {
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"`
	PidsLimit   int64   `json:"pids_limit,omitempty"`
}

// CreateOptions mirrors backend.CreateOptions; it is the body of
// POST /v1/containers.
type CreateOptions struct {
	Name       string              `json:"name,omitempty"`
	Image      string              `json:"image,omitempty"`
	Rootfs     string              `json:"rootfs,omitempty"`
	Cmd        []string            `json:"cmd,omitempty"`
	Env        []string            `json:"env,omitempty"`
	WorkingDir string              `json:"working_dir,omitempty"`
	Labels     map[string]string   `json:"labels,omitempty"`
	Tty        bool                `json:"tty,omitempty"`
	OpenStdin  bool                `json:"open_stdin,omitempty"`
	Restart    RestartPolicy       `json:"restart"`
	Health     *healthcheck.Config `json:"health,omitempty"`
	Resources  Resources           `json:"resources"`
	AutoRemove bool                `json:"auto_remove,omitempty"`
	Init       *bool               `json:"init,omitempty"`
}

// Container mirrors backend.Container, the container record.
type Container struct {
	ID              string             `json:"id"`
	Name            string             `json:"name"`
	Created         time.Time          `json:"created"`
	Config          CreateOptions      `json:"config"`
	State           string             `json:"state"`
	Pid             uint32             `json:"pid,omitempty"`
	ExitCode        int                `json:"exit_code"`
	OOMKilled       bool               `json:"oom_killed,omitempty"`
	ExitReason      string             `json:"exit_reason,omitempty"`
	StartedAt       time.Time          `json:"started_at,omitempty"`
	FinishedAt      time.Time          `json:"finished_at,omitempty"`
	RestartCount    int                `json:"restart_count"`
	NextRestartAt   time.Time          `json:"next_restart_at,omitempty"`
	ManuallyStopped bool               `json:"manually_stopped,omitempty"`
	Error           string             `json:"error,omitempty"`
	Health          *healthcheck.State `json:"health,omitempty"`
	LogPath         string             `json:"log_path"`
}

// Container states, as backend.State.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StatePaused     = "paused"
	StateRestarting = "restarting"
	StateExited     = "exited"
	StateDead       = "dead"
	StateRemoving   = "removing"
)

// Event mirrors backend.Event. A stream of events may end with an Event
// whose Error is set: the stream failed and says why.
type Event struct {
	Time        time.Time         `json:"time"`
	Type        string            `json:"type"`
	ContainerID string            `json:"container_id"`
	Name        string            `json:"name"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// LogEntry is one line of GET /v1/containers/{ref}/logs. A stream may end
// with an entry whose Error is set.
type LogEntry struct {
	Log    string    `json:"log,omitempty"`
	Stream string    `json:"stream,omitempty"`
	Time   time.Time `json:"time,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// ListOptions mirrors backend.ListOptions.
type ListOptions struct {
	All     bool                `json:"all,omitempty"`
	Filters map[string][]string `json:"filters,omitempty"`
}

// LogsOptions mirrors backend.LogsOptions.
type LogsOptions struct {
	Follow bool
	Tail   int // <0: all
	Since  time.Time
}

// TopProcess mirrors backend.TopProcess.
type TopProcess struct {
	Pid     uint32 `json:"pid"`
	PPid    uint32 `json:"ppid"`
	User    string `json:"user"`
	Command string `json:"command"`
}

// Image mirrors backend.Image.
type Image struct {
	Ref     string    `json:"ref"`
	Digest  string    `json:"digest"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// Info mirrors backend.Info.
type Info struct {
	ContainerdVersion string `json:"containerd_version"`
	Namespace         string `json:"namespace"`
	Root              string `json:"root"`
	Containers        int    `json:"containers"`
	Running           int    `json:"running"`
	Paused            int    `json:"paused"`
	Stopped           int    `json:"stopped"`
	Images            int    `json:"images"`
	LiveRestore       bool   `json:"live_restore"`
}

// VersionInfo is the body of GET /v1/version.
type VersionInfo struct {
	Version           string `json:"version"`
	APIVersion        string `json:"api_version"`
	GoVersion         string `json:"go_version"`
	OS                string `json:"os"`
	Arch              string `json:"arch"`
	ContainerdVersion string `json:"containerd_version,omitempty"`
}

// ExecConfig is the body of POST /v1/containers/{ref}/exec.
type ExecConfig struct {
	Cmd         []string `json:"cmd"`
	Env         []string `json:"env,omitempty"`
	WorkingDir  string   `json:"working_dir,omitempty"`
	Tty         bool     `json:"tty,omitempty"`
	AttachStdin bool     `json:"attach_stdin,omitempty"`
	// Width and Height are the client terminal's size, applied as soon as
	// the process runs (0: leave the default).
	Width  uint32 `json:"width,omitempty"`
	Height uint32 `json:"height,omitempty"`
}

// StreamStatus is the payload of a FrameStatus frame on a hijacked stream.
// The first status frame of an exec carries ExecID; the last status frame
// of every stream carries the exit (ExitCode with Exited set) or an Error.
type StreamStatus struct {
	ExecID   string `json:"exec_id,omitempty"`
	Exited   bool   `json:"exited,omitempty"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
	// Class is the errdefs class of Error, as in ErrorResponse.
	Class string `json:"class,omitempty"`
}

// CreateResponse is the body answering POST /v1/containers.
type CreateResponse struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// WaitResponse is the body answering POST /v1/containers/{ref}/wait.
type WaitResponse struct {
	ExitCode int `json:"exit_code"`
}

// Checkpoint mirrors backend.Checkpoint; GET /v1/containers/{ref}/checkpoints
// answers a list of them, oldest first.
type Checkpoint struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// CheckpointCreateOptions is the body of POST
// /v1/containers/{ref}/checkpoints. Without LeaveRunning the container
// stops once dumped.
type CheckpointCreateOptions struct {
	Name         string `json:"name"`
	LeaveRunning bool   `json:"leave_running,omitempty"`
}
