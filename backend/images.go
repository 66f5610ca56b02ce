package backend

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// snapshotter unpacks imported images.
const snapshotter = "overlayfs"

// imageClient returns the containerd client for images: libcontainerd's
// own connection, which the engine must not close.
func (e *Engine) imageClient() *containerd.Client { return e.client.Containerd() }

// ImportImage imports the images of an OCI layout or docker-archive tar and
// unpacks them with overlayfs.
func (e *Engine) ImportImage(ctx context.Context, r io.Reader) ([]Image, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	cc := e.imageClient()
	ctx = e.nsCtx(ctx)
	imgs, err := cc.Import(ctx, r, containerd.WithImportCompression())
	if err != nil {
		return nil, fmt.Errorf("import image archive: %w", classifyImportError(err))
	}
	out := make([]Image, 0, len(imgs))
	for _, img := range imgs {
		ci := containerd.NewImage(cc, img)
		if err := ci.Unpack(ctx, snapshotter); err != nil {
			return out, fmt.Errorf("unpack %s: %w", img.Name, err)
		}
		out = append(out, e.describe(ctx, ci, img))
	}
	return out, nil
}

// notAnImage lists the messages of containerd's importer
// (core/images/archive.ImportIndex) for a tar that is read whole but holds
// no image. The importer returns them untyped; this is the one place that
// reads them.
var notAnImage = []string{"unrecognized image format", "missing index.json", "unsupported OCI version"}

// classifyImportError marks as errdefs.ErrInvalidArgument an import error
// that says the archive is at fault (not a tar, cut short, not an image,
// a broken manifest); any other (containerd failing) is returned as is.
func classifyImportError(err error) error {
	if errdefs.IsInvalidArgument(err) {
		return err
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the archive is not a complete tar: send the whole file of docker save or an OCI layout: %w", err, errdefs.ErrInvalidArgument)
	case errors.As(err, &syntax) || errors.As(err, &typ):
		return fmt.Errorf("%w: the archive's manifest is not valid JSON: send the file of docker save or an OCI layout: %w", err, errdefs.ErrInvalidArgument)
	}
	for _, m := range notAnImage {
		if strings.Contains(err.Error(), m) {
			return fmt.Errorf("%w: the tar holds no image (no manifest.json, or an OCI layout without index.json): send the file of docker save or an OCI layout: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	return err
}

func (e *Engine) describe(ctx context.Context, ci containerd.Image, img images.Image) Image {
	size, err := ci.Size(ctx)
	if err != nil {
		e.log.WithError(err).WithField("image", img.Name).Debug("image size")
	}
	return Image{Ref: img.Name, Digest: img.Target.Digest.String(), Size: size, Created: img.CreatedAt}
}

// Images lists the images of the engine's namespace, sorted by reference.
func (e *Engine) Images(ctx context.Context) ([]Image, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	cc := e.imageClient()
	ctx = e.nsCtx(ctx)
	imgs, err := cc.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, e.describe(ctx, containerd.NewImage(cc, img), img))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// RemoveImage deletes an image. An image used by a container is an
// errdefs.ErrFailedPrecondition; an unknown one errdefs.ErrNotFound.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	ref, err := NormalizeImageRef(ref)
	if err != nil {
		return err
	}
	if e.closed.Load() {
		return ErrClosed
	}
	for _, c := range e.containers() {
		// Rename (and Update) write the record under c.mu.
		c.mu.Lock()
		image, name := c.rec.Config.Image, c.rec.Name
		c.mu.Unlock()
		if image == ref {
			return fmt.Errorf("image %s is used by container %s: remove the container first: %w", ref, name, errdefs.ErrFailedPrecondition)
		}
	}
	cc := e.imageClient()
	if err := cc.ImageService().Delete(e.nsCtx(ctx), ref, images.SynchronousDelete()); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
		}
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

func (e *Engine) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, e.cfg.Namespace)
}

// NormalizeImageRef expands a short image name as docker does: "busybox"
// is docker.io/library/busybox:latest.
func NormalizeImageRef(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %v: give NAME[:TAG] or NAME@DIGEST, lowercase, such as busybox or localhost:5000/team/app:1.0: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return reference.TagNameOnly(named).String(), nil
}
