// Package healthcheck runs container health probes with Docker HEALTHCHECK
// semantics: it owns the probe Config and its validation, the health State
// machine (starting, healthy, unhealthy) with its bounded Result log, the
// Scheduler that runs probes for all containers, and KillTree, which kills a
// probe's host process tree.
//
// The package does not know about containerd: a probe runs through the small
// Execer interface that the caller implements. The backend's Execer asks the
// container's tend-init to run the probe (package initprobe: a fork in the
// container, not a containerd exec, with its tree and session killed and
// reaped inside the container) and falls back to a containerd exec.
//
// Concurrency: a Scheduler is safe for concurrent use. It runs one scheduling
// goroutine for all containers plus one goroutine per running probe, bounded by
// the concurrency cap; all of them are owned by the Scheduler and Close waits
// for them. Notifications are delivered on the probe goroutine, never with a
// Scheduler lock held, one at a time and in order for each container.
//
// Zero values: the zero Config is invalid (it has no Test); a Config with only
// Test set gets Docker's defaults. The zero State means "starting". The zero
// Scheduler is not usable: create one with NewScheduler.
package healthcheck
