package backend

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushOptions configure PushImage.
type PushOptions struct {
	// Credentials for the registry; nil: anonymous.
	Credentials Credentials
}

// PushImage pushes the image ref (the content of the host's platform) to
// its registry, reporting each layer as docker does ("Preparing",
// "Pushed") and ending with the pushed digest. Errors are classed as
// PullImage's.
func (e *Engine) PushImage(ctx context.Context, ref string, opts PushOptions, progress ProgressFunc) error {
	ref, err := NormalizeImageRef(ref)
	if err != nil {
		return err
	}
	if e.isClosed() {
		return ErrClosed
	}
	if progress == nil {
		progress = func(ProgressEvent) {}
	}
	cc := e.imageClient()
	ctx = e.nsCtx(ctx)
	img, err := cc.ImageService().Get(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("No such image: %s: pull, import or tag one of that name first: %w", ref, errdefs.ErrNotFound)
		}
		return fmt.Errorf("push %s: %w", ref, err)
	}
	progress(ProgressEvent{Status: "The push refers to repository [" + repoOf(ref) + "]"})
	var layers []ocispec.Descriptor
	if manifest, err := images.Manifest(ctx, cc.ContentStore(), img.Target, platforms.Default()); err == nil {
		layers = manifest.Layers
	}
	for i := len(layers) - 1; i >= 0; i-- {
		progress(ProgressEvent{ID: layerID(layers[i].Digest), Status: "Preparing"})
	}
	tr := newPushTracker(layers, progress)
	err = cc.Push(ctx, ref, img.Target,
		containerd.WithResolver(docker.NewResolver(docker.ResolverOptions{Hosts: e.registryHosts(ctx, opts.Credentials), Tracker: tr})),
		containerd.WithPlatformMatcher(platforms.Default()))
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, classifyRegistryError(ref, err))
	}
	tr.finish(layers)
	progress(ProgressEvent{Status: fmt.Sprintf("%s: digest: %s size: %d", tagOf(ref), img.Target.Digest, img.Target.Size)})
	return nil
}

// repoOf is a normalized reference without its tag or digest.
func repoOf(ref string) string {
	tag := tagOf(ref)
	if len(ref) > len(tag) {
		return ref[:len(ref)-len(tag)-1]
	}
	return ref
}
