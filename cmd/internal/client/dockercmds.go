package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/tendhq/tend/cmd/internal/api"
)

// Rename renames a container.
func (c *Client) Rename(ctx context.Context, r, name string) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/rename", url.Values{"name": {name}}, nil, nil)
}

// Update changes a container's resources and restart policy.
func (c *Client) Update(ctx context.Context, r string, opts api.UpdateOptions) error {
	return c.call(ctx, http.MethodPost, ref(r)+"/update", nil, opts, nil)
}

// PruneContainers removes the stopped containers.
func (c *Client) PruneContainers(ctx context.Context, filters []string) (api.ContainerPruneReport, error) {
	var rep api.ContainerPruneReport
	return rep, c.call(ctx, http.MethodPost, "/containers/prune", url.Values{"filter": filters}, nil, &rep)
}

// DiskUsage reports the disk use of images and containers.
func (c *Client) DiskUsage(ctx context.Context) (api.DiskUsage, error) {
	var du api.DiskUsage
	return du, c.call(ctx, http.MethodGet, "/system/df", nil, nil, &du)
}

// Changes lists what a container changed in its image's filesystem.
func (c *Client) Changes(ctx context.Context, r string) ([]api.Change, error) {
	var cs []api.Change
	return cs, c.call(ctx, http.MethodGet, ref(r)+"/changes", nil, nil, &cs)
}

// GetArchive returns a tar stream of path in the container; the caller
// closes it.
func (c *Client) GetArchive(ctx context.Context, r, path string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, ref(r)+"/archive", url.Values{"path": {path}}, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// PutArchive extracts the tar stream in into the directory dir of the
// container.
func (c *Client) PutArchive(ctx context.Context, r, dir string, in io.Reader) error {
	resp, err := c.do(ctx, http.MethodPut, ref(r)+"/archive", url.Values{"path": {dir}}, in, "application/x-tar")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Export returns a tar stream of the container's filesystem; the caller
// closes it.
func (c *Client) Export(ctx context.Context, r string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, ref(r)+"/export", nil, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
