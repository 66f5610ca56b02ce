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

// Probe is a probe that tend-init runs. Wait must be called (it releases
// the connection).
type Probe struct {
	conn    *net.UnixConn
	pid     int
	wmu     sync.Mutex // serialises writes of kill requests
	done    chan struct{}
	code    int
	killed  bool
	dropped int64
	err     error
}

// Start asks the tend-init that listens on socketPath to run argv, writing
// its combined output to out, and returns once the probe runs (not charged
// to a probe's timeout). An error classed errdefs.ErrUnavailable means no
// tend-init serves the socket (not started yet, or the container has none):
// the caller may run the probe another way.
func Start(ctx context.Context, socketPath string, argv []string, out io.Writer, opts StartOptions) (_ *Probe, retErr error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("start probe: no command given: %w", errdefs.ErrInvalidArgument)
	}
	conn, err := dial(ctx, socketPath)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			conn.Close()
		}
	}()
	if opts.ServerPid != 0 {
		pid, err := peerPid(conn)
		if err != nil {
			return nil, fmt.Errorf("probe socket %s: %w", socketPath, err)
		}
		if pid != opts.ServerPid {
			return nil, fmt.Errorf("probe socket %s is served by pid %d, not by the container's init (pid %d): %w", socketPath, pid, opts.ServerPid, errdefs.ErrUnavailable)
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req, err := json.Marshal(request{Argv: argv, Limit: opts.Limit})
	if err != nil {
		return nil, fmt.Errorf("start probe: %w", err)
	}
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("start probe: send request to tend-init: %w", ctxErr(ctx, err))
	}
	dec := json.NewDecoder(bufio.NewReader(conn))
	var first reply
	if err := dec.Decode(&first); err != nil {
		return nil, fmt.Errorf("start probe: read tend-init's answer: %w", ctxErr(ctx, err))
	}
	if first.Error != "" {
		return nil, fmt.Errorf("start probe %q: %s", argv[0], first.Error)
	}
	if first.Pid <= 0 {
		return nil, fmt.Errorf("start probe: tend-init answered without a pid: %w", errdefs.ErrUnknown)
	}
	p := &Probe{conn: conn, pid: first.Pid, done: make(chan struct{})}
	go p.read(dec, out)
	return p, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// read takes output chunks and the exit; it owns the connection's reads and
// closes the connection when it returns.
func (p *Probe) read(dec *json.Decoder, out io.Writer) {
	defer close(p.done)
	defer p.conn.Close()
	for {
		var r reply
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("tend-init closed the connection before the probe's exit (did the container stop?): %w", errdefs.ErrUnavailable)
			}
			p.err = fmt.Errorf("probe %d: %w", p.pid, err)
			return
		}
		if len(r.Out) > 0 && out != nil {
			out.Write(r.Out)
		}
		if r.Error != "" {
			p.err = fmt.Errorf("probe %d: %s", p.pid, r.Error)
			return
		}
		if r.Exit != nil {
			p.code, p.killed, p.dropped = *r.Exit, r.Killed, r.Dropped
			return
		}
	}
}

// Pid returns the probe's pid in the container's PID namespace.
func (p *Probe) Pid() int { return p.pid }

// Wait returns the probe's exit code once it exited, its output was
// written and every process it started was killed and reaped. When ctx is
// done first, the connection is closed, which makes tend-init kill the
// probe, and ctx's error is returned.
func (p *Probe) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
		return p.code, p.err
	case <-ctx.Done():
		p.conn.Close()
		<-p.done
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
	if _, err := p.conn.Write([]byte(`{"kill":true}` + "\n")); err != nil {
		select {
		case <-p.done:
			return nil
		default:
		}
		// Closing makes tend-init kill it as well.
		p.conn.Close()
		return fmt.Errorf("kill probe %d: %w", p.pid, err)
	}
	return nil
}

// Killed reports, after Wait, whether the probe ended by a kill.
func (p *Probe) Killed() bool { <-p.done; return p.killed }

// Dropped reports, after Wait, how many output bytes were beyond the limit.
func (p *Probe) Dropped() int64 { <-p.done; return p.dropped }
