package dockerapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/image"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
)

// imageGroup is one image content (a digest) and the references to it.
type imageGroup struct {
	digest string
	refs   []string
	img    backend.Image
}

func groupImages(imgs []backend.Image) []*imageGroup {
	var out []*imageGroup
	byDigest := map[string]*imageGroup{}
	for _, img := range imgs {
		g := byDigest[img.Digest]
		if g == nil {
			g = &imageGroup{digest: img.Digest, img: img}
			byDigest[img.Digest] = g
			out = append(out, g)
		}
		g.refs = append(g.refs, familiarImage(img.Ref))
	}
	return out
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.only("reference", "dangling"); err != nil {
		return err
	}
	imgs, err := s.engine.Images(r.Context())
	if err != nil {
		return err
	}
	out := []image.Summary{}
	for _, g := range groupImages(imgs) {
		if len(f["reference"]) > 0 {
			ok := false
			for v := range f["reference"] {
				for _, ref := range g.refs {
					name, _, _ := strings.Cut(ref, ":")
					ok = ok || ref == v || name == v
				}
			}
			if !ok {
				continue
			}
		}
		if f["dangling"]["true"] {
			continue // tend keeps no untagged images
		}
		out = append(out, image.Summary{
			ID: g.digest, RepoTags: g.refs, RepoDigests: []string{}, Created: g.img.Created.Unix(),
			Size: g.img.Size, Containers: -1, SharedSize: -1, Labels: map[string]string{},
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// findImage resolves an image name, full reference or (prefix of) digest.
func (s *Server) findImage(ctx context.Context, name string) (*imageGroup, error) {
	imgs, err := s.engine.Images(ctx)
	if err != nil {
		return nil, err
	}
	groups := groupImages(imgs)
	if norm, err := backend.NormalizeImageRef(name); err == nil {
		for _, g := range groups {
			for _, img := range imgs {
				if img.Ref == norm && img.Digest == g.digest {
					return g, nil
				}
			}
		}
	}
	hex := strings.TrimPrefix(name, "sha256:")
	if len(hex) >= 4 && strings.Trim(hex, "0123456789abcdef") == "" {
		for _, g := range groups {
			if strings.HasPrefix(strings.TrimPrefix(g.digest, "sha256:"), hex) {
				return g, nil
			}
		}
	}
	return nil, fmt.Errorf("No such image: %s: %w", name, errdefs.ErrNotFound)
}

// imageGET serves GET /images/{name}/json, /get (save) and /history (501).
func (s *Server) imageGET(w http.ResponseWriter, r *http.Request) error {
	path := r.PathValue("name")
	switch {
	case strings.HasSuffix(path, "/json"):
		return s.inspectImage(w, r, strings.TrimSuffix(path, "/json"))
	case strings.HasSuffix(path, "/get"):
		return s.saveImages(w, r, []string{strings.TrimSuffix(path, "/get")})
	case strings.HasSuffix(path, "/history"):
		return notImplemented("image history")(w, r)
	}
	return fmt.Errorf("page not found: GET /images/%s: %w", api.Cut(path), errdefs.ErrNotFound)
}

// imagePOST serves POST /images/{name}/tag and /push.
func (s *Server) imagePOST(w http.ResponseWriter, r *http.Request) error {
	path := r.PathValue("name")
	switch {
	case strings.HasSuffix(path, "/tag"):
		return s.tagImage(w, r, strings.TrimSuffix(path, "/tag"))
	case strings.HasSuffix(path, "/push"):
		return s.pushImage(w, r, strings.TrimSuffix(path, "/push"))
	}
	return fmt.Errorf("page not found: POST /images/%s: %w", api.Cut(path), errdefs.ErrNotFound)
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	g, err := s.findImage(r.Context(), name)
	if err != nil {
		return err
	}
	imgs, err := s.engine.Images(r.Context())
	if err != nil {
		return err
	}
	// A name removes that reference; an id removes every reference to it.
	var refs []string
	if norm, err := backend.NormalizeImageRef(name); err == nil && !strings.HasPrefix(g.digest, name) && !strings.HasPrefix(strings.TrimPrefix(g.digest, "sha256:"), name) {
		refs = []string{norm}
	} else {
		for _, img := range imgs {
			if img.Digest == g.digest {
				refs = append(refs, img.Ref)
			}
		}
	}
	out := []image.DeleteResponse{}
	for _, ref := range refs {
		if err := s.engine.RemoveImage(r.Context(), ref); err != nil {
			return err
		}
		out = append(out, image.DeleteResponse{Untagged: familiarImage(ref)})
	}
	if len(refs) == len(g.refs) {
		out = append(out, image.DeleteResponse{Deleted: g.digest})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// loadImages answers POST /images/load: a docker-archive or OCI layout
// tar, answered with docker's progress messages.
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) error {
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxImportBytes)
	// The progress answer starts before the archive is read to its end.
	if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
		return fmt.Errorf("stream the load: %w", err)
	}
	progressStream(w, r, func(ctx context.Context, progress backend.ProgressFunc) error {
		imgs, err := s.engine.LoadImages(ctx, body, nil)
		for _, img := range imgs {
			progress(backend.ProgressEvent{Status: "Loaded image: " + familiarImage(img.Ref)})
		}
		return err
	})
	return nil
}
