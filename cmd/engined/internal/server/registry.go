package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
)

// maxQueuedProgress bounds the progress events waiting for a slow client;
// past it byte counts are dropped (the next one says more), never a
// layer's change of state.
const maxQueuedProgress = 4096

// credentials turns the request's X-Registry-Auth into credentials for the
// backend; none: anonymous.
func credentials(r *http.Request) (backend.Credentials, error) {
	a, err := api.DecodeAuth(r.Header.Get(api.RegistryAuthHeader))
	if err != nil {
		return nil, err
	}
	if a.Username == "" && a.Password == "" && a.IdentityToken == "" {
		return nil, nil
	}
	return func(string) (string, string, error) {
		if a.IdentityToken != "" {
			return "", a.IdentityToken, nil
		}
		return a.Username, a.Password, nil
	}, nil
}

func imageQuery(r *http.Request) (string, error) {
	ref := r.URL.Query().Get("ref")
	if err := api.ValidateImageRef(ref); err != nil {
		return "", err
	}
	return ref, nil
}

func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) error {
	ref, err := imageQuery(r)
	if err != nil {
		return err
	}
	creds, err := credentials(r)
	if err != nil {
		return err
	}
	opts := backend.PullOptions{Platform: r.URL.Query().Get("platform"), Credentials: creds}
	return s.streamProgress(w, r, func(ctx context.Context, progress backend.ProgressFunc) error {
		_, err := s.engine.PullImage(ctx, ref, opts, progress)
		return err
	})
}

func (s *Server) pushImage(w http.ResponseWriter, r *http.Request) error {
	ref, err := imageQuery(r)
	if err != nil {
		return err
	}
	creds, err := credentials(r)
	if err != nil {
		return err
	}
	return s.streamProgress(w, r, func(ctx context.Context, progress backend.ProgressFunc) error {
		return s.engine.PushImage(ctx, ref, backend.PushOptions{Credentials: creds}, progress)
	})
}

func (s *Server) tagImage(w http.ResponseWriter, r *http.Request) error {
	var req api.TagRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	for _, v := range []string{req.Source, req.Target} {
		if err := api.ValidateImageRef(v); err != nil {
			return err
		}
	}
	ref, err := s.engine.TagImage(r.Context(), req.Source, req.Target)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.TagResponse{Ref: ref})
	return nil
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request) error {
	img, err := s.engine.InspectImage(r.Context(), r.PathValue("image"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, img)
	return nil
}

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.engine.PruneImages(r.Context(), boolParam(r.URL.Query().Get("all")))
	if err != nil {
		return err
	}
	if rep.Deleted == nil {
		rep.Deleted = []string{}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) saveImages(w http.ResponseWriter, r *http.Request) error {
	refs := r.URL.Query()["ref"]
	if len(refs) == 0 {
		return fmt.Errorf("no image to save: give ref=IMAGE: %w", errdefs.ErrInvalidArgument)
	}
	for _, ref := range refs {
		if err := api.ValidateImageRef(ref); err != nil {
			return err
		}
		// Refuse an unknown image while an error can still be an answer.
		if _, err := s.engine.InspectImage(r.Context(), ref); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := s.engine.SaveImages(r.Context(), refs, w); err != nil {
		// The status is sent: the client sees a tar cut short.
		log.G(r.Context()).WithError(err).Warn("save images")
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) error {
	archive, body, err := s.openArchive(w, r)
	if err != nil {
		return err
	}
	return s.streamProgress(w, r, func(ctx context.Context, progress backend.ProgressFunc) error {
		_, err := s.engine.LoadImages(ctx, archive, progress)
		if body.err != nil {
			return fmt.Errorf("%v: %w", body.err, errdefs.ErrInvalidArgument)
		}
		return err
	})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var a api.AuthConfig
	if err := decodeJSON(w, r, &a); err != nil {
		return err
	}
	if a.ServerAddress == "" {
		return fmt.Errorf("no registry given: name the server to log in to: %w", errdefs.ErrInvalidArgument)
	}
	secret := a.Password
	if a.IdentityToken != "" {
		secret = a.IdentityToken
	}
	if err := s.engine.Login(r.Context(), a.ServerAddress, a.Username, secret); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.LoginResponse{Status: "Login Succeeded"})
	return nil
}

// streamProgress streams run's progress as JSON lines, ending with the
// error line if run fails. As dockerd does, the 200 is sent with the first
// event: a run that fails before it has anything to show (a malformed or
// unknown reference, a refused login, a registry that does not answer:
// a pull shows nothing before the registry answered) is returned, for the
// handler to answer with the error's own status. The events are queued
// and written by the request's goroutine: a slow client never holds up
// the pull (which others may share); a client that stops reading or goes
// away ends run.
func (s *Server) streamProgress(w http.ResponseWriter, r *http.Request, run func(context.Context, backend.ProgressFunc) error) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var (
		mu    sync.Mutex
		queue []backend.ProgressEvent
		wake  = make(chan struct{}, 1)
	)
	progress := func(ev backend.ProgressEvent) {
		mu.Lock()
		if len(queue) >= maxQueuedProgress && ev.Detail != nil && (ev.Status == "Downloading" || ev.Status == "Pushing") {
			mu.Unlock()
			return
		}
		queue = append(queue, ev)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, progress) }()

	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	started, failed := false, false
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
		}
	}
	write := func(v any) {
		if failed {
			return
		}
		start()
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.StreamWriteTimeout))
		if err := enc.Encode(v); err != nil {
			failed = true
			cancel()
		}
	}
	drain := func() {
		mu.Lock()
		evs := queue
		queue = nil
		mu.Unlock()
		for _, ev := range evs {
			write(api.ProgressMessage{ProgressEvent: ev})
		}
		if started && !failed {
			_ = rc.Flush()
		}
	}
	for {
		select {
		case <-wake:
			drain()
		case err := <-done:
			drain()
			if err != nil && !started {
				return err
			}
			start()
			if err != nil {
				_, resp := api.NewErrorResponse(err)
				write(api.ProgressMessage{Error: resp.Message, ErrorDetail: &api.ErrorDetail{Message: resp.Message}, Class: resp.Class})
			}
			if !failed {
				_ = rc.Flush()
			}
			_ = rc.SetWriteDeadline(time.Time{})
			return nil
		}
	}
}

// registryRoutes adds the routes of pulls, pushes, tags, image archives
// and logins.
func (s *Server) registryRoutes(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	p := "/" + api.Version
	h("POST "+p+"/images/pull", s.pullImage)
	h("POST "+p+"/images/push", s.pushImage)
	h("POST "+p+"/images/tag", s.tagImage)
	h("POST "+p+"/images/prune", s.pruneImages)
	h("GET "+p+"/images/save", s.saveImages)
	h("POST "+p+"/images/load", s.loadImages)
	h("GET "+p+"/images/{image...}", s.inspectImage)
	h("POST "+p+"/auth", s.login)
}
