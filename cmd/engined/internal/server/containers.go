package server

import (
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
)

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := api.ListOptions{All: boolParam(q.Get("all"))}
	filters, err := ParseFilters(q["filter"], backend.ListFilterKeys...)
	if err != nil {
		return err
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid limit %s: want a number of containers: %w", api.Echo(l), errdefs.ErrInvalidArgument)
		}
		opts.Limit = n
	}
	opts.Filters = filters
	cs, err := s.engine.List(r.Context(), opts)
	if err != nil {
		return err
	}
	if boolParam(q.Get("size")) {
		for _, c := range cs {
			s.fillSize(r, c)
		}
	}
	writeList(w, cs)
	return nil
}

// fillSize sets a container's sizes (?size=1); a size that cannot be
// measured (the container went away) stays zero.
func (s *Server) fillSize(r *http.Request, c *api.Container) {
	u, err := s.engine.Size(r.Context(), c.ID)
	if err != nil {
		log.G(r.Context()).WithError(err).WithField("container", c.ID).Debug("container size")
		return
	}
	c.SizeRw, c.SizeRootFs = u.SizeRw, u.SizeRootFs
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
	if boolParam(r.URL.Query().Get("size")) {
		s.fillSize(r, c)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := api.RemoveOptions{Force: boolParam(q.Get("force")), Volumes: boolParam(q.Get("v"))}
	if err := s.engine.RemoveContainer(r.Context(), r.PathValue("ref"), opts); err != nil {
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
	writeList(w, ps)
	return nil
}
