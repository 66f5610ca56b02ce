package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/tendhq/tend/cmd/internal/api"
)

// RemoveContainer removes a container with docker's options: Force kills
// it first, Volumes removes its anonymous volumes too.
func (c *Client) RemoveContainer(ctx context.Context, r string, opts api.RemoveOptions) error {
	q := url.Values{}
	if opts.Force {
		q.Set("force", "1")
	}
	if opts.Volumes {
		q.Set("v", "1")
	}
	return c.call(ctx, http.MethodDelete, ref(r), q, nil, nil)
}

func volumePath(name string) string { return "/volumes/" + url.PathEscape(name) }

// CreateVolume creates a volume, or returns the existing one of that name.
func (c *Client) CreateVolume(ctx context.Context, req api.VolumeCreateRequest) (*api.Volume, error) {
	var v api.Volume
	if err := c.call(ctx, http.MethodPost, "/volumes", nil, req, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Volumes lists the volumes.
func (c *Client) Volumes(ctx context.Context) ([]api.Volume, error) {
	var vs []api.Volume
	return vs, c.call(ctx, http.MethodGet, "/volumes", nil, nil, &vs)
}

// InspectVolume returns a volume.
func (c *Client) InspectVolume(ctx context.Context, name string) (*api.Volume, error) {
	var v api.Volume
	if err := c.call(ctx, http.MethodGet, volumePath(name), nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// RemoveVolume removes a volume; force makes a missing one no error.
func (c *Client) RemoveVolume(ctx context.Context, name string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.call(ctx, http.MethodDelete, volumePath(name), q, nil, nil)
}

// PruneVolumes removes unused anonymous volumes, or all unused ones.
func (c *Client) PruneVolumes(ctx context.Context, all bool) (api.VolumePruneReport, error) {
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	var rep api.VolumePruneReport
	return rep, c.call(ctx, http.MethodPost, "/volumes/prune", q, nil, &rep)
}
