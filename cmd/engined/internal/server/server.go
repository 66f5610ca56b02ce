// Package server serves an Engine over HTTP/JSON on a unix socket: one
// handler per Engine call under /v1/, streaming for logs and events (JSON
// lines) and hijacked connections for attach and exec.
//
// Concurrency: a Server is safe for concurrent use. Every request runs on
// net/http's goroutine for it; a hijacked session (attach, exec) is owned by
// that goroutine and tracked, and Serve waits for all of them after it
// stopped accepting. Cancelling Serve's context ends every stream.
//
// Zero value: not usable; use New.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
)

// Options configure a Server.
type Options struct {
	// Version is the engine version reported by GET /v1/version.
	Version string
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// after its context ended; default 5s.
	ShutdownTimeout time.Duration
	// HeaderTimeout bounds reading a request's headers; default 10s.
	HeaderTimeout time.Duration
	// BodyTimeout bounds reading a JSON request body, and each read of an
	// image archive (an import may take long but must make progress);
	// default 30s. Streams (logs, events, attach, exec) read no body
	// after their request and are not bounded by it.
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request for this
	// long; default 2m.
	IdleTimeout time.Duration
	// StreamWriteTimeout bounds one write to a client of a logs or events
	// stream: a client that stops reading is disconnected; default 30s.
	StreamWriteTimeout time.Duration
	// EventQueue is how many events may wait for a slow events client
	// before it is disconnected; default 1024.
	EventQueue int
	// MaxImportBytes bounds an image archive; default DefaultMaxImportBytes.
	MaxImportBytes int64
}

// DefaultMaxImportBytes is the default limit of an image archive.
const DefaultMaxImportBytes = 8 << 30

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ShutdownTimeout, 5*time.Second)
	def(&o.HeaderTimeout, 10*time.Second)
	def(&o.BodyTimeout, 30*time.Second)
	def(&o.IdleTimeout, 2*time.Minute)
	def(&o.StreamWriteTimeout, 30*time.Second)
	if o.EventQueue <= 0 {
		o.EventQueue = 1024
	}
	if o.MaxImportBytes <= 0 {
		o.MaxImportBytes = DefaultMaxImportBytes
	}
}

// Server is the engine's HTTP API.
type Server struct {
	engine Engine
	opts   Options
	mux    *http.ServeMux

	// ctx is the parent of every request context; cancel ends all streams.
	ctx    context.Context
	cancel context.CancelFunc

	sessions sync.WaitGroup // hijacked attach and exec sessions

	mu      sync.Mutex
	closing bool            // set by Serve on shutdown: no new sessions
	execs   map[string]Exec // running execs by id, for resize

	patterns []string // every route, as registered: the tests try each
}

// New returns a Server for e.
func New(e Engine, opts Options) *Server {
	opts.setDefaults()
	s := &Server{engine: e, opts: opts, mux: http.NewServeMux(), execs: make(map[string]Exec)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.routes()
	return s
}

func (s *Server) routes() {
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request) error) {
		s.patterns = append(s.patterns, pattern)
		s.mux.Handle(pattern, handler(func(w http.ResponseWriter, r *http.Request) error {
			if err := checkPathValues(r); err != nil {
				return err
			}
			return fn(w, r)
		}))
	}
	p := "/" + api.Version
	h("GET "+p+"/version", s.version)
	h("GET "+p+"/info", s.info)
	h("GET "+p+"/containers", s.list)
	h("POST "+p+"/containers", s.create)
	h("GET "+p+"/containers/{ref}", s.inspect)
	h("DELETE "+p+"/containers/{ref}", s.remove)
	h("POST "+p+"/containers/{ref}/start", s.start)
	h("POST "+p+"/containers/{ref}/stop", s.stop)
	h("POST "+p+"/containers/{ref}/restart", s.restart)
	h("POST "+p+"/containers/{ref}/kill", s.kill)
	h("POST "+p+"/containers/{ref}/pause", s.pause)
	h("POST "+p+"/containers/{ref}/unpause", s.unpause)
	h("POST "+p+"/containers/{ref}/wait", s.wait)
	h("POST "+p+"/containers/{ref}/resize", s.resize)
	h("GET "+p+"/containers/{ref}/logs", s.logs)
	h("GET "+p+"/containers/{ref}/stats", s.stats)
	h("GET "+p+"/containers/{ref}/top", s.top)
	h("POST "+p+"/containers/{ref}/attach", s.attach)
	h("POST "+p+"/containers/{ref}/exec", s.exec)
	h("GET "+p+"/containers/{ref}/checkpoints", s.listCheckpoints)
	h("POST "+p+"/containers/{ref}/checkpoints", s.createCheckpoint)
	h("DELETE "+p+"/containers/{ref}/checkpoints/{name}", s.deleteCheckpoint)
	h("POST "+p+"/exec/{id}/resize", s.execResize)
	h("GET "+p+"/events", s.events)
	h("GET "+p+"/images", s.images)
	h("POST "+p+"/images/import", s.importImage)
	h("DELETE "+p+"/images/{image...}", s.removeImage)
	s.dockerRoutes(h)
	s.networkRoutes(h)
	s.volumeRoutes(h)
	s.registryRoutes(h)
}

// checkPathValues refuses a route whose object is not one that can exist:
// the handlers and the engine see only valid names, ids and references.
func checkPathValues(r *http.Request) error {
	for _, v := range []struct{ key, what string }{
		{"ref", "container reference"}, {"name", "checkpoint name"}, {"id", "exec id"},
	} {
		if val := r.PathValue(v.key); val != "" {
			if err := api.ValidateName(v.what, val); err != nil {
				return err
			}
		}
	}
	if v := r.PathValue("volume"); v != "" {
		if err := backend.ValidateVolumeName(v); err != nil {
			return err
		}
	}
	if img := r.PathValue("image"); img != "" {
		return api.ValidateImageRef(img)
	}
	return nil
}

// methods are the methods of the routes, for the Allow header of a 405.
var methods = []string{http.MethodGet, http.MethodPost, http.MethodDelete}

// allowed lists the methods that have a route for r's path.
func (s *Server) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range methods {
		rr := *r
		rr.Method = m
		if _, pattern := s.mux.Handler(&rr); pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

// handler adapts a handler that returns an error; an error is written as a
// JSON ErrorResponse with the status of its errdefs class.
type handler func(http.ResponseWriter, *http.Request) error

func (fn handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := fn(w, r); err != nil {
		writeError(r.Context(), w, err)
	}
}

// ServeHTTP routes r, answering unknown routes with a JSON 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	if r.ContentLength != 0 {
		// A body is coming (or chunked): it must arrive in time, else a
		// client holds the connection and its handler forever. Once the
		// body is read to its end net/http lifts the deadline itself (its
		// background read, which watches for the client going away, runs
		// without one), so what follows (a wait, an exec stream) is not
		// bounded by it; a body no handler reads fails the drain after
		// the handler and closes the connection.
		_ = http.NewResponseController(rec).SetReadDeadline(time.Now().Add(s.opts.BodyTimeout))
	}
	// An unclean path is refused before the mux sees it: the mux would
	// answer it with a redirect to the cleaned path, another object.
	if err := api.CheckPath(r.URL.EscapedPath()); err != nil {
		writeError(r.Context(), rec, err)
	} else if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(rec, r)
	} else if allow := s.allowed(r); len(allow) > 0 {
		rec.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(rec, http.StatusMethodNotAllowed, api.ErrorResponse{
			Message: fmt.Sprintf("method %s is not allowed on %s: use %s", api.Echo(r.Method), api.Echo(r.URL.Path), strings.Join(allow, " or ")),
			Class:   errdefs.ErrInvalidArgument.Error(),
		})
	} else {
		writeError(r.Context(), rec, fmt.Errorf("no route for %s %s: see the engine API under /%s/: %w", api.Cut(r.Method), api.Cut(r.URL.Path), api.Version, errdefs.ErrNotFound))
	}
	log.G(r.Context()).WithFields(log.Fields{
		"method": r.Method, "path": r.URL.Path, "status": rec.status, "duration": time.Since(start),
	}).Debug("api request")
}

// recorder remembers the status for the request log. Unwrap lets
// http.ResponseController reach Flush and Hijack.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func writeError(ctx context.Context, w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeJSON(w, http.StatusRequestEntityTooLarge, api.ErrorResponse{
			Message: fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit),
			Class:   errdefs.ErrInvalidArgument.Error(),
		})
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		w.Header().Set("Connection", "close")
		writeJSON(w, http.StatusRequestTimeout, api.ErrorResponse{
			Message: "the request body did not arrive in time: send it at once",
			Class:   errdefs.ErrInvalidArgument.Error(),
		})
		return
	}
	status, resp := api.NewErrorResponse(err)
	if status >= 500 {
		log.G(ctx).WithError(err).Warn("api request failed")
	}
	writeJSON(w, status, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeList answers 200 with items as a JSON array, [] rather than null
// when there are none.
func writeList[T any](w http.ResponseWriter, items []T) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, items)
}

// decodeJSON reads a JSON body of at most api.MaxJSONBody bytes into v,
// within the body deadline ServeHTTP set.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, api.MaxJSONBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		return nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return fmt.Errorf("malformed JSON request body: %v: %w", err, errdefs.ErrInvalidArgument)
}

// Serve serves the API on l until ctx ends, then stops accepting, ends every
// stream, waits up to Options.ShutdownTimeout for requests in flight and
// returns. l is closed.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.HeaderTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return log.WithLogger(s.ctx, log.G(ctx)) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	// Streams (logs -f, events, attach, exec) run until their context ends:
	// end them first so that Shutdown does not wait for them.
	s.cancel()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		log.G(ctx).WithError(serr).Warn("api server did not shut down in time; closing connections")
		srv.Close()
	}
	if err == nil {
		err = <-errc
	}
	// Sessions end with their context, unless an engine call ignores it;
	// such a call must not hold the daemon's shutdown hostage.
	sessionsDone := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(sessionsDone)
	}()
	select {
	case <-sessionsDone:
	case <-time.After(s.opts.ShutdownTimeout):
		log.G(ctx).Warn("api server: attach/exec sessions still blocked in the engine after shutdown; leaving them")
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Listen creates the unix socket at path for the API: its directory is
// created 0700 when missing and the socket is 0660, so only root (and the
// socket's group) can talk to the engine. A stale socket left by a daemon
// that died is replaced; a live one is refused.
func Listen(path string) (net.Listener, error) {
	if path == "" {
		return nil, fmt.Errorf("empty socket path: %w", errdefs.ErrInvalidArgument)
	}
	if len(path) > 107 {
		return nil, fmt.Errorf("socket path %q is %d bytes, unix sockets allow 107: use a shorter path: %w", path, len(path), errdefs.ErrInvalidArgument)
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: remove it or choose another --socket: %w", path, errdefs.ErrAlreadyExists)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another engine daemon is serving on %s: stop it or choose another --socket: %w", path, errdefs.ErrAlreadyExists)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	// The socket is created with the umask applied; chmod follows at once,
	// and the directory keeps others out in between.
	old := unix.Umask(0o117)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return l, nil
}

func boolParam(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b
}
