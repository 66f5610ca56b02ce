package dockerapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
)

// volumeEngine fakes the engine's volume calls; the other calls are not
// reached by these tests (the embedded nil interface panics if they are).
type volumeEngine struct {
	Engine
	mu       sync.Mutex
	vols     map[string]volume.Volume
	pruneAll []bool
}

func (e *volumeEngine) CreateVolume(ctx context.Context, req api.VolumeCreateRequest) (*api.Volume, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := backend.ValidateVolumeName(req.Name); err != nil {
		return nil, err
	}
	v := volume.Volume{Name: req.Name, Driver: "local", Labels: req.Labels, Mountpoint: "/x/" + req.Name + "/_data", Scope: "local"}
	e.vols[req.Name] = v
	return &v, nil
}

func (e *volumeEngine) Volumes(ctx context.Context) ([]api.Volume, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []api.Volume
	for _, n := range []string{"anon0123", "data", "logs"} {
		if v, ok := e.vols[n]; ok {
			out = append(out, v)
		}
	}
	return out, nil
}

func (e *volumeEngine) InspectVolume(ctx context.Context, name string) (*api.Volume, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.vols[name]
	if !ok {
		return nil, fmt.Errorf("no such volume: %s: %w", name, errdefs.ErrNotFound)
	}
	return &v, nil
}

func (e *volumeEngine) RemoveVolume(ctx context.Context, name string, force bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if name == "busy" {
		return fmt.Errorf("volume busy is in use: %w", errdefs.ErrFailedPrecondition)
	}
	if _, ok := e.vols[name]; !ok && !force {
		return fmt.Errorf("no such volume: %s: %w", name, errdefs.ErrNotFound)
	}
	delete(e.vols, name)
	return nil
}

func (e *volumeEngine) PruneVolumes(ctx context.Context, all bool) (api.VolumePruneReport, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pruneAll = append(e.pruneAll, all)
	return api.VolumePruneReport{}, nil
}

func TestVolumeRoutes(t *testing.T) {
	e := &volumeEngine{vols: map[string]volume.Volume{}}
	s := New(e, Options{})
	t.Cleanup(s.cancel)
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, b := range []string{`{"Name":"data","Labels":{"app":"web"}}`, `{"Name":"logs"}`} {
		if code, body := do("POST", "/v1.47/volumes/create", b); code != http.StatusCreated || !strings.Contains(body, `"Mountpoint":"/x/`) {
			t.Fatalf("create %s: %d %s", b, code, body)
		}
	}
	if code, body := do("POST", "/volumes/create", `{"Name":"../x"}`); code != http.StatusBadRequest {
		t.Errorf("create ../x: %d %s, want 400", code, body)
	}
	list := func(filters string) []string {
		t.Helper()
		path := "/volumes"
		if filters != "" {
			path += "?filters=" + url.QueryEscape(filters)
		}
		code, body := do("GET", path, "")
		var lr volume.ListResponse
		if err := json.Unmarshal([]byte(body), &lr); code != http.StatusOK || err != nil {
			t.Fatalf("list %s: %d %s %v", filters, code, body, err)
		}
		var names []string
		for _, v := range lr.Volumes {
			names = append(names, v.Name)
		}
		return names
	}
	if got := strings.Join(list(""), ","); got != "data,logs" {
		t.Errorf("list: %s", got)
	}
	if got := strings.Join(list(`{"label":{"app=web":true}}`), ","); got != "data" {
		t.Errorf("list label=app=web: %s", got)
	}
	if got := strings.Join(list(`{"name":{"og":true}}`), ","); got != "logs" {
		t.Errorf("list name=og: %s", got)
	}
	if code, _ := do("GET", "/volumes?filters="+url.QueryEscape(`{"bogus":{"x":true}}`), ""); code != http.StatusBadRequest {
		t.Errorf("list with an unknown filter: %d, want 400", code)
	}
	if code, body := do("GET", "/volumes/data", ""); code != http.StatusOK || !strings.Contains(body, `"app":"web"`) {
		t.Errorf("inspect data: %d %s", code, body)
	}
	if code, _ := do("GET", "/volumes/nope", ""); code != http.StatusNotFound {
		t.Errorf("inspect nope: %d, want 404", code)
	}
	if code, _ := do("DELETE", "/volumes/logs", ""); code != http.StatusNoContent {
		t.Errorf("rm logs: %d, want 204", code)
	}
	if code, _ := do("DELETE", "/volumes/logs", ""); code != http.StatusNotFound {
		t.Errorf("rm logs again: %d, want 404", code)
	}
	if code, _ := do("DELETE", "/volumes/logs?force=1", ""); code != http.StatusNoContent {
		t.Errorf("rm -f of a missing volume: %d, want 204", code)
	}
	if code, _ := do("DELETE", "/volumes/busy", ""); code < 400 || code >= 500 {
		t.Errorf("rm of a volume in use: %d, want a 4xx", code)
	}
	if code, body := do("POST", "/volumes/prune", ""); code != http.StatusOK || !strings.Contains(body, `"VolumesDeleted":[]`) {
		t.Errorf("prune: %d %s", code, body)
	}
	if code, _ := do("POST", "/volumes/prune?filters="+url.QueryEscape(`{"all":{"true":true}}`), ""); code != http.StatusOK {
		t.Errorf("prune all: %d", code)
	}
	if fmt.Sprint(e.pruneAll) != "[false true]" {
		t.Errorf("prune calls: %v, want [false true]", e.pruneAll)
	}
}

func TestExposedPorts(t *testing.T) {
	p80, _ := network.PortFrom(80, network.TCP)
	p53, _ := network.PortFrom(53, network.UDP)
	p443, _ := network.PortFrom(443, network.TCP)
	req := &container.CreateRequest{
		Config: &container.Config{Image: "busybox", ExposedPorts: network.PortSet{p80: {}, p53: {}, p443: {}},
			Hostname: "web1"},
		HostConfig: &container.HostConfig{
			PublishAllPorts: true,
			PortBindings:    network.PortMap{p80: {{HostPort: "8080"}}},
			NetworkMode:     "mynet",
			DNS:             []netip.Addr{netip.MustParseAddr("10.0.0.2")},
			ExtraHosts:      []string{"db:10.0.0.3"},
			Binds:           []string{"/srv:/h:ro", "named:/data"},
			Tmpfs:           map[string]string{"/run": "size=1m"},
		},
	}
	o, err := toCreateOptions("", req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range o.Publish {
		got = append(got, fmt.Sprintf("%d:%d/%s", m.HostPort, m.ContainerPort, m.Protocol))
	}
	if strings.Join(got, " ") != "8080:80/tcp 0:53/udp 0:443/tcp" || !o.PublishAll {
		t.Errorf("publish: %v (all %v), want 8080:80/tcp 0:53/udp 0:443/tcp", got, o.PublishAll)
	}
	if o.NetworkMode != "mynet" || o.Hostname != "web1" || strings.Join(o.DNS, ",") != "10.0.0.2" ||
		strings.Join(o.ExtraHosts, ",") != "db:10.0.0.3" || strings.Join(o.Binds, ",") != "/srv:/h:ro,named:/data" ||
		o.Tmpfs["/run"] != "size=1m" {
		t.Errorf("toCreateOptions: %+v", o)
	}
	// Without -P an exposed port is not published.
	req.HostConfig.PublishAllPorts = false
	if o, err := toCreateOptions("", req); err != nil || len(o.Publish) != 1 {
		t.Errorf("without PublishAllPorts: %v %+v, want the one binding", err, o.Publish)
	}
	for _, mode := range []container.NetworkMode{"", "default", "bridge", "none", "host"} {
		req.HostConfig.NetworkMode = mode
		req.HostConfig.PortBindings = nil
		o, err := toCreateOptions("", req)
		want := string(mode)
		if mode == "" || mode == "default" {
			want = "bridge"
		}
		if err != nil || o.NetworkMode != want {
			t.Errorf("NetworkMode %q: %v %q, want %q", mode, err, o.NetworkMode, want)
		}
	}
}
