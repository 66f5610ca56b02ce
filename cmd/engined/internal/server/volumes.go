package server

import (
	"net/http"

	"github.com/tendhq/tend/cmd/internal/api"
)

// volumeRoutes adds the volume routes: docker's /volumes, on the engine's
// documents (docker's Volume, CreateRequest and PruneReport).
func (s *Server) volumeRoutes(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	p := "/" + api.Version
	h("GET "+p+"/volumes", s.volumes)
	h("POST "+p+"/volumes", s.createVolume)
	h("POST "+p+"/volumes/prune", s.pruneVolumes)
	h("GET "+p+"/volumes/{volume}", s.inspectVolume)
	h("DELETE "+p+"/volumes/{volume}", s.removeVolume)
}

func (s *Server) volumes(w http.ResponseWriter, r *http.Request) error {
	vs, err := s.engine.Volumes(r.Context())
	if err != nil {
		return err
	}
	writeList(w, vs)
	return nil
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) error {
	var req api.VolumeCreateRequest
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
	v, err := s.engine.InspectVolume(r.Context(), r.PathValue("volume"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// removeVolume deletes a volume: 409 while a container mounts it; with
// ?force=1 an unknown volume is no error.
func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.RemoveVolume(r.Context(), r.PathValue("volume"), boolParam(r.URL.Query().Get("force"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneVolumes removes the unused anonymous volumes, or every unused
// volume with ?all=1.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.engine.PruneVolumes(r.Context(), boolParam(r.URL.Query().Get("all")))
	if err != nil {
		return err
	}
	if rep.VolumesDeleted == nil {
		rep.VolumesDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
