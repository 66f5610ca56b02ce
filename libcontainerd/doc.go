// Package libcontainerd is the layer between a container engine and
// containerd: a Client that creates, starts, execs into, signals, pauses,
// checkpoints, restores and deletes containers in one containerd namespace,
// and reports every task event to a Backend.
//
// # Events
//
// One goroutine owns the containerd event subscription. Events reach the
// Backend through a serial queue per container: in the order containerd
// published them, never on the stream goroutine. When the stream breaks
// (containerd stopped, killed or restarted) the client waits for containerd
// with capped backoff, subscribes again, confirms the subscription with a
// marker event it publishes to itself, and reconciles: every process whose
// exit the Backend has not seen is waited for. So every exit is delivered
// exactly once:
//
//   - an exit is owed from Start or Exec until it is queued; the first report
//     of it (event, wait, DeleteTask) is delivered, later ones are dropped;
//   - a task that containerd dropped while it was down (1.7 and later clean
//     up exited tasks at restart) is delivered as an exit with
//     ExitCodeUnknown and a Reason, never as silence;
//   - OOM is delivered once per task, and the init's exit says OOMKilled.
//
// Before an exit is delivered the process's output is drained (for a
// bounded time), so a log is complete when its exit arrives.
//
// # Concurrency and lifetime
//
// A Client is safe for concurrent use. Close stops the stream and every
// waiter, delivers what is queued and leaves containers running; nothing of
// the Client runs after Close returns, and every later call fails with
// ErrClosed. There is no useful zero value: create a Client with New.
//
// Stdio goes through FIFOs in a private directory (WithFIFODir) that New
// creates 0700 and checks, one directory per process (see io/fifoset).
//
// The client never deletes inside containerd's state dir: a task bundle a
// killed containerd left behind is reported (StaleBundleError) for the
// owner of that containerd to remove (libcontainerd/supervisor).
package libcontainerd
