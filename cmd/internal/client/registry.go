package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/tendhq/tend/cmd/internal/api"
)

// send is do with headers.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body io.Reader, header http.Header) (*http.Response, error) {
	u, err := c.url(path, q)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// progressStream reads a pull, push or load stream, calling fn for each
// event; the stream's error line is returned as an error of its class.
func progressStream(ctx context.Context, resp *http.Response, fn func(api.ProgressEvent)) error {
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m api.ProgressMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the engine closed the stream (did the daemon stop?): %w", err)
		}
		if m.Error != "" {
			status, _ := api.StatusOf(errorOfClass(m.Class))
			return api.ErrorFrom(status, api.ErrorResponse{Message: m.Error, Class: m.Class})
		}
		if fn != nil {
			fn(m.ProgressEvent)
		}
	}
}

// errorOfClass finds the errdefs class named class for StatusOf.
func errorOfClass(class string) error {
	if class == "" {
		return errors.New("unknown")
	}
	return api.ClassError(class)
}

func authHeader(auth *api.AuthConfig) http.Header {
	h := http.Header{}
	if auth != nil {
		h.Set(api.RegistryAuthHeader, api.EncodeAuth(*auth))
	}
	return h
}

// PullImage pulls ref with the daemon, calling fn for each progress event.
func (c *Client) PullImage(ctx context.Context, ref, platform string, auth *api.AuthConfig, fn func(api.ProgressEvent)) error {
	if err := api.ValidateImageRef(ref); err != nil {
		return err
	}
	q := url.Values{"ref": {ref}}
	if platform != "" {
		q.Set("platform", platform)
	}
	resp, err := c.send(ctx, http.MethodPost, "/images/pull", q, nil, authHeader(auth))
	if err != nil {
		return err
	}
	return progressStream(ctx, resp, fn)
}

// PushImage pushes ref, calling fn for each progress event.
func (c *Client) PushImage(ctx context.Context, ref string, auth *api.AuthConfig, fn func(api.ProgressEvent)) error {
	if err := api.ValidateImageRef(ref); err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodPost, "/images/push", url.Values{"ref": {ref}}, nil, authHeader(auth))
	if err != nil {
		return err
	}
	return progressStream(ctx, resp, fn)
}

// TagImage names the image src also dst and returns dst in full.
func (c *Client) TagImage(ctx context.Context, src, dst string) (string, error) {
	var out api.TagResponse
	err := c.call(ctx, http.MethodPost, "/images/tag", nil, api.TagRequest{Source: src, Target: dst}, &out)
	return out.Ref, err
}

// InspectImage describes an image.
func (c *Client) InspectImage(ctx context.Context, ref string) (*api.ImageInspect, error) {
	if err := api.ValidateImageRef(ref); err != nil {
		return nil, err
	}
	var out api.ImageInspect
	return &out, c.call(ctx, http.MethodGet, "/images/"+api.ImagePath(ref), nil, nil, &out)
}

// PruneImages removes unused images (all: tagged ones too).
func (c *Client) PruneImages(ctx context.Context, all bool) (api.PruneReport, error) {
	var out api.PruneReport
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	return out, c.call(ctx, http.MethodPost, "/images/prune", q, nil, &out)
}

// SaveImages writes the docker-archive tar of refs to w.
func (c *Client) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	for _, r := range refs {
		if err := api.ValidateImageRef(r); err != nil {
			return err
		}
	}
	resp, err := c.send(ctx, http.MethodGet, "/images/save", url.Values{"ref": refs}, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("save: the engine's archive was cut short: %w", err)
	}
	return nil
}

// LoadImages sends a docker-archive or OCI layout tar, calling fn for each
// progress event ("Loaded image: ...").
func (c *Client) LoadImages(ctx context.Context, r io.Reader, fn func(api.ProgressEvent)) error {
	resp, err := c.send(ctx, http.MethodPost, "/images/load", nil, r, http.Header{"Content-Type": {"application/x-tar"}})
	if err != nil {
		return err
	}
	return progressStream(ctx, resp, fn)
}

// Login checks a registry login with the daemon.
func (c *Client) Login(ctx context.Context, auth api.AuthConfig) error {
	return c.call(ctx, http.MethodPost, "/auth", nil, auth, nil)
}
