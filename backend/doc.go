// Package backend is the reference container engine on containerd: it owns
// container records (one versioned file per container, written atomically
// under Config.Root), the container state machine, restart policies with
// per-container backoff, the wiring of health probes and their
// on-unhealthy actions, and live-restore (re-attaching to running containers
// after the engine process died or was restarted).
//
// An Engine is built with New and released with Close. Containers are named
// in calls by id, unique id prefix or name.
//
// # State machine
//
// States are created, running, paused, restarting (exited, restart pending),
// exited, dead and removing. They change only in one place that refuses
// moves the machine does not allow (errdefs.ErrFailedPrecondition).
//
// # Restarts
//
// Every exit of a container's main process is handled once: the task is
// deleted, the exit recorded (a die event) and the policy decides (see
// ParseRestartPolicy). A restart waits the container's backoff delay and
// starts a new task of the same containerd container with the same log.
// Stop, Kill with a terminating signal, Remove and Close cancel a pending
// restart; a manual stop is never undone by a policy.
//
// # Init and probes
//
// A container with a health check (or CreateOptions.Init set) runs under
// tend-init (package healthcheck/initprobe) as PID 1: it reaps orphaned
// zombies, forwards signals to the command, and runs the health probes the
// engine sends over a unix socket in Root/containers/<id>/init/, bind-mounted
// into the container with tend-init itself (copied to Root/bin). A probe
// costs a fork in the container instead of a containerd exec; when
// tend-init does not answer, the probe runs as an exec.
//
// # Checkpoints
//
// CreateCheckpoint dumps a running container with CRIU into
// Root/containers/<id>/checkpoints/<name>/; with exit (the default) the
// container stops as if stopped by hand and its policy does not restart
// it. StartFromCheckpoint restores it, with its log, attachers and health
// monitor. While a dump runs, probes pause (those in flight are waited for)
// and new execs are refused: an exec joining a frozen container would hang
// the dump, and CRIU cannot dump tend-init's connection to the engine.
//
// # Concurrency
//
// An Engine is safe for concurrent use. Lifecycle operations on one
// container are serialised; operations on different containers run in
// parallel. Exits arrive from libcontainerd on a serial queue per container.
// The Engine owns its goroutines (restart timers, health actions,
// auto-removals, the health scheduler); Close stops and waits for all of
// them. Attach copies end when detached (a Stdin read in progress ends when
// it returns).
//
// # Zero value
//
// The zero Engine is not usable: use New. A zero Config field takes its
// documented default; Root and ContainerdAddress are required.
package backend

import "github.com/containerd/log"

func logger() *log.Entry { return log.L.WithField("component", "backend") }
