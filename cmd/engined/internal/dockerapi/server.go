// Package dockerapi serves the Docker Engine API on a unix socket, so that
// the docker CLI, the Docker SDKs and what is built on them drive tend
// unchanged. It maps each route onto the same engine calls as the tend API
// (package server) and speaks Docker's wire: the request and response types
// of github.com/moby/moby/api, versioned paths (/v1.41 up to APIVersion, and
// unversioned), {"message": ...} errors with Docker's status codes, stdcopy
// multiplexing for non-TTY streams, raw TTY streams and 101 UPGRADED
// connection hijacks for attach and exec.
//
// What the engine cannot do yet answers 400 naming the request field, or
// 501 naming the route (see unsupportedRoutes and checkCreate).
//
// Concurrency: a Server is safe for concurrent use. Every request runs on
// net/http's goroutine; hijacked sessions (attach, exec start) are tracked
// and Serve waits for them after it stopped accepting. Cancelling Serve's
// context ends every stream.
//
// Zero value: not usable; use New.
package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/moby/api/types/common"

	"github.com/tendhq/tend/cmd/engined/internal/server"
	"github.com/tendhq/tend/cmd/internal/api"
)

// API versions served: MinAPIVersion up to APIVersion, the version of the
// github.com/moby/moby/api module whose types are on the wire.
const (
	APIVersion    = "1.56"
	MinAPIVersion = "1.41"
)

// Engine is what the Docker API serves: the engine calls of the tend API.
type Engine = server.Engine

// Options configure a Server.
type Options struct {
	// Version is the engine version reported by /version and /info.
	Version string
	// Root is the engine's state directory, reported by /info.
	Root string
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// after its context ended; default 5s.
	ShutdownTimeout time.Duration
	// MaxImportBytes bounds an image archive (POST /images/load); default
	// server.DefaultMaxImportBytes.
	MaxImportBytes int64
	// StatsInterval is the period of streamed stats; default 1s (dockerd's).
	StatsInterval time.Duration
}

// Server is the Docker Engine API of an Engine.
type Server struct {
	engine Engine
	opts   Options
	mux    *http.ServeMux

	ctx    context.Context // parent of every session; cancel ends them
	cancel context.CancelFunc

	sessions sync.WaitGroup

	mu      sync.Mutex
	closing bool
	execs   map[string]*execRecord

	patterns []string // every route, as registered: the tests try each
}

// New returns a Server for e.
func New(e Engine, opts Options) *Server {
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	if opts.MaxImportBytes <= 0 {
		opts.MaxImportBytes = server.DefaultMaxImportBytes
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = time.Second
	}
	s := &Server{engine: e, opts: opts, mux: http.NewServeMux(), execs: make(map[string]*execRecord)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.routes()
	return s
}

// handlerFunc is a handler that returns an error, written as Docker does.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) routes() {
	h := func(pattern string, fn handlerFunc) {
		s.patterns = append(s.patterns, pattern)
		s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := checkRefs(r)
			if err == nil {
				err = fn(w, r)
			}
			if err != nil {
				writeError(r.Context(), w, err)
			}
		}))
	}
	h("GET /_ping", s.ping)
	h("HEAD /_ping", s.ping)
	h("GET /version", s.version)
	h("GET /info", s.info)
	h("GET /events", s.events)

	h("GET /containers/json", s.listContainers)
	h("POST /containers/create", s.createContainer)
	h("POST /containers/prune", s.pruneContainers)
	h("GET /containers/{ref}/json", s.inspectContainer)
	h("DELETE /containers/{ref}", s.removeContainer)
	h("POST /containers/{ref}/start", s.startContainer)
	h("POST /containers/{ref}/stop", s.stopContainer)
	h("POST /containers/{ref}/restart", s.restartContainer)
	h("POST /containers/{ref}/kill", s.killContainer)
	h("POST /containers/{ref}/wait", s.waitContainer)
	h("POST /containers/{ref}/pause", s.pauseContainer)
	h("POST /containers/{ref}/unpause", s.unpauseContainer)
	h("GET /containers/{ref}/top", s.topContainer)
	h("GET /containers/{ref}/stats", s.statsContainer)
	h("POST /containers/{ref}/resize", s.resizeContainer)
	h("GET /containers/{ref}/logs", s.logsContainer)
	h("POST /containers/{ref}/attach", s.attachContainer)
	h("POST /containers/{ref}/exec", s.createExec)
	h("POST /containers/{ref}/rename", s.renameContainer)
	h("POST /containers/{ref}/update", s.updateContainer)
	h("HEAD /containers/{ref}/archive", s.statArchive)
	h("GET /containers/{ref}/archive", s.getArchive)
	h("PUT /containers/{ref}/archive", s.putArchive)
	h("GET /containers/{ref}/export", s.exportContainer)
	h("GET /containers/{ref}/changes", s.changesContainer)
	h("POST /exec/{id}/start", s.startExec)
	h("POST /exec/{id}/resize", s.resizeExec)
	h("GET /exec/{id}/json", s.inspectExec)

	h("GET /images/json", s.listImages)
	h("POST /images/load", s.loadImages)
	h("POST /images/create", s.pullImage)
	h("POST /images/prune", s.pruneImages)
	h("GET /images/get", s.saveImagesQuery)
	h("GET /images/{name...}", s.imageGET)
	h("POST /images/{name...}", s.imagePOST)
	h("DELETE /images/{name...}", s.removeImage)

	h("GET /volumes", s.listVolumes)
	h("POST /volumes/create", s.createVolume)
	h("POST /volumes/prune", s.pruneVolumes)
	h("GET /volumes/{name}", s.inspectVolume)
	h("DELETE /volumes/{name}", s.removeVolume)

	h("GET /networks", s.listNetworks)
	h("POST /networks/create", s.createNetwork)
	h("POST /networks/prune", s.pruneNetworks)
	h("GET /networks/{network}", s.inspectNetwork)
	h("DELETE /networks/{network}", s.removeNetwork)
	h("POST /networks/{network}/connect", s.connectNetwork)

	for _, u := range unsupportedRoutes {
		h(u.pattern, notImplemented(u.what))
	}
}

// unsupportedRoutes answer 501: Docker routes whose engine feature tend does
// not have (yet). The README lists them.
var unsupportedRoutes = []struct{ pattern, what string }{
	{"GET /containers/{ref}/attach/ws", "attach over websocket"},
	{"POST /commit", "commit"},
	{"POST /build", "image build"},
	{"POST /build/prune", "build cache"},
	{"GET /images/search", "image search"},
	{"POST /auth", "registry login"},
	{"GET /system/df", "disk usage"},
	{"POST /networks/{id}/disconnect", "disconnecting a container from its network (remove the container, or create it with --network none)"},
	{"GET /swarm", "swarm"},
	{"GET /plugins", "plugins"},
	{"GET /distribution/{name...}", "registry distribution"},
	{"POST /session", "build sessions"},
}

func notImplemented(what string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("%s (%s %s) is not supported by tend's Docker API yet: %w", what, r.Method, r.URL.Path, errdefs.ErrNotImplemented)
	}
}

// checkRefs refuses a path naming a container or exec that cannot exist.
func checkRefs(r *http.Request) error {
	if ref := r.PathValue("ref"); ref != "" {
		if err := api.ValidateName("container reference", strings.TrimPrefix(ref, "/")); err != nil {
			return err
		}
	}
	if id := r.PathValue("id"); id != "" && strings.HasPrefix(r.URL.Path, "/exec/") {
		if err := api.ValidateName("exec id", id); err != nil {
			return err
		}
	}
	return nil
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// ServeHTTP strips and checks the API version of the path, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Server", "tend/"+s.opts.Version+" (linux)")
	if err := api.CheckPath(r.URL.EscapedPath()); err != nil {
		writeError(r.Context(), w, err)
		return
	}
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		if compareVersions(m[1], MinAPIVersion) < 0 {
			writeError(r.Context(), w, fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version: %w", m[1], MinAPIVersion, errdefs.ErrInvalidArgument))
			return
		}
		if compareVersions(m[1], APIVersion) > 0 {
			writeError(r.Context(), w, fmt.Errorf("client version %s is too new. Maximum supported API version is %s: %w", m[1], APIVersion, errdefs.ErrInvalidArgument))
			return
		}
		r2 := r.Clone(context.WithValue(r.Context(), apiVersionKey{}, m[1]))
		r2.URL.Path = m[2]
		r2.URL.RawPath = ""
		r = r2
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeError(r.Context(), w, fmt.Errorf("page not found: %s %s is not a Docker Engine API route: %w", api.Cut(r.Method), api.Cut(r.URL.Path), errdefs.ErrNotFound))
		return
	}
	s.mux.ServeHTTP(w, r)
	log.G(r.Context()).WithFields(log.Fields{"method": r.Method, "path": r.URL.Path, "duration": time.Since(start)}).Debug("docker api request")
}

// apiVersionKey keys the API version of a versioned path in the request's
// context.
type apiVersionKey struct{}

// requestVersion is the API version the client asked for: the path's, else
// the newest.
func requestVersion(r *http.Request) string {
	if v, ok := r.Context().Value(apiVersionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

// compareVersions compares two MAJOR.MINOR versions numerically.
func compareVersions(a, b string) int {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// writeError answers err as Docker does: its errdefs class as the status,
// the message as {"message": ...}.
func writeError(ctx context.Context, w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeJSON(w, http.StatusRequestEntityTooLarge, common.ErrorResponse{Message: fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)})
		return
	}
	status, resp := api.NewErrorResponse(err)
	if status >= 500 && status != http.StatusNotImplemented {
		log.G(ctx).WithError(err).Warn("docker api request failed")
	}
	writeJSON(w, status, common.ErrorResponse{Message: resp.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON body of at most api.MaxJSONBody bytes. Unknown
// fields are accepted, as dockerd accepts them: clients of other versions
// send fields this one does not know. An empty body leaves v as is.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, api.MaxJSONBody))
	err := dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return fmt.Errorf("malformed JSON request body: %v: %w", err, errdefs.ErrInvalidArgument)
}

func boolParam(r *http.Request, key string) bool {
	v := r.URL.Query().Get(key)
	b, err := strconv.ParseBool(v)
	if err != nil {
		return v != "" && v != "0" && !strings.EqualFold(v, "false") && !strings.EqualFold(v, "no")
	}
	return b
}

// Serve serves the API on l until ctx ends, then stops accepting, ends every
// stream, waits up to Options.ShutdownTimeout for requests in flight and
// returns. l is closed.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return log.WithLogger(s.ctx, log.G(ctx)) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
	}
	if err == nil {
		err = <-errc
	}
	done := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.opts.ShutdownTimeout):
		log.G(ctx).Warn("docker api: attach/exec sessions still blocked in the engine after shutdown; leaving them")
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
