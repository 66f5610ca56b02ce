// Package api is the wire contract between `engine daemon` and the engine CLI:
// the versioned routes, the JSON documents they exchange, how errors carry
// their errdefs class, and the framing of hijacked streams (attach, exec).
//
// The documents are package backend's types, aliased from their leaf
// package backend/types (which imports no containerd client, so that the
// CLI starts fast): one definition per concept, so a field added to a
// backend record is on the wire (and in `engine inspect`) with that one
// edit. Only what the wire adds has a type
// of its own here (a stream's closing error, the version, request bodies
// of the API alone).
package api

import (
	backendtypes "github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/io/jsonlog"
)

// Version is the API version prefix of every route.
const Version = "v1"

// EngineVersion is the version of the engine's binaries, the CLI and the
// daemon alike, set at build time with -ldflags
// "-X github.com/tendhq/tend/cmd/internal/api.EngineVersion=...".
var EngineVersion = "0.1.0-dev"

// MaxJSONBody is the largest JSON request body the daemon reads.
const MaxJSONBody = 1 << 20

// The documents shared with package backendtypes.
type (
	// RestartPolicy is a container's restart policy.
	RestartPolicy = backendtypes.RestartPolicy
	// Resources are a container's resource limits.
	Resources = backendtypes.Resources
	// CreateOptions is the body of POST /v1/containers.
	CreateOptions = backendtypes.CreateOptions
	// Container is the container record.
	Container = backendtypes.Container
	// State is a container's state.
	State = backendtypes.State
	// Event is an engine event.
	Event = backendtypes.Event
	// ListOptions select the containers of GET /v1/containers.
	ListOptions = backendtypes.ListOptions
	// LogsOptions select the lines of GET /v1/containers/{ref}/logs.
	LogsOptions = backendtypes.LogsOptions
	// LogRecord is one line of a container's log.
	LogRecord = jsonlog.Entry
	// WaitCondition is what POST /v1/containers/{ref}/wait waits for.
	WaitCondition = backendtypes.WaitCondition
	// Checkpoint describes a checkpoint; GET
	// /v1/containers/{ref}/checkpoints answers a list of them, oldest first.
	Checkpoint = backendtypes.Checkpoint
	// TopProcess is one process of a container.
	TopProcess = backendtypes.TopProcess
	// Image is an image in the engine's namespace.
	Image = backendtypes.Image
	// Info summarises the engine.
	Info = backendtypes.Info

	// RemoveOptions are the query of DELETE /v1/containers/{ref}
	// (?force=1&v=1).
	RemoveOptions = backendtypes.RemoveOptions
	// Volume is a volume (docker's shape); GET /v1/volumes answers a list.
	Volume = backendtypes.Volume
	// VolumeCreateRequest is the body of POST /v1/volumes (docker's shape).
	VolumeCreateRequest = backendtypes.VolumeCreateRequest
	// VolumePruneReport answers POST /v1/volumes/prune (docker's shape).
	VolumePruneReport = backendtypes.VolumePruneReport
	// Mount is a --mount value in CreateOptions.Mounts (docker's shape).
	Mount = backendtypes.Mount
	// MountPoint is a mount in a container record (docker's shape).
	MountPoint = backendtypes.MountPoint
)

// Container states.
const (
	StateCreated    = backendtypes.StateCreated
	StateRunning    = backendtypes.StateRunning
	StatePaused     = backendtypes.StatePaused
	StateRestarting = backendtypes.StateRestarting
	StateExited     = backendtypes.StateExited
	StateDead       = backendtypes.StateDead
	StateRemoving   = backendtypes.StateRemoving
)

// EventMessage is one line of GET /v1/events: an Event, or, as the last
// line of a stream that failed, an Error that says why.
type EventMessage struct {
	Event
	Error string `json:"error,omitempty"`
}

// LogMessage is one line of GET /v1/containers/{ref}/logs: a log line,
// or, as the last line of a stream that failed, an Error.
type LogMessage struct {
	LogRecord
	Error string `json:"error,omitempty"`
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
	// User replaces the container's user (docker exec -u).
	User string `json:"user,omitempty"`
	// Detach leaves the process running: the stream ends once it runs,
	// with a status frame carrying ExecID and Detached (docker exec -d).
	Detach bool `json:"detach,omitempty"`
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
	// Detached ends the stream of an exec started with Detach.
	Detached bool `json:"detached,omitempty"`
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

// CheckpointCreateOptions is the body of POST
// /v1/containers/{ref}/checkpoints. Without LeaveRunning the container
// stops once dumped.
type CheckpointCreateOptions struct {
	Name         string `json:"name"`
	LeaveRunning bool   `json:"leave_running,omitempty"`
}
