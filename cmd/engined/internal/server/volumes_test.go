package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/cmd/internal/api"
)

// volumeEngine keeps volumes in a map; "busy" is in use.
type volumeEngine struct {
	Engine

	mu      sync.Mutex
	vols    map[string]api.Volume
	removed []api.RemoveOptions
}

func (f *volumeEngine) CreateVolume(_ context.Context, req api.VolumeCreateRequest) (*api.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := api.Volume{Name: req.Name, Driver: "local", Labels: req.Labels}
	f.vols[req.Name] = v
	return &v, nil
}

func (f *volumeEngine) Volumes(context.Context) ([]api.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Volume
	for _, v := range f.vols {
		out = append(out, v)
	}
	return out, nil
}

func (f *volumeEngine) InspectVolume(_ context.Context, name string) (*api.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vols[name]
	if !ok {
		return nil, fmt.Errorf("no such volume: %s: %w", name, errdefs.ErrNotFound)
	}
	return &v, nil
}

func (f *volumeEngine) RemoveVolume(_ context.Context, name string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "busy" {
		return fmt.Errorf("volume busy is in use by container web (0123456789ab): %w", errdefs.ErrFailedPrecondition)
	}
	if _, ok := f.vols[name]; !ok && !force {
		return fmt.Errorf("no such volume: %s: %w", name, errdefs.ErrNotFound)
	}
	delete(f.vols, name)
	return nil
}

func (f *volumeEngine) PruneVolumes(_ context.Context, all bool) (api.VolumePruneReport, error) {
	return api.VolumePruneReport{}, nil
}

func (f *volumeEngine) RemoveContainer(_ context.Context, ref string, opts api.RemoveOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, opts)
	return nil
}

func TestVolumeRoutes(t *testing.T) {
	f := &volumeEngine{vols: map[string]api.Volume{"busy": {Name: "busy", Driver: "local"}}}
	c, sock, _ := serve(t, f)
	ctx := context.Background()

	if v, err := c.CreateVolume(ctx, api.VolumeCreateRequest{Name: "data", Labels: map[string]string{"a": "b"}}); err != nil || v.Name != "data" || v.Labels["a"] != "b" {
		t.Fatalf("create: %+v %v", v, err)
	}
	if vs, err := c.Volumes(ctx); err != nil || len(vs) != 2 {
		t.Fatalf("list: %+v %v", vs, err)
	}
	if v, err := c.InspectVolume(ctx, "data"); err != nil || v.Driver != "local" {
		t.Fatalf("inspect: %+v %v", v, err)
	}
	err := c.RemoveVolume(ctx, "busy", false)
	var re *api.RemoteError
	if !errors.As(err, &re) || re.Status != http.StatusConflict || !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("remove in use: %v, want 409 failed precondition", err)
	}
	if err := c.RemoveVolume(ctx, "nosuch", false); !errdefs.IsNotFound(err) {
		t.Fatalf("remove unknown: %v", err)
	}
	if err := c.RemoveVolume(ctx, "nosuch", true); err != nil {
		t.Fatalf("remove unknown with force: %v", err)
	}
	if rep, err := c.PruneVolumes(ctx, true); err != nil || rep.VolumesDeleted == nil {
		t.Fatalf("prune: %+v %v, want an empty list, not null", rep, err)
	}
	if err := c.RemoveContainer(ctx, "web", api.RemoveOptions{Force: true, Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if len(f.removed) != 1 || !f.removed[0].Force || !f.removed[0].Volumes {
		t.Errorf("container removal got %+v, want force and volumes", f.removed)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/volumes/a", "", 400},           // too short for a volume name
		{"GET", "/v1/volumes/.hidden", "", 400},     // not a volume name
		{"DELETE", "/v1/volumes/a%2Fb", "", 400},    // an encoded slash
		{"POST", "/v1/volumes", `{"Nme":"x"}`, 400}, // unknown field
		{"PUT", "/v1/volumes/data", "", 405},
	} {
		var body *strings.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		var st int
		if body != nil {
			st, _ = rawRequest(t, sock, tc.method, tc.path, body)
		} else {
			st, _ = rawRequest(t, sock, tc.method, tc.path, nil)
		}
		if st != tc.status {
			t.Errorf("%s %s %s: %d, want %d", tc.method, tc.path, tc.body, st, tc.status)
		}
	}
}
