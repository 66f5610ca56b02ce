package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/network"
)

// NetworkEngine is the part of the engine that serves /v1/networks and
// /v1/containers/{ref}/port. An Engine without it answers 501.
type NetworkEngine interface {
	CreateNetwork(ctx context.Context, opts network.CreateOptions) (*network.Network, error)
	Networks(ctx context.Context) ([]backend.NetworkInfo, error)
	InspectNetwork(ctx context.Context, ref string) (*backend.NetworkInfo, error)
	RemoveNetwork(ctx context.Context, ref string) error
	PruneNetworks(ctx context.Context) ([]string, error)
	Ports(ctx context.Context, ref string) ([]network.PortMapping, error)
}

var _ NetworkEngine = (*backend.Engine)(nil)

// NetworkConnectEngine answers /v1/networks/{network}/connect and
// /disconnect; an Engine without it answers 501.
type NetworkConnectEngine interface {
	ConnectNetwork(ctx context.Context, netRef, ctrRef string) error
	DisconnectNetwork(ctx context.Context, netRef, ctrRef string) error
}

var _ NetworkConnectEngine = (*backend.Engine)(nil)

func (s *Server) networkRoutes(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	p := "/" + api.Version
	h("GET "+p+"/networks", s.networks)
	h("POST "+p+"/networks", s.createNetwork)
	h("POST "+p+"/networks/prune", s.pruneNetworks)
	h("GET "+p+"/networks/{network}", s.inspectNetwork)
	h("DELETE "+p+"/networks/{network}", s.removeNetwork)
	h("GET "+p+"/containers/{ref}/port", s.ports)
	h("POST "+p+"/networks/{network}/connect", s.connectNetwork)
	h("POST "+p+"/networks/{network}/disconnect", s.disconnectNetwork)
}

func (s *Server) netEngine(r *http.Request) (NetworkEngine, error) {
	if v := r.PathValue("network"); v != "" {
		if err := api.ValidateName("network", v); err != nil {
			return nil, err
		}
	}
	ne, ok := s.engine.(NetworkEngine)
	if !ok {
		return nil, fmt.Errorf("this engine has no networking: %w", errdefs.ErrNotImplemented)
	}
	return ne, nil
}

func (s *Server) networks(w http.ResponseWriter, r *http.Request) error {
	ne, err := s.netEngine(r)
	if err != nil {
		return err
	}
	ns, err := ne.Networks(r.Context())
	if err != nil {
		return err
	}
	writeList(w, ns)
	return nil
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) error {
	ne, err := s.netEngine(r)
	if err != nil {
		return err
	}
	var opts network.CreateOptions
	if err := decodeJSON(w, r, &opts); err != nil {
		return err
	}
	n, err := ne.CreateNetwork(r.Context(), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, n)
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
	writeJSON(w, http.StatusOK, n)
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
	names, err := ne.PruneNetworks(r.Context())
	if err != nil {
		return err
	}
	writeList(w, names)
	return nil
}

func (s *Server) ports(w http.ResponseWriter, r *http.Request) error {
	ne, err := s.netEngine(r)
	if err != nil {
		return err
	}
	ps, err := ne.Ports(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	writeList(w, ps)
	return nil
}

// ConnectRequest is the body of POST /networks/{network}/connect and
// /disconnect.
type ConnectRequest struct {
	Container string `json:"container"`
}

func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) error {
	return s.connect(w, r, NetworkConnectEngine.ConnectNetwork)
}

func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) error {
	return s.connect(w, r, NetworkConnectEngine.DisconnectNetwork)
}

// connect serves connect and disconnect; the engine answers 501 for both
// (a container's network is fixed at create), 404 for an unknown network
// or container.
func (s *Server) connect(w http.ResponseWriter, r *http.Request, fn func(NetworkConnectEngine, context.Context, string, string) error) error {
	if _, err := s.netEngine(r); err != nil {
		return err
	}
	ne, ok := s.engine.(NetworkConnectEngine)
	if !ok {
		return fmt.Errorf("network connect and disconnect are not supported by this engine: %w", errdefs.ErrNotImplemented)
	}
	var req ConnectRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return fmt.Errorf("no container given: want {\"container\": NAME}: %w", errdefs.ErrInvalidArgument)
	}
	if err := fn(ne, r.Context(), r.PathValue("network"), req.Container); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
