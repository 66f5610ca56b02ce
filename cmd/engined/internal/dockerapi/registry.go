package dockerapi

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/storage"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/format"
)

// credentials turns X-Registry-Auth into the engine's credentials; none:
// anonymous.
func credentials(r *http.Request) (backend.Credentials, error) {
	h := r.Header.Get("X-Registry-Auth")
	if h == "" {
		return nil, nil
	}
	a, err := authconfig.Decode(h)
	if err != nil {
		return nil, fmt.Errorf("invalid X-Registry-Auth header: %v: %w", err, errdefs.ErrInvalidArgument)
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

// progressStream answers with docker's JSON progress messages, written as
// the engine reports them, and the error of run as the last message.
func progressStream(w http.ResponseWriter, r *http.Request, run func(ctx context.Context, progress backend.ProgressFunc) error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	out := newLineWriter(w, rc)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	err := run(ctx, func(ev backend.ProgressEvent) {
		m := jsonstream.Message{ID: ev.ID, Status: ev.Status}
		if ev.Detail != nil {
			m.Progress = &jsonstream.Progress{Current: ev.Detail.Current, Total: ev.Detail.Total}
		}
		if out.send(m) != nil {
			cancel() // the client is gone
		}
	})
	if err != nil && r.Context().Err() == nil {
		_, resp := api.NewErrorResponse(err)
		_ = out.send(jsonstream.Message{Error: &jsonstream.Error{Message: resp.Message}})
	}
}

// pullImage answers POST /images/create?fromImage=NAME&tag=TAG (a pull);
// fromSrc (an import of a rootfs tarball) answers 501.
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("fromSrc") != "" {
		return notImplemented("image import from a rootfs tarball")(w, r)
	}
	ref := q.Get("fromImage")
	if tag := q.Get("tag"); tag != "" && ref != "" {
		if strings.HasPrefix(tag, "sha256:") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	if err := api.ValidateImageRef(ref); err != nil {
		return err
	}
	creds, err := credentials(r)
	if err != nil {
		return err
	}
	opts := backend.PullOptions{Platform: q.Get("platform"), Credentials: creds}
	progressStream(w, r, func(ctx context.Context, progress backend.ProgressFunc) error {
		img, err := s.engine.PullImage(ctx, ref, opts, progress)
		if err == nil {
			progress(backend.ProgressEvent{Status: "Digest: " + img.Digest})
			progress(backend.ProgressEvent{Status: "Status: Downloaded newer image for " + familiarImage(img.Ref)})
		}
		return err
	})
	return nil
}

func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, name string) error {
	if tag := r.URL.Query().Get("tag"); tag != "" {
		name += ":" + tag
	}
	if err := api.ValidateImageRef(name); err != nil {
		return err
	}
	creds, err := credentials(r)
	if err != nil {
		return err
	}
	progressStream(w, r, func(ctx context.Context, progress backend.ProgressFunc) error {
		return s.engine.PushImage(ctx, name, backend.PushOptions{Credentials: creds}, progress)
	})
	return nil
}

func (s *Server) tagImage(w http.ResponseWriter, r *http.Request, name string) error {
	q := r.URL.Query()
	dst := q.Get("repo")
	if tag := q.Get("tag"); tag != "" {
		dst += ":" + tag
	}
	if err := api.ValidateImageRef(dst); err != nil {
		return err
	}
	if _, err := backend.NormalizeImageRef(dst); err != nil {
		return err // dockerd's "repository name must be lowercase" and the like
	}
	src := name
	if g, err := s.findImage(r.Context(), name); err == nil && len(g.refs) > 0 {
		src = g.refs[0] // an id names the image by one of its references
	}
	if _, err := s.engine.TagImage(r.Context(), src, dst); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// saveImages answers GET /images/get?names=... and GET /images/{name}/get
// with a docker-archive tar.
func (s *Server) saveImages(w http.ResponseWriter, r *http.Request, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("no image names given: add names=IMAGE: %w", errdefs.ErrInvalidArgument)
	}
	for _, n := range names {
		if _, err := s.findImage(r.Context(), n); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	// Errors after the first byte can only cut the archive short.
	return s.engine.SaveImages(r.Context(), names, w)
}

func (s *Server) saveImagesQuery(w http.ResponseWriter, r *http.Request) error {
	return s.saveImages(w, r, r.URL.Query()["names"])
}

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.only("dangling"); err != nil {
		return err
	}
	all := f["dangling"]["false"] || f["dangling"]["0"]
	rep, err := s.engine.PruneImages(r.Context(), all)
	if err != nil {
		return err
	}
	out := image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}
	for _, d := range rep.Deleted {
		out.ImagesDeleted = append(out.ImagesDeleted, image.DeleteResponse{Deleted: d})
	}
	if rep.SpaceReclaimed > 0 {
		out.SpaceReclaimed = uint64(rep.SpaceReclaimed)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request, name string) error {
	g, err := s.findImage(r.Context(), name)
	if err != nil {
		return err
	}
	ref := name
	if len(g.refs) > 0 {
		ref = g.refs[0]
	}
	in, err := s.engine.InspectImage(r.Context(), ref)
	if err != nil {
		return err
	}
	arch, os := in.Architecture, in.Os
	if arch == "" {
		arch = runtime.GOARCH
	}
	if os == "" {
		os = "linux"
	}
	writeJSON(w, http.StatusOK, image.InspectResponse{
		ID: g.digest, RepoTags: g.refs, RepoDigests: []string{}, Created: format.DockerTime(in.Created),
		Architecture: arch, Os: os, Size: in.Size,
		Config:      &dockerspec.DockerOCIImageConfig{ImageConfig: in.Config},
		GraphDriver: &storage.DriverData{Name: "overlayfs", Data: map[string]string{}},
		RootFS:      image.RootFS{Type: "layers", Layers: in.Layers},
	})
	return nil
}
