// Package initprobe is tend-init, the tiny PID 1 that tend runs in a
// container (like docker run --init), and the engine's side of its probe
// socket.
//
// As PID 1, tend-init starts the container's command, forwards signals to it,
// reaps every process that is reparented to it and exits with the command's
// status (128+n when signal n ended it). A zombie can only be reaped by its
// parent, and orphans in a container go to PID 1: a killed probe's
// grandchild stays a zombie for good under a PID 1 that never waits (a
// `sleep`, most daemons). Under tend-init nothing stays.
//
// With --probe-socket, tend-init also runs health probes on request: the
// engine connects to the socket through a bind mount, sends the probe's
// argv, and tend-init starts it under a subreaper of its own (a fork of
// tend-init in its probe mode, as --probe-subreaper runs it for exec
// probes), streams its output (cut at a limit), and reports its exit. A
// probe costs two forks and an exec inside the container instead of a
// containerd exec (a runc exec costs 50-150 ms of
// CPU): hundreds of containers can be probed every second on two cores.
// Every orphan of the probe is reparented to its subreaper, whatever it
// does with sessions, process groups or double forks; when the probe
// exits, or the engine asks to kill it or goes away, the subreaper kills
// and reaps everything below itself before it exits, and only then is the
// exit reported: no probe process, zombie or exec entry outlives the probe,
// and no leftover that holds the output pipe delays the report. The socket
// accepts only peers outside the container's PID namespace (SO_PEERCRED
// pid 0), so processes in the container cannot run probes through it.
//
// The protocol is JSON lines: the engine sends a request with the argv,
// tend-init answers with the pid (or an error), any number of output chunks,
// then the exit; a second request line (a kill) or the engine closing the
// connection kills the probe. A request with "keep" asks tend-init to keep
// the connection for the next request once the probe ended without a kill
// (the exit then says "kept"): a Pool holds it for the container's next
// probe, one probe at a time per connection. Start, Probe.Wait and
// Probe.Kill are the engine's side; tend-init itself is a small static C
// program, cmd/tend-init/tend-init.c (a Go runtime in every container cost
// ~10x its memory), tested by this package's tests.
package initprobe

import "time"

const (
	// InitPath is where tend-init is bind-mounted (read-only) in a container.
	InitPath = "/sbin/tend-init"
	// SocketDir is where the container's probe socket dir is bind-mounted.
	SocketDir = "/.tend"
	// SocketName is the probe socket's name in SocketDir.
	SocketName = "probe.sock"

	// MaxOutput caps the output of one probe that tend-init sends, whatever
	// the limit asked for.
	MaxOutput = 1 << 20
	// leftoverTimeout bounds the wait for what is left of a probe's session
	// to be killed and reaped when its subreaper was killed.
	leftoverTimeout = 5 * time.Second
	// outputGrace bounds the reading of a probe's output once its
	// subreaper exited: every process of the probe is gone by then, so
	// only a process outside it that got hold of the pipe could keep it
	// open.
	outputGrace = time.Second
	// requestTimeout bounds the wait for a connection's request.
	requestTimeout = 30 * time.Second
)

// probeFlag runs tend-init as a probe's own subreaper (SubreaperArgv);
// reportFlag names the fd on which it reports the probe's pid (or "!" and
// why it did not start) to the probe server.
const (
	probeFlag  = "probe-subreaper"
	reportFlag = "probe-report-fd"
)

// SubreaperArgv returns the argv that runs argv in a container under
// tend-init's probe mode: tend-init (at InitPath) becomes a subreaper,
// runs argv, and when it exits, or on SIGTERM, kills and reaps every
// process argv started, whatever they did with sessions and process
// groups, before it exits with argv's status (127 when it could not start
// it, 137 after a SIGTERM). For a probe that runs as an exec in a
// container that has tend-init mounted.
func SubreaperArgv(argv []string) []string {
	return append([]string{InitPath, "--" + probeFlag, "--"}, argv...)
}

// request is a line from the engine: the first starts a probe, any later one
// (or EOF) kills it.
type request struct {
	Argv  []string `json:"argv,omitempty"`
	Limit int      `json:"limit,omitempty"` // bytes of output to send; 0: MaxOutput
	Kill  bool     `json:"kill,omitempty"`
	// Keep asks tend-init to keep the connection for the next request once
	// the probe ended (not killed); the exit then says Kept.
	Keep bool `json:"keep,omitempty"`
}

// reply is a line from tend-init: first Pid or Error, then Out chunks, then
// Exit.
type reply struct {
	Pid     int    `json:"pid,omitempty"`
	Error   string `json:"error,omitempty"`
	Out     []byte `json:"out,omitempty"`
	Exit    *int   `json:"exit,omitempty"`
	Killed  bool   `json:"killed,omitempty"`  // the exit came from a kill
	Dropped int64  `json:"dropped,omitempty"` // output bytes beyond the limit
	Kept    bool   `json:"kept,omitempty"`    // the connection waits for the next request
}
