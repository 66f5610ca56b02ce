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
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/engine/internal/api"
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

// ----- handlers -----

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := api.VersionInfo{
		Version:    s.opts.Version,
		APIVersion: api.Version,
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
	if info, err := s.engine.Info(r.Context()); err == nil {
		v.ContainerdVersion = info.ContainerdVersion
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	info, err := s.engine.Info(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := api.ListOptions{All: boolParam(q.Get("all"))}
	filters, err := ParseFilters(q["filter"], "status", "label", "name", "id")
	if err != nil {
		return err
	}
	opts.Filters = filters
	cs, err := s.engine.List(r.Context(), opts)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []*api.Container{}
	}
	writeJSON(w, http.StatusOK, cs)
	return nil
}

// ParseFilters parses k=v filters whose keys are among allowed.
func ParseFilters(raw []string, allowed ...string) (map[string][]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make(map[string][]string)
	for _, f := range raw {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid filter %s: want key=value: %w", api.Echo(f), errdefs.ErrInvalidArgument)
		}
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			return nil, fmt.Errorf("invalid filter key %s: want one of %s: %w", api.Echo(k), strings.Join(allowed, ", "), errdefs.ErrInvalidArgument)
		}
		out[k] = append(out[k], v)
	}
	return out, nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	var opts api.CreateOptions
	if err := decodeJSON(w, r, &opts); err != nil {
		return err
	}
	if err := api.CheckCreate(&opts, runtime.NumCPU()); err != nil {
		return err
	}
	c, err := s.engine.Create(r.Context(), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) inspect(w http.ResponseWriter, r *http.Request) error {
	c, err := s.engine.Inspect(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.Remove(r.Context(), r.PathValue("ref"), boolParam(r.URL.Query().Get("force"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// start starts a container; ?checkpoint=NAME restores it from that
// checkpoint.
func (s *Server) start(w http.ResponseWriter, r *http.Request) error {
	var err error
	if cp := r.URL.Query().Get("checkpoint"); cp != "" {
		if err := api.ValidateName("checkpoint name", cp); err != nil {
			return err
		}
		err = s.engine.StartFromCheckpoint(r.Context(), r.PathValue("ref"), cp)
	} else {
		err = s.engine.Start(r.Context(), r.PathValue("ref"))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listCheckpoints(w http.ResponseWriter, r *http.Request) error {
	cps, err := s.engine.ListCheckpoints(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	if cps == nil {
		cps = []api.Checkpoint{}
	}
	writeJSON(w, http.StatusOK, cps)
	return nil
}

func (s *Server) createCheckpoint(w http.ResponseWriter, r *http.Request) error {
	var opts api.CheckpointCreateOptions
	if err := decodeJSON(w, r, &opts); err != nil {
		return err
	}
	if opts.Name == "" {
		return fmt.Errorf("no checkpoint name given: name the checkpoint to create: %w", errdefs.ErrInvalidArgument)
	}
	if err := api.ValidateName("checkpoint name", opts.Name); err != nil {
		return err
	}
	if err := s.engine.CreateCheckpoint(r.Context(), r.PathValue("ref"), opts.Name, opts.LeaveRunning); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) deleteCheckpoint(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.DeleteCheckpoint(r.Context(), r.PathValue("ref"), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// timeoutParam parses ?t=SECONDS; absent means nil (the engine's default).
func timeoutParam(r *http.Request) (*time.Duration, error) {
	t := r.URL.Query().Get("t")
	if t == "" {
		return nil, nil
	}
	d, err := api.ParseTimeout(t)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	if err := s.engine.Stop(r.Context(), r.PathValue("ref"), t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	if err := s.engine.Restart(r.Context(), r.PathValue("ref"), t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request) error {
	sig, err := api.ParseSignal(r.URL.Query().Get("signal"))
	if err != nil {
		return err
	}
	if err := s.engine.Kill(r.Context(), r.PathValue("ref"), sig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.Pause(r.Context(), r.PathValue("ref")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unpause(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.Resume(r.Context(), r.PathValue("ref")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func waitCondition(c string) (api.WaitCondition, error) {
	switch cond := api.WaitCondition(c); cond {
	case "":
		return backend.WaitNotRunning, nil
	case backend.WaitNotRunning, backend.WaitNextExit, backend.WaitRemoved:
		return cond, nil
	}
	return "", fmt.Errorf("invalid wait condition %s: want not-running, next-exit or removed: %w", api.Echo(c), errdefs.ErrInvalidArgument)
}

func (s *Server) wait(w http.ResponseWriter, r *http.Request) error {
	cond, err := waitCondition(r.URL.Query().Get("condition"))
	if err != nil {
		return err
	}
	code, err := s.engine.Wait(r.Context(), r.PathValue("ref"), cond)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.WaitResponse{ExitCode: code})
	return nil
}

func sizeParams(r *http.Request) (uint32, uint32, error) {
	q := r.URL.Query()
	wd, err1 := strconv.ParseUint(q.Get("w"), 10, 16)
	ht, err2 := strconv.ParseUint(q.Get("h"), 10, 16)
	if err1 != nil || err2 != nil || wd == 0 || ht == 0 {
		return 0, 0, fmt.Errorf("invalid terminal size w=%s h=%s: want two numbers from 1 to %d: %w", api.Echo(q.Get("w")), api.Echo(q.Get("h")), api.MaxTerminalSize, errdefs.ErrInvalidArgument)
	}
	return uint32(wd), uint32(ht), nil
}

func (s *Server) resize(w http.ResponseWriter, r *http.Request) error {
	wd, ht, err := sizeParams(r)
	if err != nil {
		return err
	}
	if err := s.engine.Resize(r.Context(), r.PathValue("ref"), wd, ht); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request) error {
	wd, ht, err := sizeParams(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	s.mu.Lock()
	x := s.execs[id]
	s.mu.Unlock()
	if x == nil {
		return fmt.Errorf("no such exec: %s: %w", id, errdefs.ErrNotFound)
	}
	if err := x.Resize(r.Context(), wd, ht); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	st, err := s.engine.Stats(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) top(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.engine.Top(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []api.TopProcess{}
	}
	writeJSON(w, http.StatusOK, ps)
	return nil
}

func (s *Server) images(w http.ResponseWriter, r *http.Request) error {
	imgs, err := s.engine.Images(r.Context())
	if err != nil {
		return err
	}
	if imgs == nil {
		imgs = []api.Image{}
	}
	writeJSON(w, http.StatusOK, imgs)
	return nil
}

func (s *Server) importImage(w http.ResponseWriter, r *http.Request) error {
	// The archive is streamed to the engine as it arrives, up to the
	// limit; each read must come within the body timeout.
	if r.ContentLength > s.opts.MaxImportBytes {
		return &http.MaxBytesError{Limit: s.opts.MaxImportBytes}
	}
	body := &progressReader{
		r:       http.MaxBytesReader(w, r.Body, s.opts.MaxImportBytes),
		rc:      http.NewResponseController(w),
		timeout: s.opts.BodyTimeout,
	}
	archive, err := sniffArchive(body)
	if err != nil {
		if body.err != nil {
			return body.err
		}
		return err
	}
	imgs, err := s.engine.ImportImage(r.Context(), archive)
	if body.err != nil {
		// The engine's error wraps the body's with its own words, or
		// not at all: the body's says what the client did.
		return body.err
	}
	if err != nil && !errdefs.IsInvalidArgument(err) && (errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF)) {
		// The archive is broken or cut short: the client's to fix.
		return fmt.Errorf("%w: the image archive is not a complete tar: send the whole file of docker save or an OCI layout: %w", err, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return err
	}
	if imgs == nil {
		imgs = []api.Image{}
	}
	writeJSON(w, http.StatusOK, imgs)
	return nil
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.RemoveImage(r.Context(), r.PathValue("image")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// sniffArchive refuses an image archive that is empty or does not start
// with a tar header, before the engine stores anything of it, and returns
// a reader of the whole archive.
func sniffArchive(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1024)
	head, err := br.Peek(512)
	if len(head) == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, fmt.Errorf("empty image archive: send the tar of docker save or of an OCI layout: %w", errdefs.ErrInvalidArgument)
	}
	if _, terr := tar.NewReader(bytes.NewReader(head)).Next(); terr != nil && !errors.Is(terr, io.EOF) {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, fmt.Errorf("the image archive is not a tar (%v): send the tar of docker save or of an OCI layout: %w", terr, errdefs.ErrInvalidArgument)
	}
	return br, nil
}

// progressReader reads a request body whose every read must complete
// within timeout of the previous one: a slow client is cut off, a large
// body that keeps coming is not. It remembers a read error of its own
// (too large, too slow) so that the handler can report it whatever the
// consumer made of it.
type progressReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	ended   bool // the body ended (or failed): no more deadlines
	err     error
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.ended {
		// A deadline now would bound net/http's background read, which
		// starts at the body's end, and cancel the import as it unpacks.
		return p.r.Read(b)
	}
	_ = p.rc.SetReadDeadline(time.Now().Add(p.timeout))
	n, err := p.r.Read(b)
	if err != nil {
		p.ended = true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, os.ErrDeadlineExceeded) {
		p.err = err
	}
	return n, err
}

func boolParam(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b
}
