package backend

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
)

// SaveImages writes the images refs (the host's platform of each) to w as
// docker save does: a tar with manifest.json and repositories, which is
// also an OCI layout (oci-layout, index.json, blobs/), so both docker load
// and OCI tools read it.
func (e *Engine) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	if len(refs) == 0 {
		return fmt.Errorf("no image to save: name at least one: %w", errdefs.ErrInvalidArgument)
	}
	cc := e.imageClient()
	var imgs []images.Image
	repos := make(map[string]map[string]string)
	for _, r := range refs {
		ref, img, err := e.getImage(ctx, r)
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
		if cfg, err := containerd.NewImage(cc, img).Config(e.nsCtx(ctx)); err == nil {
			repo, tag := repoOf(ref), tagOf(ref)
			if repos[repo] == nil {
				repos[repo] = make(map[string]string)
			}
			repos[repo][tag] = cfg.Digest.Encoded()
		}
	}
	ctx = e.nsCtx(ctx)
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := cc.Export(ctx, pw, archive.WithImages(imgs), archive.WithPlatform(platforms.DefaultStrict()))
		pw.CloseWithError(err)
		errc <- err
	}()
	err := appendRepositories(pr, w, repos)
	// The exporter stops at the pipe's error if the copy failed.
	pr.CloseWithError(errors.New("save aborted"))
	if xerr := <-errc; xerr != nil {
		return fmt.Errorf("save images: %w", xerr)
	}
	if err != nil {
		return fmt.Errorf("save images: %w", err)
	}
	return nil
}

// appendRepositories copies the tar r to w and adds docker's legacy
// repositories file, which containerd's exporter does not write.
func appendRepositories(r io.Reader, w io.Writer, repos map[string]map[string]string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	b, err := json.Marshal(repos)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "repositories", Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(b); err != nil {
		return err
	}
	return tw.Close()
}

// LoadImages loads a docker save archive or an OCI layout tar, reporting
// "Loaded image: REF" for each image, as docker load prints.
func (e *Engine) LoadImages(ctx context.Context, r io.Reader, progress ProgressFunc) ([]Image, error) {
	imgs, err := e.ImportImage(ctx, r)
	if progress != nil {
		for _, img := range imgs {
			progress(ProgressEvent{Status: "Loaded image: " + img.Ref})
		}
	}
	return imgs, err
}
