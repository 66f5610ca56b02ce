package backend

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/tendhq/tend/backend/types"
	"github.com/tendhq/tend/healthcheck"
	"github.com/tendhq/tend/io/archive"
)

// The data of the engine, and the pure checks of it, live in package
// backend/types, which a client (the engine CLI) imports without the
// containerd client; the aliases and wrappers below keep every name in
// this package's API, with one definition each.

// State is the state of a container as the engine sees it.
type State = types.State

// Container states. Transitions go through one place that validates them.
const (
	StateCreated    = types.StateCreated
	StateRunning    = types.StateRunning
	StatePaused     = types.StatePaused
	StateRestarting = types.StateRestarting
	StateExited     = types.StateExited
	StateDead       = types.StateDead
	StateRemoving   = types.StateRemoving
)

// Restart policy names accepted by ParseRestartPolicy.
const (
	RestartNo            = types.RestartNo
	RestartAlways        = types.RestartAlways
	RestartOnFailure     = types.RestartOnFailure
	RestartUnlessStopped = types.RestartUnlessStopped
)

// Wait conditions.
const (
	WaitNextExit   = types.WaitNextExit
	WaitNotRunning = types.WaitNotRunning
	WaitRemoved    = types.WaitRemoved
)

// Limits of the numbers the engine takes (see types.MinMemory).
const (
	MinMemory         = types.MinMemory
	MaxMemory         = types.MaxMemory
	MinCPUs           = types.MinCPUs
	MaxPids           = types.MaxPids
	MaxRetries        = types.MaxRetries
	MaxTimeoutSeconds = types.MaxTimeoutSeconds
	MaxHealthDuration = types.MaxHealthDuration
	MaxSignal         = types.MaxSignal
	// MaxShmSize bounds --shm-size: 1 TiB.
	MaxShmSize = types.MaxShmSize
)

// Log options of the json-file driver that tend takes (see CheckLogOpts).
const (
	LogOptLabels      = types.LogOptLabels
	LogOptLabelsRegex = types.LogOptLabelsRegex
	LogOptEnv         = types.LogOptEnv
	LogOptEnvRegex    = types.LogOptEnvRegex
)

// Shared shims (see shimgroup.go).
const (
	// ShimGroupAnnotation is the runc v2 shim's grouping annotation.
	ShimGroupAnnotation = types.ShimGroupAnnotation
	// MaxContainersPerShim bounds Config.ContainersPerShim.
	MaxContainersPerShim = types.MaxContainersPerShim
)

type (
	// Resources are the resource limits of a container.
	Resources = types.Resources
	// CreateOptions describe a new container.
	CreateOptions = types.CreateOptions
	// Container is a container record: what Inspect returns and what is
	// persisted, one file per container.
	Container = types.Container
	// NetworkSettings is a container's network while it runs.
	NetworkSettings = types.NetworkSettings
	// Event is an engine event, as `engine events` shows it.
	Event = types.Event
	// RestartPolicy says when the engine restarts a container.
	RestartPolicy = types.RestartPolicy
	// UpdateOptions change a container's settings in place.
	UpdateOptions = types.UpdateOptions
	// RemoveOptions are the options of Remove.
	RemoveOptions = types.RemoveOptions
	// ContainerPruneReport is what Prune removed, as docker's.
	ContainerPruneReport = types.ContainerPruneReport
	// ListOptions select the containers of List.
	ListOptions = types.ListOptions
	// WaitCondition says what Wait waits for.
	WaitCondition = types.WaitCondition
	// LogsOptions select the lines of Logs.
	LogsOptions = types.LogsOptions
	// Checkpoint describes a checkpoint of a container.
	Checkpoint = types.Checkpoint
	// TopProcess is one process of a container.
	TopProcess = types.TopProcess
	// Usage is the disk use of a container.
	Usage = types.Usage
	// PathStat describes a path of a container that ArchivePath read.
	PathStat = types.PathStat
	// Change is one path a container changed, as docker diff shows it.
	Change = types.Change
	// Ulimit is one resource limit of the container's processes.
	Ulimit = types.Ulimit
	// Mount is a --mount value, docker's HostConfig.Mounts element.
	Mount = types.Mount
	// MountPoint is a mount of a container as inspect shows it.
	MountPoint = types.MountPoint
	// Mounts are a container's --mount values.
	Mounts = types.Mounts
	// MountPoints are a container's resolved mounts.
	MountPoints = types.MountPoints
	// Volume is a volume as `engine volume inspect` shows it.
	Volume = types.Volume
	// VolumeCreateRequest is the body of a volume create.
	VolumeCreateRequest = types.VolumeCreateRequest
	// VolumePruneReport says what a prune removed.
	VolumePruneReport = types.VolumePruneReport
	// Image is an image in the engine's namespace.
	Image = types.Image
	// ImageInspect is what `image inspect` shows of an image.
	ImageInspect = types.ImageInspect
	// PruneReport says what PruneImages removed.
	PruneReport = types.PruneReport
	// ProgressEvent is one step of a pull, push or load.
	ProgressEvent = types.ProgressEvent
	// ProgressDetail counts the bytes of one layer.
	ProgressDetail = types.ProgressDetail
	// Info summarises the engine.
	Info = types.Info
	// NetworkEndpoint is a container on a network.
	NetworkEndpoint = types.NetworkEndpoint
	// NetworkInfo is a network and its containers.
	NetworkInfo = types.NetworkInfo
)

// ParseRestartPolicy parses "no" (or ""), "always", "on-failure[:N]" and
// "unless-stopped".
func ParseRestartPolicy(s string) (RestartPolicy, error) { return types.ParseRestartPolicy(s) }

// CheckResources reports resource limits out of range as
// errdefs.ErrInvalidArgument; hostCPUs, when above 0, bounds the CPUs.
func CheckResources(r Resources, hostCPUs int) error { return types.CheckResources(r, hostCPUs) }

// CheckRestart reports a restart policy count out of range.
func CheckRestart(p RestartPolicy) error { return types.CheckRestart(p) }

// CheckHealth reports health check numbers out of range.
func CheckHealth(h *healthcheck.Config) error { return types.CheckHealth(h) }

// CheckLabels reports a label with an empty key.
func CheckLabels(labels map[string]string) error { return types.CheckLabels(labels) }

// CheckCmd reports a command whose program is empty.
func CheckCmd(cmd []string) error { return types.CheckCmd(cmd) }

// CheckStopTimeout reports a stop or restart timeout out of range.
func CheckStopTimeout(timeout *time.Duration) error { return types.CheckStopTimeout(timeout) }

// CheckSignal reports a signal number out of range (1 to MaxSignal).
func CheckSignal(sig syscall.Signal) error { return types.CheckSignal(sig) }

// ParseStopSignal parses a stop signal by name or number.
func ParseStopSignal(s string) (syscall.Signal, error) { return types.ParseStopSignal(s) }

// ParseUlimit parses docker's --ulimit value: name=soft[:hard].
func ParseUlimit(s string) (Ulimit, error) { return types.ParseUlimit(s) }

func checkUlimit(u Ulimit) error { return types.CheckUlimit(u) }

// NormalizeCapability turns "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN"
// into "CAP_NET_ADMIN", and "all" into "ALL".
func NormalizeCapability(c string) (string, error) { return types.NormalizeCapability(c) }

// MergeEnv returns base overridden by over, by variable name.
func MergeEnv(base, over []string) []string { return types.MergeEnv(base, over) }

// CheckLogOpts refuses a log option tend does not know.
func CheckLogOpts(opts map[string]string) error { return types.CheckLogOpts(opts) }

// CheckShimGroup validates a container's ShimGroup ("" is none).
func CheckShimGroup(key string) error { return types.CheckShimGroup(key) }

// CheckContainersPerShim validates Config.ContainersPerShim.
func CheckContainersPerShim(n int) error { return types.CheckContainersPerShim(n) }

// ValidateVolumeName reports a name no volume can have.
func ValidateVolumeName(name string) error { return types.ValidateVolumeName(name) }

// ParseVolumeSpec parses a -v/--volume value as docker does.
func ParseVolumeSpec(raw string) (Mount, string, error) { return types.ParseVolumeSpec(raw) }

// ValidateMount checks a --mount value without touching the filesystem.
func ValidateMount(m *Mount) error { return types.ValidateMount(m) }

// ExtractTar extracts the tar stream r into dir, a path inside root (see
// package io/archive).
func ExtractTar(r io.Reader, root, dir, rename string) error {
	return archive.ExtractTar(r, root, dir, rename)
}

// WriteTar writes src to w as a tar stream whose entries are named from
// name (see package io/archive).
func WriteTar(ctx context.Context, w io.Writer, src, name string) error {
	return archive.WriteTar(ctx, w, src, name)
}

func checkMounts(o *CreateOptions) error { return types.CheckMounts(o) }
