package dockerapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/containerd/log"
	"github.com/moby/moby/api/types/container"
)

// The filesystem routes: docker cp (archive), docker export and docker
// diff (changes).

// pathStatHeader carries the stat of an archive's path, base64 JSON.
const pathStatHeader = "X-Docker-Container-Path-Stat"

// statHeader describes ?path= of the container in the path-stat header.
func (s *Server) statHeader(w http.ResponseWriter, r *http.Request) error {
	st, err := s.engine.StatPath(r.Context(), r.PathValue("ref"), r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	b, err := json.Marshal(container.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.ModTime, LinkTarget: st.LinkTarget})
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

// statArchive answers HEAD /containers/{id}/archive: the stat alone.
func (s *Server) statArchive(w http.ResponseWriter, r *http.Request) error {
	if err := s.statHeader(w, r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// getArchive answers GET /containers/{id}/archive: the stat, then a tar of
// ?path=. Errors found before the first byte are ordinary error answers;
// later ones can only cut the tar short.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request) error {
	if err := s.statHeader(w, r); err != nil {
		return err
	}
	sw := &startWriter{w: w, start: func() {
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
	}}
	_, err := s.engine.ArchivePath(r.Context(), r.PathValue("ref"), r.URL.Query().Get("path"), sw)
	if err != nil && !sw.started {
		w.Header().Del(pathStatHeader)
		return err
	}
	if err != nil {
		log.G(r.Context()).WithError(err).Warn("docker api: archive cut short")
	}
	return nil
}

// putArchive answers PUT /containers/{id}/archive: the tar body extracted
// into the directory ?path=, running container or not. Entries keep the
// archive's owners (docker cp -a's copyUIDGID) and a non-empty directory is
// never replaced by a file (noOverwriteDirNonDir), whatever the query says.
func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) error {
	if err := s.engine.ExtractToDir(r.Context(), r.PathValue("ref"), r.URL.Query().Get("path"), r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// exportContainer answers GET /containers/{id}/export: the container's
// filesystem as a tar.
func (s *Server) exportContainer(w http.ResponseWriter, r *http.Request) error {
	sw := &startWriter{w: w, start: func() {
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
	}}
	err := s.engine.Export(r.Context(), r.PathValue("ref"), sw)
	if err != nil && !sw.started {
		return err
	}
	if err != nil {
		log.G(r.Context()).WithError(err).Warn("docker api: export cut short")
	}
	return nil
}

// changesContainer answers GET /containers/{id}/changes: what the container
// changed in its image's filesystem.
func (s *Server) changesContainer(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.engine.Diff(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	out := make([]container.FilesystemChange, 0, len(cs))
	for _, c := range cs {
		out = append(out, container.FilesystemChange{Path: c.Path, Kind: container.ChangeType(c.Kind)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// startWriter calls start before the first byte.
type startWriter struct {
	w       http.ResponseWriter
	start   func()
	started bool
}

func (s *startWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		s.start()
	}
	return s.w.Write(p)
}
