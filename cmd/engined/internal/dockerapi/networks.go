package dockerapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/engined/internal/server"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/format"
	tnet "github.com/tendhq/tend/network"
)

// Networks: Docker's /networks routes onto the engine's bridge
// networks (backend/networks.go), in Docker's shapes. An engine without
// networking (server.NetworkEngine) answers 501.

func (s *Server) netEngine(r *http.Request) (server.NetworkEngine, error) {
	if v := r.PathValue("network"); v != "" {
		if err := api.ValidateName("network", v); err != nil {
			return nil, err
		}
	}
	ne, ok := s.engine.(server.NetworkEngine)
	if !ok {
		return nil, fmt.Errorf("this engine has no networking: %w", errdefs.ErrNotImplemented)
	}
	return ne, nil
}

// dockerNetwork renders a network as docker network inspect shows it.
func dockerNetwork(n *backend.NetworkInfo) network.Inspect {
	out := network.Inspect{
		Network: network.Network{
			Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: "bridge", EnableIPv4: true,
			IPAM:    network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
			Options: map[string]string{"com.docker.network.bridge.name": n.Bridge},
			Labels:  n.Labels,
		},
		Containers: map[string]network.EndpointResource{},
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Default {
		out.Options["com.docker.network.bridge.default_bridge"] = "true"
	}
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err == nil {
		c := network.IPAMConfig{Subnet: subnet}
		if gw, err := netip.ParseAddr(n.Gateway); err == nil {
			c.Gateway = gw
		}
		out.IPAM.Config = append(out.IPAM.Config, c)
	}
	for _, ep := range n.Containers {
		res := network.EndpointResource{Name: ep.Name}
		if ip, err := netip.ParseAddr(ep.IPAddress); err == nil && subnet.IsValid() {
			res.IPv4Address = netip.PrefixFrom(ip, subnet.Bits())
		}
		out.Containers[ep.ID] = res
	}
	return out
}

func networkMatches(f filters, n *network.Inspect, builtin bool) bool {
	if names := f.values("name"); len(names) > 0 {
		ok := false
		for _, v := range names {
			ok = ok || strings.Contains(n.Name, v)
		}
		if !ok {
			return false
		}
	}
	if ids := f.values("id"); len(ids) > 0 {
		ok := false
		for _, v := range ids {
			ok = ok || strings.HasPrefix(n.ID, v)
		}
		if !ok {
			return false
		}
	}
	typ := "custom"
	if builtin {
		typ = "builtin"
	}
	return f.match("driver", n.Driver) && f.match("scope", n.Scope) && f.match("type", typ) &&
		labelsMatch(f.values("label"), n.Labels)
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) error {
	ne, err := s.netEngine(r)
	if err != nil {
		return err
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.only("name", "id", "driver", "scope", "type", "label"); err != nil {
		return err
	}
	for _, v := range f.values("type") {
		if v != "custom" && v != "builtin" {
			return fmt.Errorf("invalid filter: 'type'='%s': want custom or builtin: %w", api.Cut(v), errdefs.ErrInvalidArgument)
		}
	}
	ns, err := ne.Networks(r.Context())
	if err != nil {
		return err
	}
	out := []network.Inspect{}
	for i := range ns {
		n := dockerNetwork(&ns[i])
		if networkMatches(f, &n, ns[i].Default) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) error {
	ne, err := s.netEngine(r)
	if err != nil {
		return err
	}
	n, err := ne.InspectNetwork(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, dockerNetwork(n))
	return nil
}

// toNetworkOptions maps a docker network create onto the engine's bridge
// networks, refusing with 400 what they cannot be. Attachable is accepted:
// any container may join them (compose's v3 files ask for it).
func toNetworkOptions(req *network.CreateRequest) (tnet.CreateOptions, error) {
	var o tnet.CreateOptions
	var ipam []network.IPAMConfig
	if req.IPAM != nil {
		ipam = req.IPAM.Config
	}
	var bad []string
	for _, f := range []unsupportedField{
		{"Driver " + req.Driver, req.Driver != "" && req.Driver != "bridge"},
		{"Scope " + req.Scope, req.Scope != "" && req.Scope != "local"},
		{"EnableIPv4=false", req.EnableIPv4 != nil && !*req.EnableIPv4},
		{"EnableIPv6", req.EnableIPv6 != nil && *req.EnableIPv6},
		{"IPAM.Driver", req.IPAM != nil && req.IPAM.Driver != "" && req.IPAM.Driver != "default"},
		{"IPAM.Options", req.IPAM != nil && len(req.IPAM.Options) > 0},
		{"more than one IPAM.Config", len(ipam) > 1},
		{"IPAM.Config IPRange, Gateway or AuxiliaryAddresses", len(ipam) == 1 && (ipam[0].IPRange.IsValid() || ipam[0].Gateway.IsValid() || len(ipam[0].AuxAddress) > 0)},
		{"Internal", req.Internal},
		{"Ingress", req.Ingress},
		{"ConfigOnly", req.ConfigOnly},
		{"ConfigFrom", req.ConfigFrom != nil},
		{"Options", len(req.Options) > 0},
	} {
		if f.set {
			bad = append(bad, f.name)
		}
	}
	if len(bad) > 0 {
		return o, fmt.Errorf("network create: %s: not supported by tend (its networks are local IPv4 bridges with a subnet): %w", strings.Join(bad, ", "), errdefs.ErrInvalidArgument)
	}
	if req.Name == "" {
		return o, fmt.Errorf("network create: no name was given: set Name: %w", errdefs.ErrInvalidArgument)
	}
	o.Name = req.Name
	o.Labels = req.Labels
	if len(ipam) == 1 && ipam[0].Subnet.IsValid() {
		if !ipam[0].Subnet.Addr().Is4() {
			return o, fmt.Errorf("network create: subnet %s: tend's networks are IPv4: %w", ipam[0].Subnet, errdefs.ErrInvalidArgument)
		}
		o.Subnet = ipam[0].Subnet.String()
	}
	return o, nil
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	ne, err := s.netEngine(r)
	if err != nil {
		return err
	}
	var req network.CreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	opts, err := toNetworkOptions(&req)
	if err != nil {
		return err
	}
	n, err := ne.CreateNetwork(r.Context(), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, network.CreateResponse{ID: n.ID})
	return nil
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) error {
	ne, err := s.netEngine(r)
	if err != nil {
		return err
	}
	if err := ne.RemoveNetwork(r.Context(), r.PathValue("network")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) error {
	ne, err := s.netEngine(r)
	if err != nil {
		return err
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.only(); err != nil {
		return err
	}
	names, err := ne.PruneNetworks(r.Context())
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: names})
	return nil
}

// connectNetwork answers POST /networks/{id}/connect. A container joins
// its one network when created, so connecting it to that network again
// (compose 1.x does so after the create) is a no-op; any other network is
// a 501 saying what to do.
func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) error {
	ne, err := s.netEngine(r)
	if err != nil {
		return err
	}
	var req network.ConnectRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := api.ValidateName("container reference", strings.TrimPrefix(req.Container, "/")); err != nil {
		return err
	}
	n, err := ne.InspectNetwork(r.Context(), r.PathValue("network"))
	if err != nil {
		return err
	}
	c, err := s.engine.Inspect(r.Context(), req.Container)
	if err != nil {
		return err
	}
	if req.EndpointConfig != nil && (!noAddresses(req.EndpointConfig.IPAMConfig) || len(req.EndpointConfig.Links) > 0) {
		return fmt.Errorf("network connect: IPAMConfig addresses and Links: not supported by tend's Docker API yet: %w", errdefs.ErrInvalidArgument)
	}
	if mode := c.Config.NetworkMode; mode != n.Name && mode != n.ID {
		return fmt.Errorf("connecting container %s (on network %s) to network %s (POST /networks/{id}/connect) is not supported by tend's Docker API yet: a container joins its one network when created (docker run --network NAME): %w", c.Name, format.DockerNetworkMode(mode), n.Name, errdefs.ErrNotImplemented)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
