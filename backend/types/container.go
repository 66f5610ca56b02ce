package types

import (
	"os"
	"strings"
	"time"

	"github.com/tendhq/tend/healthcheck"
	networktypes "github.com/tendhq/tend/network/types"
)

// State is the state of a container as the engine sees it.
type State string

// Container states. Transitions go through one place that validates them.
const (
	StateCreated    State = "created"
	StateRunning    State = "running"
	StatePaused     State = "paused"
	StateRestarting State = "restarting" // exited, a restart is scheduled
	StateExited     State = "exited"
	StateDead       State = "dead" // the engine could not clean up after it
	StateRemoving   State = "removing"
)

// Resources are the resource limits of a container.
type Resources struct {
	MemoryBytes int64   `json:"memory_bytes,omitempty"` // 0: unlimited
	CPUs        float64 `json:"cpus,omitempty"`         // 0: unlimited; 1.5 = one and a half cores
	PidsLimit   int64   `json:"pids_limit,omitempty"`   // 0: unlimited
}

// CreateOptions describe a new container.
type CreateOptions struct {
	Name       string            `json:"name,omitempty"`   // unique; generated when empty
	Image      string            `json:"image,omitempty"`  // an imported image reference, or
	Rootfs     string            `json:"rootfs,omitempty"` // an absolute rootfs directory
	Cmd        []string          `json:"cmd,omitempty"`    // empty: the image's command
	Env        []string          `json:"env,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Tty        bool              `json:"tty,omitempty"`
	OpenStdin  bool              `json:"open_stdin,omitempty"`
	Restart    RestartPolicy     `json:"restart"`
	// Health configures health probes; nil means none (the image defines
	// none either: the test image has no HEALTHCHECK).
	Health     *healthcheck.Config `json:"health,omitempty"`
	Resources  Resources           `json:"resources"`
	AutoRemove bool                `json:"auto_remove,omitempty"`
	// Init runs tend-init as PID 1 in front of the command (docker run
	// --init): it reaps orphaned zombies and serves health probes without
	// a containerd exec each (see package healthcheck/initprobe). Unset:
	// on for a container with a health check when tend-init is available
	// (Config.InitPath). Create records the decision here.
	Init *bool `json:"init,omitempty"`

	// Networking (see backend/network.go).
	// NetworkMode is "bridge" (the default), "none", "host" or the name
	// of a user network.
	NetworkMode string `json:"network_mode,omitempty"`
	// Publish lists ports to publish; HostPort 0 is a free port picked at
	// every start. Create adds the image's exposed ports for PublishAll.
	Publish    []networktypes.PortMapping `json:"publish,omitempty"`
	PublishAll bool                       `json:"publish_all,omitempty"`
	Hostname   string                     `json:"hostname,omitempty"`    // empty: the short id
	DNS        []string                   `json:"dns,omitempty"`         // servers for /etc/resolv.conf
	ExtraHosts []string                   `json:"extra_hosts,omitempty"` // name:ip lines for /etc/hosts
	// Mounts and volumes.
	// Binds are -v/--volume values, docker's HostConfig.Binds:
	// HOST-PATH:CONTAINER-PATH[:OPTIONS], VOLUME:CONTAINER-PATH[:OPTIONS]
	// or CONTAINER-PATH (an anonymous volume); see ParseVolumeSpec.
	Binds []string `json:"binds,omitempty"`
	// Mounts are --mount values, docker's HostConfig.Mounts (types bind,
	// volume and tmpfs).
	Mounts Mounts `json:"mounts,omitempty"`
	// Privileged (docker run --privileged) also allows a bind mount of the
	// host's root or of the engine's state. (Same field as the confinement
	// work's; keep one.)
	Privileged bool `json:"privileged,omitempty"`

	// Image config and confinement (docker run -u, --entrypoint,
	// --stop-signal, --stop-timeout, --privileged, --cap-add, --cap-drop,
	// --security-opt, --read-only, --tmpfs, --ulimit, --shm-size).
	// User runs the process as "name", "uid", "uid:gid" or "name:group"
	// of the image's /etc/passwd and /etc/group; empty: the image's USER.
	User string `json:"user,omitempty"`
	// Entrypoint replaces the image's ENTRYPOINT (and drops its CMD);
	// nil: the image's; [""]: none, Cmd is the whole command.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// StopSignal is what Stop sends first; empty: the image's STOPSIGNAL,
	// else SIGTERM. Create records the one used.
	StopSignal string `json:"stop_signal,omitempty"`
	// StopTimeout is Stop's default wait in seconds before SIGKILL; nil:
	// the engine's; -1: forever.
	StopTimeout *int `json:"stop_timeout,omitempty"`
	// Privileged is the field of the mounts block below: it also gives
	// all capabilities and host devices, no seccomp filter and no masked
	// paths.
	CapAdd  []string `json:"cap_add,omitempty"`  // "NET_ADMIN", "CAP_NET_ADMIN" or "ALL"
	CapDrop []string `json:"cap_drop,omitempty"` // as CapAdd
	// SecurityOpt: "no-new-privileges", "seccomp=unconfined", "seccomp=<profile JSON>"
	// or "seccomp=<absolute path>", "apparmor=<profile>".
	SecurityOpt    []string `json:"security_opt,omitempty"`
	ReadonlyRootfs bool     `json:"read_only,omitempty"`
	// Tmpfs mounts a tmpfs at each key with the value's options
	// ("size=64m,mode=1777"), after noexec,nosuid,nodev.
	Tmpfs   map[string]string `json:"tmpfs,omitempty"`
	Ulimits []Ulimit          `json:"ulimits,omitempty"`
	ShmSize int64             `json:"shm_size,omitempty"` // /dev/shm in bytes; 0: 64MiB
	// Shared shims (see backend/shimgroup.go).
	// ShimGroup puts the container in the containerd shim of that group
	// (the runc v2 shim's io.containerd.runc.v2.group annotation): one
	// shim process for all of them. Empty: the engine packs it into a
	// group of Config.ContainersPerShim, or a shim of its own. Create
	// records the group here; restarts and live-restore keep it.
	ShimGroup string `json:"shim_group,omitempty"`
	// LogOpts are docker's --log-opt values that tend's json log takes:
	// the extra attributes of each line (see LogAttrs, CheckLogOpts).
	LogOpts map[string]string `json:"log_opts,omitempty"`
}

// Container is a container record: what Inspect returns and what is
// persisted, one file per container.
type Container struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Created   time.Time     `json:"created"`
	Config    CreateOptions `json:"config"`
	State     State         `json:"state"`
	Pid       uint32        `json:"pid,omitempty"`
	ExitCode  int           `json:"exit_code"`
	OOMKilled bool          `json:"oom_killed,omitempty"`
	// ExitReason explains an exit: "unhealthy" for a kill by the health
	// action, or why the status is unknown.
	ExitReason    string    `json:"exit_reason,omitempty"`
	StartedAt     time.Time `json:"started_at,omitempty"`
	FinishedAt    time.Time `json:"finished_at,omitempty"`
	RestartCount  int       `json:"restart_count"`
	NextRestartAt time.Time `json:"next_restart_at,omitempty"`
	// RestartDelay is the current backoff delay before the jitter: the
	// next restart waits this times the multiplier, unless the container
	// ran long enough to reset it.
	RestartDelay    time.Duration `json:"restart_delay,omitempty"`
	ManuallyStopped bool          `json:"manually_stopped,omitempty"`
	Error           string        `json:"error,omitempty"`
	// Health is the health state, persisted so that it survives an engine
	// restart.
	Health *healthcheck.State `json:"health,omitempty"`
	// LogPath is the container's json-file log.
	LogPath string `json:"log_path"`

	// Networking: the network of the current run, from its
	// start until the CNI DEL after its exit.
	Network *NetworkSettings `json:"network,omitempty"`
	// Mounts are the container's bind mounts, volumes and tmpfs mounts as
	// Create resolved them.
	Mounts MountPoints `json:"mounts,omitempty"`

	// docker CLI: what docker shows of a container.
	// ImageName is the image as the user gave it ("busybox"), as docker
	// shows it in ps and .Config.Image; Config.Image is its normalized
	// reference. Empty in records older than it: read Config.Image.
	ImageName string `json:"image_name,omitempty"`
	// SizeRw and SizeRootFs are the size of the files the container
	// changed and of its whole root filesystem, filled in on request
	// (List with Size); never stored.
	SizeRw     int64 `json:"size_rw,omitempty"`
	SizeRootFs int64 `json:"size_root_fs,omitempty"`
}

// NetworkSettings is a container's network while it runs: its namespace
// and what CNI ADD gave it (nil for none and host).
type NetworkSettings struct {
	Mode       string                   `json:"mode"`
	NetNS      string                   `json:"netns,omitempty"`
	Attachment *networktypes.Attachment `json:"attachment,omitempty"`
}

// Event is an engine event, as `engine events` shows it.
type Event struct {
	Time        time.Time         `json:"time"`
	Type        string            `json:"type"` // the action: create, start, die, oom, pause, unpause, restart, health_status, destroy, exec_die, ...
	ContainerID string            `json:"container_id"`
	Name        string            `json:"name"`
	Attributes  map[string]string `json:"attributes,omitempty"` // as docker's: name, image, exitCode, the container's labels; reason, health_status, restart_count, ...

	// Kind is the type of object the event is about, as docker's event
	// Type: "container" (also when empty), "image", ....
	Kind string `json:"kind,omitempty"`
}

// EventKind is e's object type: "container" unless set.
func (e Event) EventKind() string {
	if e.Kind == "" {
		return "container"
	}
	return e.Kind
}

// UpdateOptions change a container's settings in place, as docker update:
// nil fields stay as they are.
type UpdateOptions struct {
	Resources *Resources     `json:"resources,omitempty"`
	Restart   *RestartPolicy `json:"restart,omitempty"`
}

// ContainerPruneReport is what Prune removed, as docker's.
type ContainerPruneReport struct {
	ContainersDeleted []string `json:"containers_deleted"`
	SpaceReclaimed    uint64   `json:"space_reclaimed"`
}

// RemoveOptions are docker's options of a container removal.
type RemoveOptions struct {
	// Force kills a running container first.
	Force bool `json:"force,omitempty"`
	// Volumes removes the container's anonymous volumes too (rm -v); named
	// volumes stay.
	Volumes bool `json:"volumes,omitempty"`
}

// ListOptions select containers for List. Without All only running, paused
// and restarting containers are listed. Filters keys, as docker's:
// "status" (a state), "label" ("k" or "k=v"), "name" (a regexp, as docker's), "id"
// (prefix), "health" (starting, healthy, unhealthy or none), "ancestor" (an
// image reference), "exited" (an exit code of an exited container),
// "before" and "since" (a container: those created before or after it);
// values of one key are alternatives, keys must all match. Limit (> 0)
// keeps the newest Limit containers and implies All, as docker's --last.
type ListOptions struct {
	All     bool
	Filters map[string][]string
	Limit   int
}

// WaitCondition says what Wait waits for.
type WaitCondition string

// Wait conditions.
const (
	WaitNextExit   WaitCondition = "next-exit"   // the next exit of the main process
	WaitNotRunning WaitCondition = "not-running" // the container is created, exited or dead (the default)
	WaitRemoved    WaitCondition = "removed"     // the container is removed
)

// LogsOptions select what Logs returns. Tail is the number of newest
// entries to replay (negative: all, 0: none); Since skips older entries;
// Follow keeps streaming new entries until the container stops (a pending
// restart does not stop it) or ctx ends.
type LogsOptions struct {
	Follow bool
	Tail   int
	Since  time.Time
	// Until (not zero) ends the log at this time, as docker's --until:
	// later lines are not shown, and a follow ends there.
	Until time.Time
	// Details fills each entry's Attrs with the container's log
	// attributes (LogAttrs), as docker's logs --details.
	Details bool
}

// Checkpoint describes a checkpoint of a container.
type Checkpoint struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// TopProcess is one process of a container, read from the host's /proc.
// User is the numeric uid (names inside the container may differ from the
// host's).
type TopProcess struct {
	Pid     uint32 `json:"pid"`
	PPid    uint32 `json:"ppid"`
	User    string `json:"user"`
	Command string `json:"command"`
}

// Usage is the disk use of a container: docker's SizeRw (the files it
// changed) and SizeRootFs (its whole filesystem, image included).
type Usage struct {
	SizeRw     int64 `json:"size_rw"`
	SizeRootFs int64 `json:"size_root_fs"`
}

// PathStat describes the path of a container that ArchivePath read, as
// docker's X-Docker-Container-Path-Stat.
type PathStat struct {
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	Mode       os.FileMode `json:"mode"`
	LinkTarget string      `json:"linkTarget,omitempty"`
	ModTime    time.Time   `json:"mtime"`
}

// Change is one path a container changed, as docker diff shows it: Kind
// 0 modified, 1 added, 2 deleted.
type Change struct {
	Path string `json:"Path"`
	Kind int    `json:"Kind"`
}

// MergeEnv returns base overridden by over, by variable name, the last
// of a name winning, in the order names first appear (the image's
// variables, then --env-file, then -e, as docker run).
func MergeEnv(base, over []string) []string {
	idx := map[string]int{}
	out := make([]string, 0, len(base)+len(over))
	for _, l := range [][]string{base, over} {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := idx[k]; ok {
				out[i] = kv
				continue
			}
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}
