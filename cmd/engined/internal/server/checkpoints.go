package server

import (
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
)

func (s *Server) listCheckpoints(w http.ResponseWriter, r *http.Request) error {
	cps, err := s.engine.ListCheckpoints(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	writeList(w, cps)
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
