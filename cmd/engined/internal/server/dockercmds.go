package server

import (
	"net/http"

	"github.com/containerd/log"

	"github.com/tendhq/tend/cmd/internal/api"
)

// The routes of the docker CLI's everyday commands: rename,
// update, prune, system df, archives (cp), changes (diff) and export.

func (s *Server) dockerRoutes(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	p := "/" + api.Version
	h("POST "+p+"/containers/{ref}/rename", s.rename)
	h("POST "+p+"/containers/{ref}/update", s.update)
	h("POST "+p+"/containers/prune", s.pruneContainers)
	h("GET "+p+"/containers/{ref}/archive", s.getArchive)
	h("PUT "+p+"/containers/{ref}/archive", s.putArchive)
	h("GET "+p+"/containers/{ref}/changes", s.changes)
	h("GET "+p+"/containers/{ref}/export", s.export)
	h("GET "+p+"/system/df", s.diskUsage)
}

func (s *Server) rename(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if err := api.ValidateName("container name", name); err != nil {
		return err
	}
	if err := s.engine.Rename(r.Context(), r.PathValue("ref"), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) error {
	var opts api.UpdateOptions
	if err := decodeJSON(w, r, &opts); err != nil {
		return err
	}
	if err := s.engine.Update(r.Context(), r.PathValue("ref"), opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) error {
	filters, err := ParseFilters(r.URL.Query()["filter"], "label")
	if err != nil {
		return err
	}
	rep, err := s.engine.Prune(r.Context(), filters)
	if err != nil {
		return err
	}
	if rep.ContainersDeleted == nil {
		rep.ContainersDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// getArchive answers a tar of ?path=; the stat of the path travels in the
// X-Tend-Path-Stat header (base64 JSON, as docker's
// X-Docker-Container-Path-Stat). Errors found before the first byte are
// ordinary error answers.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Query().Get("path")
	var started bool
	sw := &startWriter{w: w, start: func() {
		started = true
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
	}}
	_, err := s.engine.ArchivePath(r.Context(), r.PathValue("ref"), p, sw)
	if err != nil && !started {
		return err
	}
	if err != nil {
		log.G(r.Context()).WithError(err).Warn("archive cut short")
	}
	return nil
}

// startWriter calls start before the first byte.
type startWriter struct {
	w     http.ResponseWriter
	start func()
	done  bool
}

func (s *startWriter) Write(p []byte) (int, error) {
	if !s.done {
		s.done = true
		s.start()
	}
	return s.w.Write(p)
}

func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Query().Get("path")
	body := &progressReader{r: r.Body, rc: http.NewResponseController(w), timeout: s.opts.BodyTimeout}
	if err := s.engine.ExtractToDir(r.Context(), r.PathValue("ref"), p, body); err != nil {
		if body.err != nil {
			return body.err
		}
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) changes(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.engine.Diff(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	writeList(w, cs)
	return nil
}

func (s *Server) export(w http.ResponseWriter, r *http.Request) error {
	var started bool
	sw := &startWriter{w: w, start: func() {
		started = true
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
	}}
	err := s.engine.Export(r.Context(), r.PathValue("ref"), sw)
	if err != nil && !started {
		return err
	}
	if err != nil {
		log.G(r.Context()).WithError(err).Warn("export cut short")
	}
	return nil
}

func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var du api.DiskUsage
	imgs, err := s.engine.Images(ctx)
	if err != nil {
		return err
	}
	cs, err := s.engine.List(ctx, api.ListOptions{All: true})
	if err != nil {
		return err
	}
	du.Containers = []*api.Container{}
	for _, c := range cs {
		s.fillSize(r, c)
		du.Containers = append(du.Containers, c)
	}
	du.Images = []api.ImageUsage{}
	for _, img := range imgs {
		du.Images = append(du.Images, api.ImageUsage{Image: img, Containers: countUsing(cs, img.Ref)})
	}
	writeJSON(w, http.StatusOK, du)
	return nil
}

func countUsing(cs []*api.Container, ref string) int {
	n := 0
	for _, c := range cs {
		if c.Config.Image == ref {
			n++
		}
	}
	return n
}
