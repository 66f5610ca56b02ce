package initprobe

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/containerd/errdefs"
)

// StartOptions tune Start.
type StartOptions struct {
	// Limit is how many bytes of output tend-init sends (0 or more than
	// MaxOutput: MaxOutput); Probe.Dropped counts the rest.
	Limit int
	// ServerPid, when not 0, is the host pid that must be listening on the
	// socket (the container's task): the socket dir is writable from inside
	// the container, so a connection to anything else is refused.
	ServerPid int
}

// Probe is a probe that tend-init runs. Wait must be called (it reads the
// probe's output and exit, and releases the connection).
type Probe struct {
	conn *conn
	pool *Pool // where the connection goes back when tend-init kept it; nil: closed
	pid  int
	out  io.Writer
	// wmu serialises kill requests, and closes, with the connection's
	// release: once released (back in the pool or closed) the probe never
	// touches it again.
	wmu      sync.Mutex
	released bool
	dirty    bool // a kill was written or the connection closed: never reused
	// reader is taken by the Wait that reads the connection, in its own
	// goroutine: no goroutine of the probe's own, and no hand-over from
	// one to the caller, for each probe (a quarter of the engine's CPU
	// per probe went to such hand-overs).
	reader  chan struct{}
	done    chan struct{} // closed once the exit was read and the connection released
	code    int
	killed  bool
	dropped int64
	err     error
}

// conn is a connection to a tend-init, checked to be served by serverPid.
type conn struct {
	c         *net.UnixConn
	dec       *json.Decoder
	path      string
	serverPid int
}

// Start asks the tend-init that listens on socketPath to run argv, and
// returns once the probe runs (not charged to a probe's timeout); Wait
// writes its combined output to out as it comes. An error classed
// errdefs.ErrUnavailable means no tend-init serves the socket (not started
// yet, or the container has none): the caller may run the probe another
// way. The connection serves this probe only; a Pool keeps it for the next.
func Start(ctx context.Context, socketPath string, argv []string, out io.Writer, opts StartOptions) (*Probe, error) {
	return (*Pool)(nil).Start(ctx, socketPath, argv, out, opts)
}

// Pool keeps, for each probe socket, the connection of the last probe that
// ended (not killed) for the next probe there: a probe then costs a request
// on an open connection, not a connect and a check of the peer (about a
// quarter of the engine's CPU per probe: BenchmarkProbe). A container's probes run one
// at a time, so a socket has at most one idle connection. Drop closes a
// socket's: the engine drops it when the container's task ends and before
// a checkpoint (CRIU cannot dump a connection to the engine). A tend-init
// that kept a connection waits on it without a deadline; one that predates
// the protocol's "keep" closes it as before, and says nothing of keeping
// it, so it is not pooled.
type Pool struct {
	mu     sync.Mutex
	idle   map[string]*conn
	closed bool
}

// NewPool returns an empty pool; Close closes its connections.
func NewPool() *Pool { return &Pool{idle: make(map[string]*conn)} }

// Start is the package's Start through p: it reuses the idle connection to
// socketPath when it is served by opts.ServerPid, and when that connection
// turns out closed (its tend-init exited) it dials afresh.
func (p *Pool) Start(ctx context.Context, socketPath string, argv []string, out io.Writer, opts StartOptions) (*Probe, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("start probe: no command given: %w", errdefs.ErrInvalidArgument)
	}
	if c := p.take(socketPath, opts.ServerPid); c != nil {
		pr, err := p.begin(ctx, c, argv, out, opts)
		if !errors.Is(err, errStale) {
			return pr, err
		}
	}
	c, err := dialConn(ctx, socketPath, opts.ServerPid)
	if err != nil {
		return nil, err
	}
	pr, err := p.begin(ctx, c, argv, out, opts)
	if errors.Is(err, errStale) {
		return nil, fmt.Errorf("start probe: tend-init closed the connection before it answered (did the container stop?): %w", errdefs.ErrUnavailable)
	}
	return pr, err
}

// ErrInitExited is wrapped by Probe.Wait's error when tend-init closed the
// connection before the probe's exit: it closes a running probe's
// connection only when it exits, with the container's command.
var ErrInitExited = errors.New("tend-init closed the connection before the probe's exit: the container's init exited")

// errStale marks a connection that was closed before tend-init answered
// the request: a kept one whose tend-init went away.
var errStale = errors.New("probe connection closed")

func dialConn(ctx context.Context, socketPath string, serverPid int) (*conn, error) {
	uc, err := dial(ctx, socketPath)
	if err != nil {
		return nil, err
	}
	if serverPid != 0 {
		pid, err := peerPid(uc)
		if err != nil {
			uc.Close()
			return nil, fmt.Errorf("probe socket %s: %w", socketPath, err)
		}
		if pid != serverPid {
			uc.Close()
			return nil, fmt.Errorf("probe socket %s is served by pid %d, not by the container's init (pid %d): %w", socketPath, pid, serverPid, errdefs.ErrUnavailable)
		}
	}
	return &conn{c: uc, dec: json.NewDecoder(bufio.NewReader(uc)), path: socketPath, serverPid: serverPid}, nil
}

// begin sends the request on c and reads tend-init's first answer; c is
// closed on failure.
func (p *Pool) begin(ctx context.Context, c *conn, argv []string, out io.Writer, opts StartOptions) (_ *Probe, retErr error) {
	defer func() {
		if retErr != nil {
			c.c.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { c.c.Close() })
	defer stop()
	req, err := json.Marshal(request{Argv: argv, Limit: opts.Limit, Keep: p != nil})
	if err != nil {
		return nil, fmt.Errorf("start probe: %w", err)
	}
	if _, err := c.c.Write(append(req, '\n')); err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errStale, err)
		}
		return nil, fmt.Errorf("start probe: send request to tend-init: %w", ctxErr(ctx, err))
	}
	var first reply
	if err := c.dec.Decode(&first); err != nil {
		if ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			err = fmt.Errorf("%w: %w", errStale, err)
		}
		return nil, fmt.Errorf("start probe: read tend-init's answer: %w", ctxErr(ctx, err))
	}
	if first.Error != "" {
		return nil, fmt.Errorf("start probe %q: %s", argv[0], first.Error)
	}
	if first.Pid <= 0 {
		return nil, fmt.Errorf("start probe: tend-init answered without a pid: %w", errdefs.ErrUnknown)
	}
	return &Probe{conn: c, pool: p, pid: first.Pid, out: out, reader: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// take returns the idle connection to path, if it is served by serverPid.
func (p *Pool) take(path string, serverPid int) *conn {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	c := p.idle[path]
	delete(p.idle, path)
	p.mu.Unlock()
	if c != nil && c.serverPid != serverPid {
		c.c.Close() // the container's task changed
		return nil
	}
	return c
}

// put keeps c as path's idle connection, or closes it.
func (p *Pool) put(c *conn) {
	p.mu.Lock()
	if p.closed || p.idle[c.path] != nil {
		p.mu.Unlock()
		c.c.Close()
		return
	}
	p.idle[c.path] = c
	p.mu.Unlock()
}

// Drop closes the idle connection to socketPath, if any.
func (p *Pool) Drop(socketPath string) {
	p.mu.Lock()
	c := p.idle[socketPath]
	delete(p.idle, socketPath)
	p.mu.Unlock()
	if c != nil {
		c.c.Close()
	}
}

// Close closes every idle connection; a probe that ends later closes its
// own.
func (p *Pool) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.c.Close()
	}
	return nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// read takes output chunks and the exit; it owns the connection's reads,
// and releases the connection (to the pool when tend-init kept it) before
// done is closed.
func (p *Probe) read() {
	defer close(p.done)
	kept := false
	defer func() {
		p.wmu.Lock()
		reuse := kept && !p.dirty && p.pool != nil
		p.released = true
		p.wmu.Unlock()
		if reuse {
			p.pool.put(p.conn)
		} else {
			p.conn.c.Close()
		}
	}()
	for {
		var r reply
		if err := p.conn.dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
				err = fmt.Errorf("%w: %w", ErrInitExited, errdefs.ErrUnavailable)
			}
			p.err = fmt.Errorf("probe %d: %w", p.pid, err)
			return
		}
		if len(r.Out) > 0 && p.out != nil {
			p.out.Write(r.Out)
		}
		if r.Error != "" {
			p.err = fmt.Errorf("probe %d: %s", p.pid, r.Error)
			return
		}
		if r.Exit != nil {
			p.code, p.killed, p.dropped = *r.Exit, r.Killed, r.Dropped
			kept = r.Kept
			return
		}
	}
}

// closeConn closes the connection unless it was released, which makes
// tend-init kill the probe.
func (p *Probe) closeConn() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if !p.released {
		p.dirty = true
		p.conn.c.Close()
	}
}

// Pid returns the probe's pid in the container's PID namespace.
func (p *Probe) Pid() int { return p.pid }

// Wait reads the probe's output into out, in the caller's goroutine, and
// returns its exit code once it exited, its output was written and every
// process it started was killed and reaped. When ctx is done first, the
// connection is closed, which makes tend-init kill the probe, and ctx's
// error is returned. Kill may be called while Wait runs.
func (p *Probe) Wait(ctx context.Context) (int, error) {
	select {
	case p.reader <- struct{}{}:
		// This Wait reads, until the exit or until ctx's end closes the
		// connection under the read.
		stop := context.AfterFunc(ctx, p.closeConn)
		p.read()
		if !stop() && p.err != nil {
			return -1, ctx.Err()
		}
		return p.code, p.err
	case <-p.done:
		return p.code, p.err
	case <-ctx.Done():
		p.closeConn()
		select {
		case p.reader <- struct{}{}:
			p.read() // ends at once: the connection is closed
		case <-p.done: // another Wait read
		}
		return -1, ctx.Err()
	}
}

// Kill asks tend-init to kill the probe and every process it started; Wait
// then returns. A probe that already exited is not an error.
func (p *Probe) Kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.released {
		return nil // it exited meanwhile
	}
	p.dirty = true
	if _, err := p.conn.c.Write([]byte(`{"kill":true}` + "\n")); err != nil {
		select {
		case <-p.done:
			return nil
		default:
		}
		// Closing makes tend-init kill it as well.
		p.conn.c.Close()
		return fmt.Errorf("kill probe %d: %w", p.pid, err)
	}
	return nil
}

// Killed reports, after Wait, whether the probe ended by a kill.
func (p *Probe) Killed() bool { <-p.done; return p.killed }

// Dropped reports, after Wait, how many output bytes were beyond the limit.
func (p *Probe) Dropped() int64 { <-p.done; return p.dropped }
