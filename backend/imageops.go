package backend

import (
	"context"
	"fmt"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
)

// getImage finds an image by (normalized) reference.
func (e *Engine) getImage(ctx context.Context, ref string) (string, images.Image, error) {
	ref, err := NormalizeImageRef(ref)
	if err != nil {
		return "", images.Image{}, err
	}
	if e.isClosed() {
		return "", images.Image{}, ErrClosed
	}
	img, err := e.imageClient().ImageService().Get(e.nsCtx(ctx), ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return ref, img, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
		}
		return ref, img, fmt.Errorf("image %s: %w", ref, err)
	}
	return ref, img, nil
}

// InspectImage describes an image: its config and layers for the host's
// platform.
func (e *Engine) InspectImage(ctx context.Context, ref string) (*ImageInspect, error) {
	_, img, err := e.getImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	ctx = e.nsCtx(ctx)
	ci := containerd.NewImage(e.imageClient(), img)
	out := &ImageInspect{Image: e.describe(ctx, ci, img), MediaType: img.Target.MediaType, Labels: img.Labels}
	spec, err := ci.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %s: read config: %w", img.Name, err)
	}
	out.Architecture, out.Os, out.Config = spec.Architecture, spec.OS, spec.Config
	if spec.Created != nil {
		out.Created = *spec.Created
	}
	for _, d := range spec.RootFS.DiffIDs {
		out.Layers = append(out.Layers, d.String())
	}
	return out, nil
}

// TagImage gives the image src the name dst (replacing what dst named)
// and returns dst normalized.
func (e *Engine) TagImage(ctx context.Context, src, dst string) (string, error) {
	_, img, err := e.getImage(ctx, src)
	if err != nil {
		return "", err
	}
	dst, err = NormalizeImageRef(dst)
	if err != nil {
		return "", err
	}
	ctx = e.nsCtx(ctx)
	is := e.imageClient().ImageService()
	n := images.Image{Name: dst, Target: img.Target, Labels: img.Labels, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if _, err := is.Create(ctx, n); err != nil {
		if !errdefs.IsAlreadyExists(err) {
			return "", fmt.Errorf("tag %s as %s: %w", img.Name, dst, err)
		}
		if _, err := is.Update(ctx, n, "target"); err != nil {
			return "", fmt.Errorf("tag %s as %s: %w", img.Name, dst, err)
		}
	}
	return dst, nil
}

// PruneImages removes the images no container uses: with all, every such
// image; without, only the dangling ones (named by digest, without a tag).
func (e *Engine) PruneImages(ctx context.Context, all bool) (PruneReport, error) {
	var rep PruneReport
	imgs, err := e.Images(ctx)
	if err != nil {
		return rep, err
	}
	used := make(map[string]bool)
	for _, c := range e.containers() {
		used[c.rec.Config.Image] = true
	}
	for _, img := range imgs {
		if used[img.Ref] || (!all && !strings.Contains(img.Ref, "@")) {
			continue
		}
		if err := e.RemoveImage(ctx, img.Ref); err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) {
				continue
			}
			return rep, err
		}
		rep.Deleted = append(rep.Deleted, img.Ref)
		rep.SpaceReclaimed += img.Size
	}
	return rep, nil
}
