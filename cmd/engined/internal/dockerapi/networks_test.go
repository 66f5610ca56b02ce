package dockerapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"

	"github.com/tendhq/tend/backend"
	tnet "github.com/tendhq/tend/network"
)

// netEngine fakes the engine's network calls (server.NetworkEngine).
type netEngine struct {
	Engine
	created []tnet.CreateOptions
	removed []string
}

var testNets = []backend.NetworkInfo{
	{Network: tnet.Network{Name: "bridge", ID: "b1", Driver: "bridge", Bridge: "tend0", Subnet: "10.88.0.0/24", Gateway: "10.88.0.1", Default: true, Created: time.Unix(1, 0)},
		Containers: []backend.NetworkEndpoint{{ID: "c1", Name: "web", IPAddress: "10.88.0.5"}}},
	{Network: tnet.Network{Name: "appnet", ID: "a1", Driver: "bridge", Bridge: "tend-a1", Subnet: "10.89.0.0/24", Gateway: "10.89.0.1", Labels: map[string]string{"k": "v"}},
		Containers: []backend.NetworkEndpoint{}},
}

func (e *netEngine) CreateNetwork(ctx context.Context, opts tnet.CreateOptions) (*tnet.Network, error) {
	e.created = append(e.created, opts)
	return &tnet.Network{Name: opts.Name, ID: "new1"}, nil
}

func (e *netEngine) Networks(ctx context.Context) ([]backend.NetworkInfo, error) {
	return append([]backend.NetworkInfo(nil), testNets...), nil
}

func (e *netEngine) InspectNetwork(ctx context.Context, ref string) (*backend.NetworkInfo, error) {
	for i := range testNets {
		if testNets[i].Name == ref || testNets[i].ID == ref {
			n := testNets[i]
			return &n, nil
		}
	}
	return nil, fmt.Errorf("network %s not found: %w", ref, errdefs.ErrNotFound)
}

func (e *netEngine) RemoveNetwork(ctx context.Context, ref string) error {
	e.removed = append(e.removed, ref)
	return nil
}

func (e *netEngine) PruneNetworks(ctx context.Context) ([]string, error) {
	return []string{"appnet"}, nil
}

func (e *netEngine) ConnectNetwork(ctx context.Context, netRef, ctrRef string) error {
	return errdefs.ErrNotImplemented
}

func (e *netEngine) DisconnectNetwork(ctx context.Context, netRef, ctrRef string) error {
	return errdefs.ErrNotImplemented
}

func (e *netEngine) Ports(ctx context.Context, ref string) ([]tnet.PortMapping, error) {
	return nil, nil
}

func TestNetworkRoutes(t *testing.T) {
	e := &netEngine{}
	s := New(e, Options{})
	t.Cleanup(s.cancel)
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	code, body := do("GET", "/v1.41/networks", "")
	var list []network.Inspect
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list) != 2 || list[0].Name != "appnet" || list[1].Name != "bridge" {
		t.Fatalf("list: %d %s %v", code, body, err)
	}
	b := list[1]
	if b.Driver != "bridge" || b.Scope != "local" || len(b.IPAM.Config) != 1 || b.IPAM.Config[0].Subnet.String() != "10.88.0.0/24" ||
		b.IPAM.Config[0].Gateway.String() != "10.88.0.1" || b.Containers["c1"].IPv4Address.String() != "10.88.0.5/24" ||
		b.Options["com.docker.network.bridge.name"] != "tend0" {
		t.Errorf("bridge: %+v", b)
	}
	for filter, want := range map[string]string{
		`{"type":{"custom":true}}`: "appnet", `{"label":{"k=v":true}}`: "appnet", `{"name":{"bri":true}}`: "bridge", `{"id":{"b":true}}`: "bridge",
	} {
		_, body := do("GET", "/networks?filters="+url.QueryEscape(filter), "")
		var l []network.Inspect
		if err := json.Unmarshal([]byte(body), &l); err != nil || len(l) != 1 || l[0].Name != want {
			t.Errorf("list %s: %s, want %s", filter, body, want)
		}
	}
	if code, body := do("GET", "/networks/appnet", ""); code != 200 || !strings.Contains(body, `"Name":"appnet"`) {
		t.Errorf("inspect: %d %s", code, body)
	}
	if code, _ := do("GET", "/networks/nope", ""); code != http.StatusNotFound {
		t.Errorf("inspect nope: %d, want 404", code)
	}
	if code, body := do("POST", "/networks/create", `{"Name":"n2","Driver":"bridge","IPAM":{"Driver":"default","Config":[{"Subnet":"10.90.0.0/24"}]},"Options":{},"Labels":{"a":"b"}}`); code != http.StatusCreated || !strings.Contains(body, `"Id":"new1"`) {
		t.Errorf("create: %d %s", code, body)
	}
	if len(e.created) != 1 || e.created[0].Name != "n2" || e.created[0].Subnet != "10.90.0.0/24" || e.created[0].Labels["a"] != "b" {
		t.Errorf("created: %+v", e.created)
	}
	for _, body := range []string{`{"Name":"x","Driver":"overlay"}`, `{"Name":"x","Internal":true}`, `{"Name":"x","Options":{"mtu":"1400"}}`, `{"Driver":"bridge"}`} {
		if code, resp := do("POST", "/networks/create", body); code != http.StatusBadRequest {
			t.Errorf("create %s: %d %s, want 400", body, code, resp)
		}
	}
	if code, _ := do("DELETE", "/networks/appnet", ""); code != http.StatusNoContent || fmt.Sprint(e.removed) != "[appnet]" {
		t.Errorf("rm: %d %v", code, e.removed)
	}
	if code, _ := do("DELETE", "/networks/..", ""); code != http.StatusBadRequest && code != http.StatusNotFound {
		t.Errorf("rm ..: %d, want 400", code)
	}
	if code, body := do("POST", "/networks/prune", ""); code != 200 || !strings.Contains(body, `"NetworksDeleted":["appnet"]`) {
		t.Errorf("prune: %d %s", code, body)
	}
	// An engine without networking answers 501.
	s2 := New(&volumeEngine{}, Options{})
	t.Cleanup(s2.cancel)
	rec := httptest.NewRecorder()
	s2.ServeHTTP(rec, httptest.NewRequest("GET", "/networks", nil))
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("networks without networking: %d, want 501", rec.Code)
	}
}

// inspectEngine fakes Inspect for the legacy NetworkSettings fields.
type inspectEngine struct {
	Engine
	c *backend.Container
}

func (e *inspectEngine) Inspect(ctx context.Context, ref string) (*backend.Container, error) {
	return e.c, nil
}

func TestInspectLegacyNetwork(t *testing.T) {
	c := &backend.Container{ID: strings.Repeat("a", 64), Name: "web", State: backend.StateRunning,
		Network: &backend.NetworkSettings{Mode: "bridge", Attachment: &tnet.Attachment{Network: "bridge", IPAddress: "10.88.0.5", PrefixLen: 24, Gateway: "10.88.0.1",
			Ports: []tnet.PortMapping{{HostIP: "127.0.0.1", HostPort: 32768, ContainerPort: 80, Protocol: "tcp"}}}},
		Mounts: []backend.MountPoint{{Type: "volume", Name: "data", Destination: "/data", RW: true}}}
	s := New(&inspectEngine{c: c}, Options{})
	t.Cleanup(s.cancel)
	get := func(path string) map[string]any {
		t.Helper()
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); rec.Code != 200 || err != nil {
			t.Fatalf("GET %s: %d %s %v", path, rec.Code, rec.Body, err)
		}
		return out
	}
	old := get("/v1.41/containers/web/json")
	ns := old["NetworkSettings"].(map[string]any)
	if ns["IPAddress"] != "10.88.0.5" || ns["IPPrefixLen"] != float64(24) || ns["Gateway"] != "10.88.0.1" || ns["Networks"].(map[string]any)["bridge"] == nil {
		t.Errorf("API 1.41 NetworkSettings: %v", ns)
	}
	if ports := fmt.Sprint(ns["Ports"]); !strings.Contains(ports, "32768") || !strings.Contains(ports, "80/tcp") {
		t.Errorf("API 1.41 NetworkSettings.Ports: %s", ports)
	}
	if m := fmt.Sprint(old["Mounts"]); !strings.Contains(m, "/data") || !strings.Contains(m, "volume") {
		t.Errorf("Mounts: %s", m)
	}
	if ns := get("/containers/web/json")["NetworkSettings"].(map[string]any); ns["IPAddress"] != nil || ns["Networks"].(map[string]any)["bridge"] == nil {
		t.Errorf("API %s NetworkSettings has the legacy fields: %v", APIVersion, ns)
	}
}
