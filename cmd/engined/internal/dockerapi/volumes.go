package dockerapi

import (
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/volume"
)

// Volumes: Docker's /volumes routes onto the engine's local
// volumes (backend/volumes.go), in Docker's shapes.

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.only("name", "driver", "label"); err != nil {
		return err
	}
	vs, err := s.engine.Volumes(r.Context())
	if err != nil {
		return err
	}
	out := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for i := range vs {
		if volumeMatches(f, &vs[i]) {
			out.Volumes = append(out.Volumes, vs[i])
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// volumeMatches applies docker volume ls's name (a substring), driver and
// label (key or key=value) filters.
func volumeMatches(f filters, v *volume.Volume) bool {
	if names := f.values("name"); len(names) > 0 {
		ok := false
		for _, n := range names {
			ok = ok || strings.Contains(v.Name, n)
		}
		if !ok {
			return false
		}
	}
	if !f.match("driver", v.Driver) {
		return false
	}
	return labelsMatch(f.values("label"), v.Labels)
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	v, err := s.engine.CreateVolume(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) error {
	v, err := s.engine.InspectVolume(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.RemoveVolume(r.Context(), r.PathValue("name"), boolParam(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneVolumes removes the unused anonymous volumes, or all unused ones
// with the filter all=true (API 1.42 and later, docker volume prune -a).
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.only("all"); err != nil {
		return err
	}
	all := f["all"]["true"] || f["all"]["1"]
	rep, err := s.engine.PruneVolumes(r.Context(), all)
	if err != nil {
		return err
	}
	if rep.VolumesDeleted == nil {
		rep.VolumesDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// labelsMatch reports whether labels has every key (or key=value) of want.
func labelsMatch(want []string, labels map[string]string) bool {
	for _, kv := range want {
		k, v, hasValue := strings.Cut(kv, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}
