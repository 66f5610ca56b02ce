package server

import (
	"net/http"
	"runtime"

	"github.com/tendhq/tend/cmd/internal/api"
)

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
