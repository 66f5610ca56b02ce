package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
)

// ParseTime parses a ?since= value: RFC 3339 (with or without fractional
// seconds) or unix seconds with an optional fraction.
func ParseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return api.ParseUnixSeconds(v)
}

// jsonStream writes a JSON-lines stream; each line must reach the client
// within a timeout, so a client that stops reading is cut off instead of
// holding its handler (and what feeds it) forever.
type jsonStream struct {
	enc     *json.Encoder
	rc      *http.ResponseController
	timeout time.Duration
}

// startStream writes the header of a JSON-lines stream and flushes it so the
// client knows the stream is established before the first line.
func (s *Server) startStream(w http.ResponseWriter) *jsonStream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	return &jsonStream{enc: json.NewEncoder(w), rc: rc, timeout: s.opts.StreamWriteTimeout}
}

// send writes one line and flushes it.
func (j *jsonStream) send(v any) error {
	_ = j.rc.SetWriteDeadline(time.Now().Add(j.timeout))
	if err := j.enc.Encode(v); err != nil {
		return err
	}
	return j.rc.Flush()
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	opts := api.LogsOptions{Follow: boolParam(q.Get("follow")), Details: boolParam(q.Get("details"))}
	tail, err := api.ParseTail(q.Get("tail"))
	if err != nil {
		return err
	}
	opts.Tail = tail
	since, err := ParseTime(q.Get("since"))
	if err != nil {
		return err
	}
	opts.Since = since
	if opts.Until, err = ParseTime(q.Get("until")); err != nil {
		return err
	}
	ref := r.PathValue("ref")
	// Unknown containers get a 404 rather than an error inside a stream.
	if _, err := s.engine.Inspect(ctx, ref); err != nil {
		return err
	}
	out := s.startStream(w)
	err = s.engine.Logs(ctx, ref, opts, func(e api.LogRecord) error { return out.send(e) })
	if err != nil && ctx.Err() == nil {
		_ = out.send(api.LogMessage{Error: err.Error()})
	}
	return nil
}

// errSlowClient ends an events stream whose client fell too far behind.
var errSlowClient = errors.New("events client fell behind")

// eventKinds are docker's event object types.
var eventKinds = []string{"container", "image", "volume", "network", "daemon", "plugin", "node", "service", "secret", "config"}

// EventFilter builds the predicate for ?filter= values of GET /v1/events,
// as docker's: type (the object type: container, image, ...), event (the
// action: die, start, ...), container (an id, id prefix or name), image (as
// the container's image was given, or normalized), label (KEY or
// KEY=VALUE, among the container's labels) and any attribute as
// attr.NAME=VALUE. Values of one key are alternatives; keys must all match.
func EventFilter(raw []string) (func(api.Event) bool, error) {
	filters := make(map[string][]string)
	for _, f := range raw {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid filter %s: want key=value: %w", api.Echo(f), errdefs.ErrInvalidArgument)
		}
		switch {
		case k == "type":
			if !slices.Contains(eventKinds, v) {
				return nil, fmt.Errorf("invalid event type filter %s: want one of %s (for an action such as die, filter event=die): %w", api.Echo(v), strings.Join(eventKinds, ", "), errdefs.ErrInvalidArgument)
			}
		case k == "image":
			if ref, err := backend.NormalizeImageRef(v); err == nil {
				filters["image.normalized"] = append(filters["image.normalized"], ref)
			}
		case k == "event", k == "container", k == "label", strings.HasPrefix(k, "attr."):
		default:
			return nil, fmt.Errorf("invalid event filter key %s: want type, event, container, image, label or attr.NAME: %w", api.Echo(k), errdefs.ErrInvalidArgument)
		}
		filters[k] = append(filters[k], v)
	}
	if len(filters) == 0 {
		return nil, nil
	}
	norm := filters["image.normalized"]
	delete(filters, "image.normalized")
	return func(e api.Event) bool {
		for k, vs := range filters {
			match := false
			for _, v := range vs {
				switch {
				case k == "type":
					match = match || e.EventKind() == v
				case k == "event":
					match = match || e.Type == v
				case k == "container":
					match = match || (e.EventKind() == "container" && (e.Name == v || (v != "" && strings.HasPrefix(e.ContainerID, v))))
				case k == "image":
					img := e.Attributes["image"]
					match = match || img == v || slices.Contains(norm, img)
					if n, err := backend.NormalizeImageRef(img); err == nil && img != "" {
						match = match || slices.Contains(norm, n)
					}
				case k == "label":
					lk, lv, hasVal := strings.Cut(v, "=")
					got, ok := e.Attributes[lk]
					match = match || (ok && (!hasVal || got == lv))
				default:
					match = match || e.Attributes[strings.TrimPrefix(k, "attr.")] == v
				}
			}
			if !match {
				return false
			}
		}
		return true
	}, nil
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	since, err := ParseTime(q.Get("since"))
	if err != nil {
		return err
	}
	var until time.Time
	if u := q.Get("until"); u != "" {
		if until, err = ParseTime(u); err != nil {
			return err
		}
	}
	filter, err := EventFilter(q["filter"])
	if err != nil {
		return err
	}
	if !until.IsZero() {
		// A window: nothing after until, and the stream ends at until,
		// at once after the replay for a window in the past.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, until)
		defer cancel()
		inner := filter
		filter = func(e api.Event) bool {
			return !e.Time.After(until) && (inner == nil || inner(e))
		}
	}
	out := s.startStream(w)
	// The engine hands events over as fast as they come; a bounded queue
	// and a writer of its own keep a slow client from holding them in
	// the engine: when the queue is full the client is disconnected, as
	// moby's pubsub drops a subscriber that does not keep up.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan api.Event, s.opts.EventQueue)
	writeErr := make(chan error, 1)
	go func() {
		for e := range queue {
			if err := out.send(e); err != nil {
				cancel()
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	err = s.engine.Events(ctx, since, filter, func(e api.Event) error {
		select {
		case queue <- e:
			return nil
		default:
			return errSlowClient
		}
	})
	close(queue)
	if werr := <-writeErr; werr != nil {
		return nil
	}
	if errors.Is(err, errSlowClient) {
		log.G(ctx).WithField("queued", s.opts.EventQueue).Warn("events client disconnected: it fell behind")
		_ = out.send(api.EventMessage{Event: api.Event{Time: time.Now()}, Error: fmt.Sprintf("disconnected: more than %d events waited for this client; read faster, and reconnect with --since to catch up", s.opts.EventQueue)})
		return nil
	}
	if err != nil && ctx.Err() == nil {
		_ = out.send(api.EventMessage{Event: api.Event{Time: time.Now()}, Error: err.Error()})
	}
	return nil
}

// session is one hijacked connection: the frames to the client, the raw
// bytes from it, and a context that ends when the client goes away.
type session struct {
	conn   net.Conn
	in     io.Reader
	frames *api.FrameWriter
	ctx    context.Context
	cancel context.CancelFunc
	done   func()
}

// errWriter cancels the session when a write to the client fails: the
// client is gone.
type errWriter struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (e errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.cancel()
	}
	return n, err
}

// errReader cancels the session when reading from the client fails with
// anything but EOF (a half-close only ends stdin).
type errReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (e errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.cancel()
	}
	return n, err
}

// hijack takes over the connection of r, which must ask for an upgrade to a
// raw stream, and answers 101. The session ends with done, which closes the
// connection and waits for the goroutines it started.
func (s *Server) hijack(w http.ResponseWriter, r *http.Request, stdin bool) (*session, error) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "tcp") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		return nil, fmt.Errorf("this endpoint streams: send Connection: Upgrade and Upgrade: tcp: %w", errdefs.ErrInvalidArgument)
	}
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
	if _, err := io.WriteString(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.tend.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"); err != nil {
		conn.Close()
		s.sessions.Done()
		return nil, nil
	}
	// Read the client directly from the connection (after what net/http
	// buffered): reading through net/http's reader would cancel the
	// request context at the client's half-close. For the same reason the
	// session's context derives from the server's, not the request's.
	var in io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		in = io.MultiReader(bytes.NewReader(append([]byte(nil), b...)), conn)
	}
	ctx, cancel := context.WithCancel(log.WithLogger(s.ctx, log.G(r.Context())))
	ss := &session{conn: conn, in: in, ctx: ctx, cancel: cancel}
	ss.frames = api.NewFrameWriter(errWriter{w: conn, cancel: cancel})
	readerDone := make(chan struct{})
	if !stdin {
		// Nothing is expected from the client: reading tells when it
		// hangs up.
		go func() {
			defer close(readerDone)
			_, _ = io.Copy(io.Discard, in)
			cancel()
		}()
	} else {
		close(readerDone)
	}
	// Shutdown of the server ends the session too.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	ss.done = func() {
		stop()
		cancel()
		conn.Close()
		<-readerDone
		s.sessions.Done()
	}
	return ss, nil
}

// Stdin is the client's raw input.
func (ss *session) Stdin() io.Reader { return errReader{r: ss.in, cancel: ss.cancel} }

func (ss *session) fail(err error) {
	_, resp := api.NewErrorResponse(err)
	_ = ss.frames.WriteStatus(api.StreamStatus{Error: resp.Message, Class: resp.Class})
}

// attach streams the init process's output (and the client's input with
// ?stdin=1), optionally starts the container (?start=1), and ends with a
// status frame carrying the exit code once the container is not running.
//
// An engine may refuse to attach before the start. Then output without
// stdin comes from the container's log, followed from just before the
// start, so that a process that exits at once loses nothing; with stdin
// the session attaches right after the start.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ref := r.PathValue("ref")
	stdin, start := boolParam(q.Get("stdin")), boolParam(q.Get("start"))
	if q.Has("w") || q.Has("h") {
		if _, _, err := sizeParams(r); err != nil {
			return err
		}
	}
	ct, err := s.engine.Inspect(r.Context(), ref)
	if err != nil {
		return err
	}
	ss, err := s.hijack(w, r, stdin)
	if err != nil || ss == nil {
		return err
	}
	defer ss.done()
	// Refer to the container by id from now on: a name may be reused.
	ref = ct.ID
	// Die events are watched from before the start: a container removed
	// on exit (--rm) is gone before Wait could ask, and the replay of the
	// engine's event buffer makes the watch race-free.
	exits := s.watchExits(ss.ctx, ref, time.Now())
	defer exits.stop()
	stdout, stderr := ss.frames.Stream(api.FrameStdout), ss.frames.Stream(api.FrameStderr)
	opts := AttachOptions{Stdout: stdout, Stderr: stderr}
	if stdin {
		opts.Stdin = ss.Stdin()
	}
	startedAt := time.Now()
	detach, err := s.engine.Attach(ss.ctx, ref, opts)
	fromLog := false
	if err != nil {
		if !start || !errdefs.IsFailedPrecondition(err) {
			ss.fail(err)
			return nil
		}
		detach = nil
	}
	if start {
		if err := s.engine.Start(ss.ctx, ref); err != nil {
			if detach != nil {
				detach()
			}
			ss.fail(err)
			return nil
		}
		if detach == nil && stdin {
			if detach, err = s.engine.Attach(ss.ctx, ref, opts); err != nil && !errdefs.IsFailedPrecondition(err) {
				ss.fail(err)
				return nil
			}
		}
		fromLog = detach == nil
	}
	if wd, ht, err := sizeParams(r); err == nil {
		if err := s.engine.Resize(ss.ctx, ref, wd, ht); err != nil {
			log.G(r.Context()).WithError(err).WithField("container", ref).Debug("attach: initial terminal size")
		}
	}
	if fromLog {
		// Follow ends once the container stopped and its output is read.
		err := s.engine.Logs(ss.ctx, ref, api.LogsOptions{Follow: true, Tail: -1, Since: startedAt}, func(e api.LogRecord) error {
			dst := stdout
			if e.Stream == "stderr" {
				dst = stderr
			}
			_, err := io.WriteString(dst, e.Log)
			return err
		})
		if err != nil && ss.ctx.Err() == nil && !errdefs.IsNotFound(err) {
			log.G(r.Context()).WithError(err).WithField("container", ref).Warn("attach: read the log")
		}
	}
	code, err := s.engine.Wait(ss.ctx, ref, "not-running")
	if errdefs.IsNotFound(err) {
		code, err = exits.last(ss.ctx)
	}
	if detach != nil {
		detach()
	}
	if err != nil {
		if ss.ctx.Err() != nil {
			log.G(r.Context()).WithField("container", ref).Debug("attach client went away")
			return nil
		}
		ss.fail(err)
		return nil
	}
	_ = ss.frames.WriteStatus(api.StreamStatus{Exited: true, ExitCode: code})
	return nil
}

// exec starts a process in a running container and streams it like attach;
// the first status frame names the exec for POST /v1/exec/{id}/resize.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) error {
	var cfg api.ExecConfig
	if err := decodeJSON(w, r, &cfg); err != nil {
		return err
	}
	if len(cfg.Cmd) == 0 || cfg.Cmd[0] == "" {
		return fmt.Errorf("exec needs a command: %w", errdefs.ErrInvalidArgument)
	}
	if err := api.CheckTerminalSize(cfg.Width, cfg.Height); err != nil {
		return err
	}
	ref := r.PathValue("ref")
	if _, err := s.engine.Inspect(r.Context(), ref); err != nil {
		return err
	}
	ss, err := s.hijack(w, r, cfg.AttachStdin)
	if err != nil || ss == nil {
		return err
	}
	defer ss.done()
	opts := ExecOptions{Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User, Tty: cfg.Tty}
	if !cfg.Detach {
		opts.Stdout, opts.Stderr = ss.frames.Stream(api.FrameStdout), ss.frames.Stream(api.FrameStderr)
		if cfg.AttachStdin {
			opts.Stdin = ss.Stdin()
		}
	}
	x, err := s.engine.Exec(ss.ctx, ref, opts)
	if err != nil {
		ss.fail(err)
		return nil
	}
	if cfg.Detach {
		_ = ss.frames.WriteStatus(api.StreamStatus{ExecID: x.ID(), Detached: true})
		return nil
	}
	s.mu.Lock()
	s.execs[x.ID()] = x
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.execs, x.ID())
		s.mu.Unlock()
	}()
	if cfg.Tty && cfg.Width > 0 && cfg.Height > 0 {
		if err := x.Resize(ss.ctx, cfg.Width, cfg.Height); err != nil {
			log.G(r.Context()).WithError(err).WithField("exec", x.ID()).Debug("exec: initial terminal size")
		}
	}
	_ = ss.frames.WriteStatus(api.StreamStatus{ExecID: x.ID()})
	code, err := x.Wait(ss.ctx)
	if err != nil {
		if ss.ctx.Err() == nil {
			ss.fail(err)
		}
		return nil
	}
	_ = ss.frames.WriteStatus(api.StreamStatus{Exited: true, ExitCode: code})
	return nil
}

// exitWatch collects the exit codes of a container's die events.
type exitWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	codes  []int
	got    chan struct{} // closed at the first exit
	once   sync.Once
}

// watchExits follows the die events of container id since since until stop.
func (s *Server) watchExits(ctx context.Context, id string, since time.Time) *exitWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &exitWatch{cancel: cancel, done: make(chan struct{}), got: make(chan struct{})}
	go func() {
		defer close(w.done)
		filter := func(e api.Event) bool { return e.ContainerID == id && e.Type == "die" }
		_ = s.engine.Events(ctx, since, filter, func(e api.Event) error {
			code, err := strconv.Atoi(e.Attributes["exitCode"])
			if err != nil {
				code = -1
			}
			w.mu.Lock()
			w.codes = append(w.codes, code)
			w.mu.Unlock()
			w.once.Do(func() { close(w.got) })
			return nil
		})
	}()
	return w
}

// last returns the latest exit code seen, waiting for a first one.
func (w *exitWatch) last(ctx context.Context) (int, error) {
	select {
	case <-w.got:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.codes[len(w.codes)-1], nil
}

func (w *exitWatch) stop() {
	w.cancel()
	<-w.done
}
