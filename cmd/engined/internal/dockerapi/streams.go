package dockerapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/moby/api/pkg/stdcopy"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/format"
	"github.com/tendhq/tend/io/jsonlog"
)

// Media types of Docker's streams.
const (
	rawStream         = "application/vnd.docker.raw-stream"
	multiplexedStream = "application/vnd.docker.multiplexed-stream"
)

func streamType(tty bool) string {
	if tty {
		return rawStream
	}
	return multiplexedStream
}

// muxWriter writes stdcopy frames (an 8-byte header: the stream, three
// zero bytes, the big-endian length; then the payload) for one stream of
// a connection shared by both; a TTY stream is written raw.
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream stdcopy.StdType
	raw    bool
}

func (m muxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.raw {
		return m.w.Write(p)
	}
	var hdr [8]byte
	hdr[0] = byte(m.stream)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := m.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	return m.w.Write(p)
}

// outputs returns the writers of stdout and stderr over w, nil for a
// stream not asked for.
func outputs(w io.Writer, tty, stdout, stderr bool) (io.Writer, io.Writer) {
	mu := &sync.Mutex{}
	var o, e io.Writer
	if stdout {
		o = muxWriter{mu: mu, w: w, stream: stdcopy.Stdout, raw: tty}
	}
	if stderr {
		e = muxWriter{mu: mu, w: w, stream: stdcopy.Stderr, raw: tty}
	}
	return o, e
}

// session is one hijacked connection.
type session struct {
	conn   net.Conn
	in     io.Reader
	out    io.Writer // fails the session when the client is gone
	ctx    context.Context
	cancel context.CancelFunc
	done   func()
}

type cancelOnErrWriter struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c cancelOnErrWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		c.cancel()
	}
	return n, err
}

// hijack takes over r's connection as dockerd does: 101 UPGRADED when the
// client asked for the upgrade, else a 200 whose body is the stream. With
// stdin the client's bytes are the caller's to read; without, the
// connection is read only to learn that the client hung up.
func (s *Server) hijack(w http.ResponseWriter, r *http.Request, contentType string, stdin bool) (*session, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, fmt.Errorf("the engine is shutting down: %w", errdefs.ErrUnavailable)
	}
	s.sessions.Add(1)
	s.mu.Unlock()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.sessions.Done()
		return nil, fmt.Errorf("hijack connection: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	status := "HTTP/1.1 200 OK\r\nContent-Type: " + contentType + "\r\n\r\n"
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") {
		status = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + contentType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n" +
			"Api-Version: " + APIVersion + "\r\n\r\n"
	}
	if _, err := io.WriteString(conn, status); err != nil {
		conn.Close()
		s.sessions.Done()
		return nil, nil
	}
	var in io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		in = io.MultiReader(bytes.NewReader(append([]byte(nil), b...)), conn)
	}
	ctx, cancel := context.WithCancel(log.WithLogger(s.ctx, log.G(r.Context())))
	ss := &session{conn: conn, in: in, ctx: ctx, cancel: cancel, out: cancelOnErrWriter{w: conn, cancel: cancel}}
	readerDone := make(chan struct{})
	if !stdin {
		go func() {
			defer close(readerDone)
			_, _ = io.Copy(io.Discard, in)
			// A half-close is not a hang-up: the client may still read.
			// Only a read error other than EOF ends the session.
		}()
	} else {
		close(readerDone)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	ss.done = func() {
		stop()
		cancel()
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		conn.Close()
		<-readerDone
		s.sessions.Done()
	}
	return ss, nil
}

// stdinReader reads the client's input; a read error other than EOF ends
// the session (the client is gone).
func (ss *session) stdin() io.Reader { return stdinReader{r: ss.in, cancel: ss.cancel} }

type stdinReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (s stdinReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.cancel()
	}
	return n, err
}

// fail writes err into the stream as output (framed when w is), as
// dockerd does once it upgraded the connection.
func fail(w io.Writer, err error) {
	if w == nil {
		return
	}
	_, resp := api.NewErrorResponse(err)
	_, _ = io.WriteString(w, resp.Message+"\r\n")
}

func isActive(s backend.State) bool {
	return s == backend.StateRunning || s == backend.StatePaused || s == backend.StateRestarting
}

// waitEvent waits for the first event of container id since since whose
// type is among types, and returns its type.
func (s *Server) waitEvent(ctx context.Context, id string, since time.Time, types ...string) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got string
	errGot := errors.New("got")
	err := s.engine.Events(ctx, since, func(e backend.Event) bool {
		if e.ContainerID != id {
			return false
		}
		for _, t := range types {
			if e.Type == t {
				return true
			}
		}
		return false
	}, func(e backend.Event) error {
		got = e.Type
		return errGot
	})
	if errors.Is(err, errGot) {
		return got, nil
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = fmt.Errorf("the engine is shutting down: %w", errdefs.ErrUnavailable)
	}
	return "", err
}

// writeLog writes log entries to the streams asked for.
func writeLog(stdout, stderr io.Writer, timestamps bool) func(jsonlog.Entry) error {
	return func(e jsonlog.Entry) error {
		dst := stdout
		if e.Stream == "stderr" {
			dst = stderr
		}
		if dst == nil {
			return nil
		}
		line := e.Log
		if timestamps {
			line = e.Time.UTC().Format(time.RFC3339Nano) + " " + line
		}
		_, err := io.WriteString(dst, line)
		return err
	}
}

// attachContainer answers POST /containers/{id}/attach. A running
// container is attached at once. A container not started yet is attached
// at its start: its output is then read from its log from the moment of
// the attach, so that a process that writes and exits at once loses
// nothing, and stdin is connected right after the start. The stream ends
// when the process exits.
func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) error {
	stream, logs := boolParam(r, "stream"), boolParam(r, "logs")
	stdin, stdout, stderr := boolParam(r, "stdin"), boolParam(r, "stdout"), boolParam(r, "stderr")
	if !stream && !logs {
		return fmt.Errorf("bad parameters: you must choose at least one of stream or logs: %w", errdefs.ErrInvalidArgument)
	}
	keys, err := parseDetachKeys(r.URL.Query().Get("detachKeys"))
	if err != nil {
		return err
	}
	c, err := s.engine.Inspect(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	if stdin && !c.Config.OpenStdin {
		stdin = false // dockerd ignores stdin for a container without it
	}
	if !isActive(c.State) && c.State != backend.StateCreated && !logs {
		return fmt.Errorf("you cannot attach to a stopped container, start it first: %w", errdefs.ErrConflict)
	}
	id := c.ID
	attachedAt := time.Now()
	ss, err := s.hijack(w, r, streamType(c.Config.Tty), stdin)
	if err != nil || ss == nil {
		return err
	}
	defer ss.done()
	ctx := ss.ctx
	out, errw := outputs(ss.out, c.Config.Tty, stdout, stderr)
	if logs {
		if err := s.engine.Logs(ctx, id, backend.LogsOptions{Tail: -1}, writeLog(out, errw, false)); err != nil {
			log.G(ctx).WithError(err).WithField("container", id).Debug("attach: replay the log")
		}
		attachedAt = time.Now()
	}
	if !stream {
		return nil
	}
	if c, err = s.engine.Inspect(ctx, id); err != nil {
		return nil
	}
	var in io.Reader
	if stdin {
		in = ss.stdin()
		if c.Config.Tty {
			in = newDetachReader(in, keys, ss.cancel, nil)
		}
	}
	if isActive(c.State) {
		exits := s.watchExits(ctx, id, attachedAt)
		defer exits.stop()
		detach, err := s.engine.Attach(ctx, id, backend.AttachOptions{Stdin: in, Stdout: out, Stderr: errw})
		if err != nil {
			fail(errw, err)
			return nil
		}
		defer detach()
		_, _ = exits.next(ctx)
		return nil
	}
	if c.State != backend.StateCreated {
		return nil
	}
	typ, err := s.waitEvent(ctx, id, attachedAt, "start", "destroy")
	if err != nil || typ != "start" {
		return nil
	}
	if in != nil {
		detach, err := s.engine.Attach(ctx, id, backend.AttachOptions{Stdin: in})
		if err == nil {
			defer detach()
		} else if !errdefs.IsFailedPrecondition(err) {
			log.G(ctx).WithError(err).WithField("container", id).Debug("attach: stdin")
		}
	}
	err = s.engine.Logs(ctx, id, backend.LogsOptions{Follow: true, Tail: -1, Since: attachedAt}, writeLog(out, errw, false))
	if err != nil && ctx.Err() == nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).WithField("container", id).Warn("attach: follow the log")
	}
	return nil
}

// logsContainer answers GET /containers/{id}/logs: stdcopy frames, or raw
// for a TTY container.
func (s *Server) logsContainer(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	stdout, stderr := boolParam(r, "stdout"), boolParam(r, "stderr")
	if !stdout && !stderr {
		return fmt.Errorf("bad parameters: you must choose at least one stream: %w", errdefs.ErrInvalidArgument)
	}
	tail := -1
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := api.ParseTail(t)
		if err != nil {
			return err
		}
		tail = n
	}
	since, err := parseDockerTime("since", q.Get("since"))
	if err != nil {
		return err
	}
	var until time.Time
	if u := q.Get("until"); u != "" {
		if until, err = parseDockerTime("until", u); err != nil {
			return err
		}
	}
	ctx := r.Context()
	c, err := s.engine.Inspect(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	follow := boolParam(r, "follow")
	if follow && !until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, until)
		defer cancel()
	}
	w.Header().Set("Content-Type", streamType(c.Config.Tty))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	flushing := flushWriter{w: w, rc: rc}
	out, errw := outputs(flushing, c.Config.Tty, stdout, stderr)
	write := writeLog(out, errw, boolParam(r, "timestamps"))
	details := boolParam(r, "details")
	err = s.engine.Logs(ctx, c.ID, backend.LogsOptions{Follow: follow, Tail: tail, Since: since, Details: details}, func(e jsonlog.Entry) error {
		if !until.IsZero() && e.Time.After(until) {
			return errUntil
		}
		if details {
			// dockerd's shape: the attributes, a space, the line.
			e.Log = format.LogAttrs(e.Attrs) + " " + e.Log
		}
		return write(e)
	})
	if err != nil && !errors.Is(err, errUntil) && ctx.Err() == nil {
		log.G(ctx).WithError(err).WithField("container", c.ID).Debug("logs ended")
	}
	return nil
}

// flushWriter flushes each write to the client, within a deadline.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	_ = f.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}
