package dockerapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/cmd/internal/api"
)

// renameContainer answers POST /containers/{id}/rename?name=.
func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "/")
	if err := api.ValidateName("container name", name); err != nil {
		return err
	}
	if err := s.engine.Rename(r.Context(), r.PathValue("ref"), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateContainer answers POST /containers/{id}/update. Docker sends only
// what changes (zero fields stay as they are), the engine takes whole
// limits: the container's current ones are merged with the request's.
func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request) error {
	var req container.UpdateConfig
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	rs := req.Resources
	if err := refuseUnsupported(append(unsupportedResources(rs),
		unsupportedField{"Ulimits", len(rs.Ulimits) > 0},
		unsupportedField{"CpuPeriod without CpuQuota", rs.CPUPeriod != 0 && rs.CPUQuota == 0},
	)); err != nil {
		return err
	}
	if rs.PidsLimit != nil && *rs.PidsLimit < -1 {
		return fmt.Errorf("PidsLimit %d: want a positive limit, or 0 or -1 for none: %w", *rs.PidsLimit, errdefs.ErrInvalidArgument)
	}
	asked, err := toResources(rs)
	if err != nil {
		return err
	}
	ctx := r.Context()
	c, err := s.engine.Inspect(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	var opts api.UpdateOptions
	cur := c.Config.Resources
	changed := false
	if rs.Memory != 0 {
		cur.MemoryBytes, changed = asked.MemoryBytes, true
	}
	if rs.NanoCPUs != 0 || rs.CPUQuota != 0 {
		cur.CPUs, changed = asked.CPUs, true
	}
	if rs.PidsLimit != nil {
		cur.PidsLimit, changed = asked.PidsLimit, true
	}
	if changed {
		opts.Resources = &cur
	}
	if p := req.RestartPolicy; p.Name != "" {
		if p.MaximumRetryCount != 0 && p.Name != container.RestartPolicyOnFailure {
			return fmt.Errorf("invalid restart policy: maximum retry count can only be used with 'on-failure': %w", errdefs.ErrInvalidArgument)
		}
		opts.Restart = &backend.RestartPolicy{Name: string(p.Name), MaximumRetryCount: p.MaximumRetryCount}
	}
	if opts.Resources != nil || opts.Restart != nil {
		if err := s.engine.Update(ctx, c.ID, opts); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: []string{}})
	return nil
}
